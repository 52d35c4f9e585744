"""Tests of :class:`convexrelu.TwoLayerReLU` (evaluation, transforms, persistence)."""

import os
import zipfile

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from convexrelu import TwoLayerReLU


def _random_net(seed, d=3, m=5, c=2):
    g = np.random.default_rng(seed)
    return TwoLayerReLU(g.standard_normal((d, m)), g.standard_normal((m, c)))


def _hand_predict(X, W1, W2):
    """f(X) = sum_j (X u_j)_+ v_j^T, written out element by element."""
    n, d = X.shape
    m, c = W2.shape
    F = np.zeros((n, c))
    for i in range(n):
        for j in range(m):
            pre = sum(X[i, k] * W1[k, j] for k in range(d))
            act = pre if pre > 0 else 0.0
            for o in range(c):
                F[i, o] += act * W2[j, o]
    return F


# --------------------------------------------------------------------------- evaluation
def test_predict_equals_hand_computation():
    X = np.array([[1.0, 2.0], [-1.0, 0.5], [0.0, -3.0], [2.0, -1.0]])
    W1 = np.array([[1.0, -1.0, 0.5], [0.5, 2.0, -1.0]])
    W2 = np.array([[1.0, -2.0], [0.5, 0.0], [-1.0, 3.0]])
    net = TwoLayerReLU(W1, W2)
    # First row by hand: pre-activations (2, 3, -1.5) -> relu (2, 3, 0)
    # output = 2*(1, -2) + 3*(0.5, 0) + 0 = (3.5, -4)
    F = net.predict(X)
    assert F.shape == (4, 2)
    np.testing.assert_allclose(F[0], [3.5, -4.0], rtol=0, atol=1e-15)
    np.testing.assert_allclose(F, _hand_predict(X, W1, W2), rtol=1e-14, atol=1e-14)


def test_predict_random_matches_loops():
    g = np.random.default_rng(0)
    X = g.standard_normal((7, 3))
    net = _random_net(1, d=3, m=4, c=3)
    np.testing.assert_allclose(net.predict(X), _hand_predict(X, net.W1, net.W2),
                               rtol=1e-13, atol=1e-13)
    # hidden() is the activation layer
    np.testing.assert_array_equal(net.hidden(X), np.maximum(X @ net.W1, 0.0))


def test_objective_equals_paper_eq5_by_hand():
    g = np.random.default_rng(2)
    X = g.standard_normal((6, 3))
    Y = g.standard_normal((6, 2))
    net = _random_net(3, d=3, m=4, c=2)
    beta = 0.37
    F = _hand_predict(X, net.W1, net.W2)
    loss = 0.5 * sum((F[i, o] - Y[i, o]) ** 2 for i in range(6) for o in range(2))
    w1sq = sum(net.W1[k, j] ** 2 for k in range(3) for j in range(4))
    w2sq = sum(net.W2[j, o] ** 2 for j in range(4) for o in range(2))
    expected = loss + beta / 2 * (w1sq + w2sq)
    assert net.objective(X, Y, beta) == pytest.approx(expected, rel=1e-13)
    # the pieces are consistent
    assert net.weight_decay() == pytest.approx(0.5 * (w1sq + w2sq), rel=1e-14)


def test_objective_small_exact_numbers():
    X = np.array([[1.0], [2.0]])
    Y = np.array([1.0, 0.0])  # 1-D y is c = 1
    net = TwoLayerReLU([[1.0]], [2.0])  # f(x) = 2 relu(x)
    # F = (2, 4); loss = 1/2 ((2-1)^2 + 4^2) = 8.5; decay = beta/2 (1 + 4) = 2.5 beta
    assert net.objective(X, Y, 0.2) == pytest.approx(8.5 + 0.5, rel=1e-15)
    assert net.objective(X, Y[:, None], 0.2) == pytest.approx(9.0, rel=1e-15)


