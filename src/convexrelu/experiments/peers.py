r"""Adapter for the peer library pyscnn, solving the same problem as :func:`convexrelu.fit`.

pyscnn (PyPI name ``pyscnn``, import name ``scnn``) is the reference implementation of
Mishkin, Sahiner & Pilanci, *Fast convex optimization for two-layer ReLU networks*
(ICML 2022). This module runs its convex ReLU solver on a scalar-output problem and
turns the solution into a :class:`convexrelu.TwoLayerReLU`, whose objective (paper
eq. 5) is then computed by convexrelu itself, never taken from pyscnn.

It is optional: install it with
``pip install --no-deps pyscnn linalg-backends opt_einsum`` (``--no-deps`` because
pyscnn also lists torchvision, which it never imports; it does import ``torch``
through ``linalg-backends``). :func:`pyscnn_status` says whether it can be used.

Notes
-----
**Regulariser scaling.** For ``c = 1`` the problem solved by convexrelu is paper eq. 9

.. math::

    P(w, v) = \tfrac12 \Big\|\sum_i D_i X (w_i - v_i) - y\Big\|_2^2
              + \beta \sum_i \big(\|w_i\|_2 + \|v_i\|_2\big),
    \qquad (2 D_i - I) X w_i \ge 0,\ (2 D_i - I) X v_i \ge 0,

whose optimum equals that of eq. 5. pyscnn minimises, with ``NeuronGL1(lam)``,

.. math::

    P_{\text{scnn}}(w, v) = \frac{1}{2 n c} \Big\|\sum_i D_i X (w_i - v_i) - y\Big\|_2^2
              + \lambda \sum_i \big(\|w_i\|_2 + \|v_i\|_2\big)

(read from pyscnn 0.0.10: ``scnn/private/models/model.py``, ``Model.objective`` passes
``scaling=y.shape[0]`` and ``Model._scaling`` returns ``scaling * self.c``;
``scnn/private/models/convex/convex_mlp.py`` and
``scnn/private/models/convex/al/al_mlp.py``, ``_objective``, divide
``squared_error`` (a plain sum of squares, ``scnn/private/loss_functions.py``) by
``2 * self._scaling(y, scaling)``; ``GroupL1Regularizer.penalty`` is
``group_l1_penalty(w, lam) = lam * sum ||w_i||_2`` over the last axis, applied to the
stacked ``(2, c, p, d)`` weights, i.e. to every ``w_i`` and every ``v_i``). Hence, with
``c = 1``,

.. math::

    n \, P_{\text{scnn}}(w, v) = P(w, v) \quad\text{exactly when}\quad
    \lambda = \beta / n,

so :func:`fit_pyscnn` passes ``lam = beta / n`` and the argmin is the same; pyscnn's
objective values are ``1/n`` times ours (``info["pyscnn_objective"] * n`` is our eq. 9
value of its solution). pyscnn's ``tol`` is a bound on the squared norm of the gradient
of *its* (``1/n``-scaled) objective, so it is not a relative gap; see the accuracy
figures below.

**Other settings that must be fixed for it to be the same problem.**

* ``formulation``: the ReLU model with cone constraints (pyscnn's ``ConvexReLU``,
  solved by its augmented Lagrangian ``AL``), i.e. eq. 9 itself, not the gated-ReLU
  relaxation (``ConvexGatedReLU``/``RFISTA``, no cone constraints, a different model).
* ``unitize_data=False``: pyscnn's default rescales each column of ``X`` to unit norm
  before solving and maps the weights back, which changes the penalty to
  :math:`\sum_i \|S w_i\|` (``S`` the column norms): a different problem unless all
  columns have the same norm.
* ``bias=False``: our network has no intercept (pyscnn's bias appends a column of ones
  to ``X``; fit it with our own data instead if wanted).
* ``dtype="float64"``: pyscnn's default is float32, whose round-off (~1e-7 relative)
  is larger than the gaps the comparison is about.

**Network.** From pyscnn's convex weights (``return_convex=True``) each group
``w_i != 0`` becomes a neuron ``u = w_i / sqrt(||w_i||)`` with output weight
``+sqrt(||w_i||)`` and each ``v_i != 0`` a neuron ``v_i / sqrt(||v_i||)`` with output
weight ``-sqrt(||v_i||)`` (Remark 5.1; pyscnn's own ``relu_solution_mapping`` is the
same). Then ``beta/2 (||u||^2 + a^2) = beta ||w_i||`` exactly, and
``(X u)_+ = D_i X u`` whenever the cone constraint of ``w_i`` holds, so the network's
eq. 5 objective equals ``P(w, v)``. pyscnn's AL method only satisfies the cone
constraints approximately; the network is evaluated as a real ReLU network, so any
violation shows up (as a slightly different objective, either way), and
``info["cone_violation"]`` reports its size.

Warnings
--------
* **Sampled patterns.** pyscnn draws ``n_patterns`` Gaussian gate vectors ``g`` and
  uses the distinct patterns ``D = diag(1[X g > 0])`` (the all-zero one dropped). Its
  solution is optimal for that sub-sampled eq. 9, an upper bound on ``p*``; only when
  every pattern is drawn (small ``n`` with ``d = 2``, or many gates) is it the full
  problem. The network is a genuine ReLU network either way, so
  :func:`convexrelu.certify` applies to it.
* **Accuracy.** pyscnn's ``tol`` is absolute, on its ``1/n``-scaled objective, so the
  relative accuracy it buys depends on the problem. Measured against certified optima
  of :func:`convexrelu.fit` (Gaussian X of 40x3 with 1000 gates, 20x2 with 2000 gates,
  ReLU-teacher ``y``, ``beta`` = 0.01, 0.05, 0.2 ``lambda_max``): relative excess
  2e-4 to 5.4e-2 at the default ``tol=1e-6``; 6e-6 to 2.3e-3 at ``tol=1e-8``
  (``max_iter=100000``); 3.4e-7 (20x2) and 1.4e-6 (40x3, 474 of its 1562 patterns
  drawn) at ``tol=1e-10`` with ``beta = 0.05 lambda_max``. Never below the certified
  lower bound. ``n * info["pyscnn_objective"]`` equals our eq. 9 value of its weights
  to round-off (1e-14 relative) in every run, converged or not.
* **Augmented-Lagrangian stalls.** pyscnn's AL first tunes its penalty ``delta``
  until the squared cone violation after a sub-solve lies in the absolute window
  [1e-3, 1e-2] (``AugmentedLagrangian.step`` in
  ``scnn/private/methods/optimizers/augmented_lagrangian.py``, ``eta_lower`` and
  ``eta_upper``), and updates no multiplier before it does. When the violation is
  already below 1e-3 it halves ``delta`` and the sub-problem tolerance at every round,
  never leaves that phase, and runs to ``max_iter`` (``info["status"] == "max_iter"``)
  with the cone constraints violated by 2e-3 to 6e-3 and an objective 1e-3 to 5e-3
  above the optimum, whatever ``tol``. Seen on 5 of 9 tiny ``d = 2`` problems
  (``n`` = 8, 10, ``beta`` = 0.1-0.5 ``lambda_max``), none of the larger ones above; as
  the window is absolute, whether it happens depends on the scale of ``y``.
* **Speed.** pyscnn calls ``opt_einsum.contract`` (which plans its contraction path on
  every call) about 17 times per inner iteration: milliseconds per iteration even for
  tiny problems, so a run costs seconds to minutes. ``time`` measures pyscnn's
  ``optimize_model`` call only (pattern deduplication and the solve; the gate sampling
  before it and our conversion and objective after it are excluded).
* **Global state.** pyscnn seeds NumPy's and PyTorch's global generators and sets the
  root logger's level (``logging.basicConfig``) on every run; :func:`fit_pyscnn` puts
  them back as they were.
* Scalar outputs only: for ``c > 1`` pyscnn fits one-vs-all (a separate set of neurons
  per output, loss divided by ``n c``), which is not eq. 5's vector-output network.
"""

