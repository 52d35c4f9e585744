"""convexrelu: certified global training of two-layer ReLU networks."""
__version__ = "0.1.0"
