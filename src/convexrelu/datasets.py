"""Small generated data sets used by the demo, the tests and the benchmarks."""

from __future__ import annotations

import numpy as np

from ._validation import check_positive_int
from .network import TwoLayerReLU

__all__ = ["planted", "spiral"]


def planted(n=25, d=2, c=5, m_teacher=100, seed=0):
    """The paper's §5.1 problem: ``X ~ N(0, 1)``, ``Y = relu(X U0) V0`` from a random teacher.

    Returns ``(X, Y, teacher)``.
    """
    for name, v in (("n", n), ("d", d), ("c", c), ("m_teacher", m_teacher)):
        check_positive_int(v, name)
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    teacher = TwoLayerReLU(rng.standard_normal((d, m_teacher)), rng.standard_normal((m_teacher, c)))
    return X, teacher.predict(X), teacher


def spiral(n_per_class=20, n_classes=3, noise=0.2, seed=0):
    """``n_classes`` interleaved spiral arms in 2-D with one-hot targets (no bias column).

    Returns ``(X, Y, labels)`` with ``X`` of shape ``(n_per_class * n_classes, 2)``.
    """
    check_positive_int(n_per_class, "n_per_class")
    check_positive_int(n_classes, "n_classes")
    rng = np.random.default_rng(seed)
    X, labels = [], []
    for k in range(n_classes):
        r = np.linspace(0.1, 1.0, n_per_class)
        t = np.linspace(k * 4.0, (k + 1) * 4.0, n_per_class) + noise * rng.standard_normal(n_per_class)
        X.append(np.column_stack([r * np.sin(t), r * np.cos(t)]))
        labels.append(np.full(n_per_class, k))
    X = np.vstack(X)
    labels = np.concatenate(labels)
    Y = np.eye(n_classes)[labels]
    return X, Y, labels