from __future__ import annotations

import contextlib
import logging
import numbers
import sys
import time
from dataclasses import dataclass, field

import numpy as np

from .._validation import check_beta, check_positive_int, check_tol, check_XY
from ..network import TwoLayerReLU

__all__ = ["INSTALL_COMMAND", "PeerResult", "pyscnn_status", "fit_pyscnn"]

logger = logging.getLogger(__name__)

INSTALL_COMMAND = "pip install --no-deps pyscnn linalg-backends opt_einsum"

_MAX_ITER_WARNING = "Max iterations reached"


@dataclass(frozen=True)
class PeerResult:
    """A peer library's solution, as a convexrelu network.

    Attributes
    ----------
    network : TwoLayerReLU
        The network built from the peer's solution.
    objective : float
        Paper eq. 5 objective of ``network``, computed by convexrelu
        (:meth:`TwoLayerReLU.objective`).
    time : float
        Seconds spent in the peer's solve call only.
    info : dict
        The peer's own reported values and the settings it was run with (for pyscnn:
        ``lam``, ``scaling``, ``pyscnn_objective`` in its own units, ``convex_objective``
        in ours, ``cone_violation``, ``status``, ...; see :func:`fit_pyscnn`).
    """

    network: TwoLayerReLU
    objective: float
    time: float
    info: dict = field(default_factory=dict)