def test_objective_of_zero_network_is_half_norm_of_Y():
    g = np.random.default_rng(4)
    X = g.standard_normal((5, 2))
    Y = g.standard_normal((5, 3))
    net = TwoLayerReLU.zeros(2, 3)
    assert net.n_neurons == 0
    np.testing.assert_array_equal(net.predict(X), np.zeros((5, 3)))
    assert net.objective(X, Y, 10.0) == pytest.approx(0.5 * np.sum(Y ** 2), rel=1e-15)


# --------------------------------------------------------------------------- rebalance
_weight_elems = st.one_of(
    st.just(0.0),
    st.floats(1e-3, 10.0),
    st.floats(-10.0, -1e-3),
)


@st.composite
def _networks(draw):
    d = draw(st.integers(1, 4))
    m = draw(st.integers(0, 6))
    c = draw(st.integers(1, 3))
    W1 = draw(hnp.arrays(float, (d, m), elements=_weight_elems))
    W2 = draw(hnp.arrays(float, (m, c), elements=_weight_elems))
    return TwoLayerReLU(W1, W2)


@settings(max_examples=150, deadline=None)
@given(net=_networks(), seed=st.integers(0, 2**32 - 1))
def test_rebalance_property(net, seed):
    X = np.random.default_rng(seed).standard_normal((8, net.n_features))
    reb = net.rebalance()
    assert reb.W1.shape == net.W1.shape and reb.W2.shape == net.W2.shape
    F0, F1 = net.predict(X), reb.predict(X)
    np.testing.assert_allclose(F1, F0, rtol=1e-12, atol=1e-12 * (1.0 + np.abs(F0).max(initial=0)))
    nu = np.linalg.norm(reb.W1, axis=0)
    nv = np.linalg.norm(reb.W2, axis=1)
    np.testing.assert_allclose(nu, nv, rtol=1e-12, atol=0)
    # balanced weight decay is the path norm, which is invariant under rescaling
    assert reb.weight_decay() == pytest.approx(reb.path_norm(), rel=1e-12, abs=1e-300)
    assert reb.path_norm() == pytest.approx(net.path_norm(), rel=1e-12, abs=1e-300)
    assert reb.weight_decay() <= net.weight_decay() * (1 + 1e-12) + 1e-300
    # rebalancing is idempotent (up to rounding)
    np.testing.assert_allclose(reb.rebalance().W1, reb.W1, rtol=1e-12, atol=1e-300)


def test_rebalance_strictly_lowers_unbalanced_decay_and_returns_new_network():
    W1 = np.array([[4.0], [0.0]])  # ||u|| = 4
    W2 = np.array([[0.25, 0.0]])  # ||v|| = 1/4
    net = TwoLayerReLU(W1, W2)
    reb = net.rebalance()
    np.testing.assert_allclose(reb.W1, [[1.0], [0.0]], rtol=1e-15)
    np.testing.assert_allclose(reb.W2, [[1.0, 0.0]], rtol=1e-15)
    assert net.weight_decay() == pytest.approx(0.5 * (16 + 1 / 16))
    assert reb.weight_decay() == pytest.approx(1.0)
    # the original network is untouched
    np.testing.assert_array_equal(net.W1, W1)
    assert reb is not net


