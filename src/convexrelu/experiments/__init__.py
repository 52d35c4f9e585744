"""Reproductions of the paper's experiments and the side-by-side benchmark suite."""