def _import_pyscnn():
    """Import the parts of pyscnn used here; ImportError (with the install command) if any fails."""
    import importlib

    try:
        importlib.import_module("scnn")  # first, so a blocked top-level package is noticed
        from scnn.activations import sample_gate_vectors
        from scnn.metrics import Metrics
        from scnn.models import ConvexReLU
        from scnn.optimize import optimize_model
        from scnn.regularizers import NeuronGL1
        from scnn.solvers import AL
    except Exception as exc:  # ImportError, or an incompatibility raised at import time
        raise ImportError(
            f"the optional peer library pyscnn (import name 'scnn') cannot be imported "
            f"({type(exc).__name__}: {exc}); install it with: {INSTALL_COMMAND}"
        ) from exc
    return dict(sample_gate_vectors=sample_gate_vectors, Metrics=Metrics, ConvexReLU=ConvexReLU,
                optimize_model=optimize_model, NeuronGL1=NeuronGL1, AL=AL)


def _pyscnn_version() -> str | None:
    try:
        from importlib.metadata import PackageNotFoundError, version

        return version("pyscnn")
    except (ImportError, PackageNotFoundError):
        return None


def pyscnn_status() -> tuple[bool, str]:
    """Whether pyscnn can be used here, and why not if it cannot.

    Returns
    -------
    (available, reason) : (bool, str)
        ``(True, "pyscnn <version> importable ...")`` or ``(False, reason)`` where the
        reason has the import error's text and the install command
        ``pip install --no-deps pyscnn linalg-backends opt_einsum``.
    """
    try:
        _import_pyscnn()
    except ImportError as exc:
        return False, str(exc)
    return True, f"pyscnn {_pyscnn_version() or '(unknown version)'} importable (module scnn)"


@contextlib.contextmanager
def _restore_global_state():
    """Put back what pyscnn changes globally: NumPy/PyTorch seeds, logging levels, handlers."""
    np_state = np.random.get_state()
    torch = sys.modules.get("torch")
    torch_state = torch.get_rng_state() if torch is not None else None
    root = logging.getLogger()
    scnn_logger = logging.getLogger("scnn")
    root_level, root_handlers = root.level, list(root.handlers)
    scnn_level, scnn_propagate = scnn_logger.level, scnn_logger.propagate
    try:
        yield
    finally:
        np.random.set_state(np_state)
        if torch_state is not None:
            torch.set_rng_state(torch_state)
        root.setLevel(root_level)
        root.handlers[:] = root_handlers
        scnn_logger.setLevel(scnn_level)
        scnn_logger.propagate = scnn_propagate