def test_rebalance_zeroes_dead_half_neurons():
    # neuron 0: u = 0, v != 0; neuron 1: u != 0, v = 0; neuron 2: alive
    W1 = np.array([[0.0, 1.0, 2.0], [0.0, -1.0, 0.0]])
    W2 = np.array([[5.0], [0.0], [0.5]])
    reb = TwoLayerReLU(W1, W2).rebalance()
    np.testing.assert_array_equal(reb.W1[:, :2], 0.0)
    np.testing.assert_array_equal(reb.W2[:2], 0.0)
    np.testing.assert_allclose(reb.W1[:, 2], [1.0, 0.0], rtol=1e-15)
    np.testing.assert_allclose(reb.W2[2], [1.0], rtol=1e-15)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_rebalance_and_prune_keep_live_neuron_with_extreme_scaling():
    X = np.array([[1.0, 0.0], [2.0, 1.0]])
    net = TwoLayerReLU(np.array([[1e-170], [0.0]]), np.array([[1e170]]))
    F = net.predict(X)
    np.testing.assert_allclose(F[:, 0], [1.0, 2.0], rtol=1e-12)
    np.testing.assert_allclose(net.prune(0).predict(X), F, rtol=1e-12)
    np.testing.assert_allclose(net.rebalance().predict(X), F, rtol=1e-12)


# --------------------------------------------------------------------------- prune
def test_prune_zero_removes_exactly_the_zero_neurons():
    g = np.random.default_rng(5)
    d, c = 3, 2
    W1 = g.standard_normal((d, 7))
    W2 = g.standard_normal((7, c))
    W1[:, 1] = 0.0  # u = 0
    W2[3] = 0.0  # v = 0
    W1[:, 5] = 0.0
    W2[5] = 0.0  # both zero
    W1[:, 6] = -np.abs(W1[:, 6])  # inactive on the (positive) data below, but not zero
    net = TwoLayerReLU(W1, W2)
    X = np.abs(g.standard_normal((10, d)))
    pruned = net.prune(0)
    keep = [0, 2, 4, 6]
    assert pruned.n_neurons == 4
    np.testing.assert_array_equal(pruned.W1, W1[:, keep])
    np.testing.assert_array_equal(pruned.W2, W2[keep])
    np.testing.assert_allclose(pruned.predict(X), net.predict(X), rtol=1e-14, atol=1e-14)
    # default tol is 0
    assert net.prune() == pruned


def test_prune_tol_uses_product_of_norms():
    # strengths ||u|| * ||v||: 0.5, 2.0, 1.0 (exactly), 1e-3, 3.0
    W1 = np.array([[1.0, 0.5, 2.0, 1e-3, 3.0], [0.0, 0.0, 0.0, 0.0, 0.0]])
    W2 = np.array([[0.5], [4.0], [0.5], [1.0], [1.0]])
    net = TwoLayerReLU(W1, W2)
    p = net.prune(1.0)
    # strictly larger than tol survives; equal to tol is dropped
    np.testing.assert_array_equal(p.W1, W1[:, [1, 4]])
    np.testing.assert_array_equal(p.W2, W2[[1, 4]])
    # a large ||v|| alone does not keep a neuron: neuron 1 (||v|| = 4) is dropped at tol 2
    p2 = net.prune(2.5)
    np.testing.assert_array_equal(p2.W1, W1[:, [4]])
    assert net.prune(10.0).n_neurons == 0
    assert net.prune(10.0).n_features == 2 and net.prune(10.0).n_outputs == 1
    # the same neurons are dropped before and after rebalancing
    assert net.rebalance().prune(1.0).n_neurons == 2


# --------------------------------------------------------------------------- persistence
@pytest.mark.parametrize("shape", [(3, 5, 2), (2, 0, 3), (1, 1, 1), (4, 0, 1)])
def test_save_load_round_trip_is_bit_exact(tmp_path, shape):
    d, m, c = shape
    g = np.random.default_rng(6)
    W1 = g.standard_normal((d, m)) * 10.0 ** g.integers(-300, 300, size=(d, m))
    W2 = g.standard_normal((m, c)) / 3.0
    net = TwoLayerReLU(W1, W2)
    path = tmp_path / "model.npz"
    net.save(path)
    back = TwoLayerReLU.load(path)
    assert back.W1.shape == (d, m) and back.W2.shape == (m, c)
    assert back.W1.dtype == np.float64 and back.W2.dtype == np.float64
    assert np.array_equal(back.W1, net.W1)
    assert np.array_equal(back.W2, net.W2)
    assert back == net
    assert not back.W1.flags.writeable and not back.W2.flags.writeable
    # str paths work too, and no temporary files are left behind
    net.save(str(tmp_path / "again.npz"))
    assert sorted(os.listdir(tmp_path)) == ["again.npz", "model.npz"]


