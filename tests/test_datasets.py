import numpy as np
import pytest

from convexrelu.datasets import planted, spiral


def test_planted_is_the_teacher_output():
    X, Y, teacher = planted(n=25, d=2, c=5, m_teacher=100, seed=3)
    assert X.shape == (25, 2) and Y.shape == (25, 5) and teacher.n_neurons == 100
    np.testing.assert_array_equal(Y, teacher.predict(X))
    X2, _, _ = planted(seed=3)
    np.testing.assert_array_equal(X, X2)


def test_spiral_one_hot_classes():
    X, Y, labels = spiral(n_per_class=20, n_classes=3, seed=0)
    assert X.shape == (60, 2) and Y.shape == (60, 3)
    np.testing.assert_array_equal(Y.argmax(axis=1), labels)
    assert np.bincount(labels).tolist() == [20, 20, 20]
    assert np.all(np.linalg.norm(X, axis=1) <= 1.0 + 1e-12)


def test_bad_sizes_rejected():
    with pytest.raises(ValueError, match="n_per_class"):
        spiral(n_per_class=0)
    with pytest.raises(ValueError, match="m_teacher"):
        planted(m_teacher=-1)