class _Collect(logging.Handler):
    """Keep the warnings pyscnn logs during one run (its only convergence signal)."""

    def __init__(self):
        super().__init__(level=logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def _seed(random_state) -> int:
    if random_state is None:
        return int(np.random.default_rng().integers(2**31 - 1))
    if isinstance(random_state, np.random.Generator):
        return int(random_state.integers(2**31 - 1))
    is_int = isinstance(random_state, (numbers.Integral, np.integer)) \
        and not isinstance(random_state, (bool, np.bool_))
    if not is_int or int(random_state) < 0:
        raise ValueError(f"random_state must be None, a non-negative int or a numpy Generator; "
                         f"got {random_state!r}")
    return int(random_state)


def _last(values):
    if values is None:
        return None
    arr = np.asarray(values, dtype=float).ravel()
    return float(arr[-1]) if arr.size else None


def fit_pyscnn(X, y, beta, *, n_patterns: int = 1000, tol: float = 1e-6, max_iter: int = 10000,
               random_state=0) -> PeerResult:
    r"""Solve the scalar-output problem (paper eq. 5 / eq. 9) with pyscnn; return our network.

    Runs pyscnn's convex ReLU model with cone constraints (``ConvexReLU`` + ``AL``) with
    ``NeuronGL1(lam = beta / n)``, no data unitisation, no bias, float64 (see the module
    notes for why each is needed for the problem to be ours), and converts its convex
    weights into a :class:`~convexrelu.TwoLayerReLU` by Remark 5.1.

    Parameters
    ----------
    X : array of shape (n, d)
    y : array of shape (n,) or (n, 1)
        Scalar targets; ``c > 1`` raises ``ValueError``.
    beta : float > 0
        Weight decay of paper eq. 5 (our units; pyscnn is given ``beta / n``).
    n_patterns : int, default 1000
        Gaussian gate vectors pyscnn samples; it keeps the distinct non-zero patterns
        ``1[X g > 0]`` (``info["n_patterns_used"]``), each with a ``w_i`` and a ``v_i``.
    tol : float, default 1e-6
        pyscnn's ``AL(tol=..., constraint_tol=...)`` (its default): squared gradient norm
        of its ``1/n``-scaled objective and the cone-violation tolerance, not a relative
        gap. ``1e-8`` to ``1e-10`` for agreement with a certified optimum to ~1e-4 to 1e-7.
    max_iter : int, default 10000
        pyscnn's ``max_primal_iters`` (its default), which it also uses as the cap on
        the total number of inner (FISTA) iterations over all AL rounds.
    random_state : int, numpy Generator or None, default 0
        Seed of the gate vectors and of pyscnn's run.

    Returns
    -------
    PeerResult
        ``network``; ``objective`` (eq. 5 of ``network``, computed by convexrelu);
        ``time`` (seconds in pyscnn's ``optimize_model`` only); ``info`` with
        ``package``, ``version``, ``formulation``, ``solver``, ``lam`` (what pyscnn got),
        ``beta``, ``n``, ``scaling`` (the formula), ``objective_scale`` (``n``: our value
        = ``n`` x pyscnn's), ``pyscnn_objective`` (its final regularised objective
        without the AL penalty, in its units), ``pyscnn_augmented_objective`` (with it),
        ``pyscnn_grad_norm``, ``pyscnn_constraint_gap`` (its squared cone-violation
        norm), ``convex_objective`` (eq. 9 of its weights with its patterns, our units),
        ``cone_violation`` (max over neurons and samples of ``-(2D_i - I) X w_i``,
        clipped at 0), ``n_gates``, ``n_patterns_used``, ``n_neurons``, ``gates``
        (``d x p`` gate vectors of the patterns used), ``tol``, ``max_iter``, ``seed``,
        ``dtype``, ``unitize_data``, ``bias``, ``status`` (``"converged"`` or
        ``"max_iter"``) and ``warnings`` (what pyscnn logged).

    Raises
    ------
    ValueError
        Bad input, or ``y`` with more than one output column.
    ImportError
        pyscnn is not importable (the message has the install command).
    """
    X, Y = check_XY(X, y, "X", "y")
    if Y.shape[1] != 1:
        raise ValueError(
            f"fit_pyscnn compares on scalar-output problems only; y has c={Y.shape[1]} output "
            f"columns (pyscnn fits c > 1 one-vs-all with its loss divided by n*c, which is not "
            f"paper eq. 5's vector-output network): pass one column"
        )
    beta = check_beta(beta)
    n_patterns = check_positive_int(n_patterns, "n_patterns")
    tol = check_tol(tol)
    max_iter = check_positive_int(max_iter, "max_iter")
    seed = _seed(random_state)
    scnn = _import_pyscnn()

    n, d = X.shape
    lam = beta / n
    G = scnn["sample_gate_vectors"](seed, d, n_patterns)
    model = scnn["ConvexReLU"](G, c=1, bias=False)
    solver = scnn["AL"](model, max_primal_iters=max_iter, tol=tol, constraint_tol=tol)
    metrics = scnn["Metrics"](model_loss=True, constraint_gaps=True)
    collect = _Collect()
    scnn_logger = logging.getLogger("scnn")
    logger.debug("pyscnn: n=%d d=%d gates=%d lam=beta/n=%.6g tol=%g max_iter=%d seed=%d",
                 n, d, n_patterns, lam, tol, max_iter, seed)
    with _restore_global_state():
        # pyscnn's warnings are collected here and re-logged below through this module's
        # logger, not printed by the stream handler its logging.basicConfig installs
        scnn_logger.propagate = False
        scnn_logger.addHandler(collect)
        try:
            t0 = time.perf_counter()
            cmodel, met = scnn["optimize_model"](
                model, solver, metrics, X, Y, regularizer=scnn["NeuronGL1"](lam),
                return_convex=True, unitize_data=False, verbose=False, device="cpu",
                dtype="float64", seed=seed)
            elapsed = time.perf_counter() - t0
        finally:
            scnn_logger.removeHandler(collect)

    Wpos = np.asarray(cmodel.parameters[0], dtype=float)[0]   # (p, d): output weight +
    Wneg = np.asarray(cmodel.parameters[1], dtype=float)[0]   # (p, d): output weight -
    gates = np.asarray(cmodel.G, dtype=float)
    network = _network_from_convex(Wpos, Wneg, d)
    objective = float(network.objective(X, Y, beta))

    D = (X @ gates > 0).astype(float)                          # pyscnn's patterns, (n, p)
    pred = np.einsum("ip,ij,pj->i", D, X, Wpos - Wneg)
    norms = np.linalg.norm(Wpos, axis=1).sum() + np.linalg.norm(Wneg, axis=1).sum()
    convex_objective = float(0.5 * np.sum((pred - Y[:, 0]) ** 2) + beta * norms)
    signs = 2.0 * D - 1.0
    viol = max(float(np.max(-(signs * (X @ W.T)), initial=0.0)) for W in (Wpos, Wneg))
    viol = viol if viol > 0 else 0.0

    for msg in collect.messages:
        logger.info("pyscnn said: %s", msg)
    stopped = any(_MAX_ITER_WARNING in m for m in collect.messages)
    pyscnn_objective = _last(getattr(met, "model_loss", None))
    info = dict(
        package="pyscnn", version=_pyscnn_version(), formulation="relu (ConvexReLU, cone constraints)",
        solver="AL (augmented Lagrangian, FISTA inner)", lam=lam, beta=beta, n=n,
        scaling=("lam = beta / n: pyscnn minimises 1/(2n)||sum_i D_i X (w_i - v_i) - y||^2 "
                 "+ lam sum_i (||w_i|| + ||v_i||), which is 1/n times paper eq. 9 with beta"),
        objective_scale=float(n),
        pyscnn_objective=pyscnn_objective,
        pyscnn_augmented_objective=_last(getattr(met, "objective", None)),
        pyscnn_grad_norm=_last(getattr(met, "grad_norm", None)),
        pyscnn_constraint_gap=_last(getattr(met, "constraint_gaps", None)),
        convex_objective=convex_objective, cone_violation=viol,
        n_gates=n_patterns, n_patterns_used=int(gates.shape[1]), n_neurons=network.n_neurons,
        gates=gates, tol=tol, max_iter=max_iter, seed=seed, dtype="float64",
        unitize_data=False, bias=False, status="max_iter" if stopped else "converged",
        warnings=list(collect.messages),
    )
    logger.info("pyscnn: objective %.10g (eq. 5, ours), %d neurons, %.3f s, %s, cone violation %.2e",
                objective, network.n_neurons, elapsed, info["status"], info["cone_violation"])
    return PeerResult(network=network, objective=objective, time=elapsed, info=info)


def _network_from_convex(Wpos: np.ndarray, Wneg: np.ndarray, d: int) -> TwoLayerReLU:
    """Remark 5.1: w_i -> (w_i / sqrt|w_i|, +sqrt|w_i|), v_i -> (v_i / sqrt|v_i|, -sqrt|v_i|)."""
    cols, outs = [], []
    for W, sign in ((Wpos, 1.0), (Wneg, -1.0)):
        r = np.linalg.norm(W, axis=1)
        keep = r > 0
        s = np.sqrt(r[keep])
        cols.append(W[keep] / s[:, None])
        outs.append(sign * s)
    W1 = np.concatenate(cols, axis=0).T.reshape(d, -1)
    W2 = np.concatenate(outs)[:, None]
    return TwoLayerReLU(W1, W2)