def test_save_overwrites_existing_file(tmp_path):
    path = tmp_path / "model.npz"
    _random_net(1).save(path)
    new = _random_net(2)
    new.save(path)
    assert TwoLayerReLU.load(path) == new


def _write_npz(path, **arrays):
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)
    return path


def _corrupt_random_bytes(p):
    p.write_bytes(np.random.default_rng(0).bytes(2000))


def _corrupt_truncated(p):
    _random_net(0).save(p)
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])


def _corrupt_missing_W1(p):
    _write_npz(p, W2=np.ones((2, 1)))


def _corrupt_3d_W1(p):
    _write_npz(p, W1=np.ones((2, 2, 2)), W2=np.ones((2, 1)))


def _corrupt_nan_W1(p):
    W1 = np.ones((2, 2))
    W1[0, 1] = np.nan
    _write_npz(p, W1=W1, W2=np.ones((2, 1)))


def _corrupt_inf_W2(p):
    _write_npz(p, W1=np.ones((2, 2)), W2=np.array([[1.0], [np.inf]]))


def _corrupt_text(p):
    p.write_text("W1,W2\n1,2\n")


def _corrupt_empty(p):
    p.write_bytes(b"")


def _corrupt_mismatch(p):
    _write_npz(p, W1=np.ones((2, 3)), W2=np.ones((2, 1)))


def _corrupt_other_format(p):
    _write_npz(p, W1=np.ones((2, 2)), W2=np.ones((2, 1)), format=np.array("something.else"))


def _corrupt_object_array(p):
    _write_npz(p, W1=np.array([None, 1], dtype=object), W2=np.ones((2, 1)))


@pytest.mark.parametrize("make, match", [
    (_corrupt_random_bytes, r"could not read model file"),
    (_corrupt_truncated, r"not a valid \.npz"),
    (_corrupt_missing_W1, r"missing array\(s\) W1"),
    (_corrupt_3d_W1, r"invalid weights: W1 must be a 2-D array"),
    (_corrupt_nan_W1, r"invalid weights: W1 must contain only finite"),
    (_corrupt_inf_W2, r"invalid weights: W2 must contain only finite"),
    (_corrupt_text, r"could not read model file"),
    (_corrupt_empty, r"could not read model file"),
    (_corrupt_mismatch, r"invalid weights: .*W1.*W2"),
    (_corrupt_other_format, r"something\.else"),
    (_corrupt_object_array, r"could not read model file"),
], ids=lambda v: getattr(v, "__name__", v))
def test_load_corrupt_file_raises_value_error(tmp_path, make, match):
    path = tmp_path / "model.npz"
    make(path)
    with pytest.raises(ValueError, match=match) as info:
        TwoLayerReLU.load(path)
    assert str(path) in str(info.value)


def test_load_npy_file_raises_value_error(tmp_path):
    path = tmp_path / "model.npz"
    with open(path, "wb") as fh:
        np.save(fh, np.ones((2, 2)))
    with pytest.raises(ValueError, match="model file"):
        TwoLayerReLU.load(path)


def test_load_missing_file_raises_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="model file not found"):
        TwoLayerReLU.load(tmp_path / "nope.npz")
    # a directory is not a model file either
    with pytest.raises(FileNotFoundError):
        TwoLayerReLU.load(tmp_path)


def test_failed_save_into_missing_directory_leaves_nothing(tmp_path):
    target = tmp_path / "no_such_dir" / "model.npz"
    with pytest.raises(OSError):
        _random_net(0).save(target)
    assert not target.exists()
    assert not target.parent.exists()
    assert os.listdir(tmp_path) == []


def test_failed_save_onto_directory_leaves_no_temp_file(tmp_path):
    target = tmp_path / "adir"
    target.mkdir()
    with pytest.raises(OSError):
        _random_net(0).save(target)
    assert sorted(os.listdir(tmp_path)) == ["adir"]
    assert os.listdir(target) == []


def test_failed_write_keeps_old_file_and_leaves_no_temp(tmp_path, monkeypatch):
    path = tmp_path / "model.npz"
    old = _random_net(1)
    old.save(path)

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    # every numpy writer fails mid-save (whichever one save() uses)
    for writer in ("savez", "savez_compressed", "save"):
        monkeypatch.setattr(np, writer, boom)
    with pytest.raises(RuntimeError, match="disk full"):
        _random_net(2).save(path)
    monkeypatch.undo()
    assert os.listdir(tmp_path) == ["model.npz"]
    assert TwoLayerReLU.load(path) == old


def test_saved_file_is_a_plain_npz(tmp_path):
    path = tmp_path / "m.npz"
    net = _random_net(7)
    net.save(path)
    assert zipfile.is_zipfile(path)
    with np.load(path, allow_pickle=False) as data:
        assert {"W1", "W2"} <= set(data.files)
        assert np.array_equal(data["W1"], net.W1)


# --------------------------------------------------------------------------- construction
def test_shapes_and_counts():
    net = _random_net(8, d=3, m=5, c=2)
    assert net.n_neurons == 5
    assert net.n_features == 3
    assert net.n_outputs == 2
    assert TwoLayerReLU(np.ones((4, 0)), np.ones((0, 2))).n_neurons == 0
    assert "n_neurons=5" in repr(net)


def test_one_dimensional_W2_is_single_output():
    W1 = np.array([[1.0, -1.0, 2.0], [0.5, 1.0, 0.0]])
    w2 = np.array([1.0, 2.0, -1.0])
    net = TwoLayerReLU(W1, w2)
    assert net.W2.shape == (3, 1)
    assert net.n_outputs == 1
    X = np.array([[1.0, 1.0], [-2.0, 1.0]])
    np.testing.assert_allclose(net.predict(X), _hand_predict(X, W1, w2[:, None]), rtol=1e-15)
    # a list works as well
    assert TwoLayerReLU(W1, [1.0, 2.0, -1.0]) == net


@pytest.mark.parametrize("W1, W2", [
    (np.ones((2, 3)), np.ones((2, 1))),
    (np.ones((2, 3)), np.ones(4)),
    (np.ones((2, 1)), np.ones((3, 2))),
])
def test_mismatched_shapes_raise_naming_W1_and_W2(W1, W2):
    with pytest.raises(ValueError, match=r"W1.*W2") as info:
        TwoLayerReLU(W1, W2)
    msg = str(info.value)
    assert str(W1.shape) in msg


def test_weights_are_read_only_and_copied():
    W1 = np.ones((2, 2))
    W2 = np.ones((2, 1))
    net = TwoLayerReLU(W1, W2)
    with pytest.raises(ValueError):
        net.W1[0, 0] = 5.0
    with pytest.raises(ValueError):
        net.W2[0, 0] = 5.0
    with pytest.raises(AttributeError):
        net.W1 = np.zeros((2, 2))
    # mutating the caller's arrays does not change the network
    W1[0, 0] = 99.0
    W2[1, 0] = 99.0
    assert net.W1[0, 0] == 1.0 and net.W2[1, 0] == 1.0
    # outputs of transforms are read-only as well
    assert not net.rebalance().W1.flags.writeable
    assert not net.prune(0).W2.flags.writeable


def test_equality():
    a = _random_net(9)
    b = TwoLayerReLU(a.W1.copy(), a.W2.copy())
    assert a == b
    assert a != _random_net(10)
    assert a != "not a network"
