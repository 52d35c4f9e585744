r"""``solver="cg"``: fully-corrective conditional gradient (column generation), the default.

("cg" stands for *conditional gradient*, the Frank-Wolfe family, not conjugate gradient.)

The convex program (paper eq. 12) is a sparse combination of atoms
:math:`(X u)_+ v^\top` with unit ``u``. Each iteration

1. computes the residual and calls the exact oracle once: its value gives the
   certificate (:math:`\Omega(Z) \le \beta` proves optimality); its maximiser ``u`` and
   the best direction of every other violated cell (at most ``max_add``) are added;
2. re-solves the problem restricted to the active atoms: with the directions fixed this
   is a group lasso over the rows of the second layer,
   :math:`\min_V \tfrac12\|(XU)_+ V - Y\|^2 + \beta \sum_j \|v_j\|` (scikit-learn's
   ``MultiTaskLasso`` problem with ``alpha = beta / n``), solved to high accuracy by an
   interior-point method (Clarabel, residual-form SOCP; see :func:`group_lasso`): these
   masters have many nearly parallel atoms and a singular Gram matrix, where proximal
   gradient needs 1e4–1e5 iterations, and the certificate is first order in the
   residual's error; atoms with ``v_j = 0`` are dropped;
3. merges atoms that share a sign pattern when the SVD of their sum stays in the cell's
   cone (same predictions, smaller penalty), and
4. for rank >= 3 (or ``refine=True``), refines all active neurons jointly with L-BFGS
   on the training objective (eq. 5), kept only if it lowers the objective, then
   re-solves the outputs exactly.

It stops when the certificate's ``rel_gap <= tol``. With an exact oracle (enumerable
patterns) the result is certified; with the heuristic oracle it is not, and says so.

The master, the atom bookkeeping and the local moves live in :mod:`.engine` (shared with
the other column-generation solvers); this module holds the loop. The loop runs on a
*feature map* (:class:`~convexrelu.solvers.engine.DenseFeatures` by default); the
convolutional fit (:func:`convexrelu.conv.fit_conv`) runs it on its patch map. Every
result carries ``info["time_breakdown"]``: seconds in the oracle (calls, candidate
lists, arrangement), the restricted master, merging, the local refinement or sliding,
and ``other`` (certificates, predictions, bookkeeping), adding up to ``result.time``.
"""

from __future__ import annotations

import contextlib
import logging
import time

import numpy as np

from .._validation import check_device, check_positive_int, check_tol
from ..certificates import BNB_AUTO_MAX_RANK, omega_for_tol
from ..oracles.bnb import BranchAndBoundOracle
from ..oracles.spectral import spectral_result
from ..network import TwoLayerReLU
from .base import UNLIMITED_ITER, IterationLog, SolveResult, Solver
from ..kernels import AtomSystem, make_backend, relu_values, take_rows, use_backend
from .engine import (HAS_DIRECTION_TOL, DenseFeatures, adam_moves, escape, group_lasso,
                     group_lasso_general, has_direction, initial_outputs, known_directions,
                     merge_cells, prune, refine, slide_2d, split_network, step_outputs)

# Former homes of the engine's parts, kept importable from here (``from .cg import
# group_lasso``, and the private names older code and tests use).
from .engine import IPM_MAX_NNZ, IPM_MAX_ROWS, balanced_network, network_from_atoms  # noqa: F401,E402

__all__ = ["ConditionalGradient"]

logger = logging.getLogger(__name__)

_balanced, _split, _merge_cells = balanced_network, split_network, merge_cells
_refine, _slide_2d, _prune, _has_direction = refine, slide_2d, prune, has_direction

#: On the heuristic path (squared loss) each local move's L-BFGS iterations are followed
#: by ``ADAM_STEPS`` times as many full-batch Adam steps
#: (:func:`~convexrelu.solvers.engine.adam_moves`), which go on where L-BFGS levels off on
#: many-neuron networks; their cost is capped at ``ADAM_WORK`` multiply-adds
#: (:func:`adam_steps`: on large data, e.g. planted 100,000 x 50 or Dask, an Adam step costs
#: a pass over the rows and there are none). Measured as the median time to the best Adam
#: objective at 60 s (within 1e-3), two runs at a time, without -> with the Adam moves:
#: wine, beta = 0.01 lambda_max, seeds 0..7, 8.5 -> 4.2 s; diabetes, seeds 0..5,
#: 17.0 -> 10.7 s; planted 2000 x 20, seeds 0..2, 18.4 -> 15.2 s; digits, seeds 0..2,
#: 3.8 -> 4.6 s (where each evaluation is expensive, an Adam step gains less than an
#: L-BFGS iteration). ``ADAM_WORK`` 3e8 instead: wine 5.2 s, diabetes 12.3 s; 3e9:
#: planted 19.3 s. ``ADAM_STEPS`` 4 (uncapped): wine 5.5 s, diabetes 22.5 s.
ADAM_STEPS = 2
ADAM_WORK = 1e9
#: After an Adam move that did not lower the objective, the next ``2**k - 1`` local moves
#: skip it (``k`` the failures in a row, at most :data:`ADAM_BACKOFF_MAX`); one that does
#: resets ``k``. Once L-BFGS has settled, most Adam moves gain nothing (diabetes, beta =
#: 0.01 lambda_max: after the fourth iteration most of them returned the start, 75 ms
#: each, a third of an iteration). Measured with the short moves below, time to the best
#: Adam objective at 60 s (within 1e-3), seeds 0..11, median: diabetes 12.1 s (every
#: move) -> 10.4 s (backoff alone). ``False``: every move ends in Adam steps.
ADAM_BACKOFF = True
ADAM_BACKOFF_MAX = 6
#: With a heuristic oracle (no certificate can be proven), each local move runs at most
#: ``clip(REFINE_WORK / (n (d + c) m), 100, 1000)`` L-BFGS iterations (capped by
#: ``refine_max_iter``): longer moves where an evaluation is cheap, short ones where adding
#: atoms pays more (planted 2000 x 20: 1.6e-3 above the best Adam objective at 30 s with
#: 100, 3.2e-3 with 500). 1e8 rather than 3e8 together with :func:`warm_iterations`
#: (seeds 0..7, time to the best Adam objective at 60 s within 1e-3: wine, beta = 0.01
#: lambda_max, median 9.0 s -> 6.7 s; diabetes 25.8 -> 16.6 s, seeds 0..3; breast cancer
#: 1.74 -> 1.76 s; iris 0.44 -> 0.53 s).
REFINE_WORK = 1e8
#: Once an iteration lowers the objective by less than ``SHORT_MOVE_GAIN`` (relative), the
#: local moves are short: ``clip(SHORT_REFINE_WORK / (n (d + c) m), SHORT_REFINE_LEAST,
#: 1000)`` L-BFGS iterations, so that more of the time goes to new atoms and the masters
#: that prune (the moves then gain about 1e-5 each; the drops come after the masters).
#: An iteration that gains more brings the long moves back. Measured as the median time
#: to the best Adam objective at 60 s (within 1e-3), with the backoff above: diabetes,
#: beta = 0.01 lambda_max, seeds 0..11, 9.4 s (gain threshold 1e-4), 7.1 s (1e-3), 6.9 s
#: (1e-2; every seed under 8.7 s), 8.3 s (short from the first move: breast cancer,
#: beta = 0.1 lambda_max, then 0.25 s instead of 0.19 s); wine, beta = 0.01 lambda_max,
#: seeds 0..5, 3.8 / 3.6 / 3.0 s. ``None``: always long.
SHORT_REFINE_WORK = 2e7
SHORT_REFINE_LEAST = 50
SHORT_MOVE_GAIN = 1e-2
#: ``warm_width="auto"``: ``64 (0.1 lambda / beta)`` neurons (``lambda`` a cheap lower
#: estimate of lambda_max, :func:`_lambda_hint`: the smaller beta, the more neurons the
#: optimum has), at most ``WARM_PER_DIM d min(d, WARM_DIM_KNEE) / WARM_DIM_KNEE``
#: (low-dimensional data has few useful directions: iris, d = 4, beta = 0.01 lambda_max,
#: has about 30 neurons at its optimum; 128 neurons reached the best Adam objective in
#: 0.38 s, 256 in 0.73 s, 640 made its master slow; diabetes, d = 10, has about 100: 320
#: -> 640 neurons took the median time to the best Adam objective from 12.1 to 10.1 s,
#: seeds 0..11, and the slowest seed from 23.7 to 16.9 s) and ``WARM_WORK / (n (d + c))`` (one
#: evaluation of the warm start then costs at most about ``WARM_WORK`` multiply-adds),
#: within [64, 1024]. 4e7 rather than 5e6 once the local moves ended in Adam steps
#: (:data:`ADAM_STEPS`): median time to the best Adam objective at 60 s (within 1e-3),
#: beta = 0.01 lambda_max, 5e6 -> 2e7 -> 4e7: planted 2000 x 20, c = 10 (83 -> 333 -> 640
#: neurons; seeds 0..2) 15.2 -> 6.6 -> 5.4 s; digits (37 -> 150 -> 300 neurons, seeds 0..2)
#: 4.6 -> 1.8 -> 1.6 s; breast cancer (274 -> 960 neurons, seeds 0..5) 2.1 -> 2.3 -> 2.1 s.
#: Large data keeps 64 (planted 100,000 x 50).
WARM_WORK = 4e7
WARM_PER_DIM = 64
WARM_DIM_KNEE = 8
#: The warm start's L-BFGS iterations: ``100 width / 64`` (a wide start, for an optimum
#: with many neurons, needs a longer descent before atoms are added one by one), within
#: [100, 1000] and at most ``WARM_ITER_WORK / (n (d + c) width)`` (the descent's total
#: multiply-adds); the warm start also stops at 15 % of the time left when it starts.
WARM_ITER_WORK = 1.2e9
#: On the exact path (a proof is the aim) a local move runs ``refine_max_iter`` L-BFGS
#: iterations once the certificate's relative gap is below ``EXACT_LONG_MOVE_GAP``, and at
#: most ``EXACT_EARLY_MOVE`` before (far from the optimum, adding atoms pays more: linnerud,
#: beta = 0.01 lambda_max, reached the best Adam objective in 0.33 s instead of 0.90 s).
EXACT_LONG_MOVE_GAP = 1e-3
EXACT_EARLY_MOVE = 100


def _evaluation_work(n, d, c, m):
    """Multiply-adds of one evaluation of eq. 5 and its gradient on ``m`` neurons (about
    ``n (d + c) m``)."""
    return float(n) * (d + c) * max(int(m), 1)


def _iterations_by_cost(n, d, c, m, budget, limit, most=1000, least=100):
    """L-BFGS iterations on ``m`` neurons whose evaluations (:func:`_evaluation_work`
    each) add up to at most ``budget``, within ``[least, most]`` and never above ``limit``."""
    return int(min(limit, max(least, min(most, budget / _evaluation_work(n, d, c, m)))))


def heuristic_refine_iter(n, d, c, m, limit, short=False):
    """L-BFGS iterations of a local move on the heuristic path (see :data:`REFINE_WORK`;
    ``short``: :data:`SHORT_REFINE_WORK`)."""
    if short:
        return _iterations_by_cost(n, d, c, m, SHORT_REFINE_WORK, limit, least=SHORT_REFINE_LEAST)
    return _iterations_by_cost(n, d, c, m, REFINE_WORK, limit)


def adam_steps(n, d, c, m, iters):
    """Adam steps after a local move of ``iters`` L-BFGS iterations on ``m`` neurons:
    ``ADAM_STEPS * iters``, capped so that their evaluations cost at most ``ADAM_WORK``
    multiply-adds; none when fewer than 20 fit (see :data:`ADAM_STEPS`)."""
    steps = int(min(ADAM_STEPS * iters, ADAM_WORK / _evaluation_work(n, d, c, m)))
    return steps if steps >= 20 else 0


def warm_iterations(n, d, c, width, limit):
    """L-BFGS iterations of the warm start of ``width`` neurons (see
    :data:`WARM_ITER_WORK`), never above ``limit`` (``refine_max_iter``)."""
    return _iterations_by_cost(n, d, c, width, WARM_ITER_WORK, limit,
                               most=min(1000.0, 100.0 * width / 64.0))


def _lambda_hint(X, G):
    r"""A cheap lower estimate of :math:`\lambda_{\max} = \Omega(G)`: the largest
    :math:`\|G^\top (X u)_+\|` over the unit directions of the 64 rows where ``G`` is
    largest, and their opposites (one kernel call; only the warm start's width uses it)."""
    top = np.argsort(np.linalg.norm(G, axis=1))[::-1][:64]
    U = take_rows(X, top)
    U = U[np.linalg.norm(U, axis=1) > 0]
    if U.shape[0] == 0:
        return 0.0
    U = U / np.linalg.norm(U, axis=1, keepdims=True)
    return float(np.sqrt(max(float(np.max(relu_values(X, G, np.vstack([U, -U])))), 0.0)))


def auto_warm_width(n, d, c, ratio):
    """The warm start's width for ``warm_width="auto"`` (see :data:`WARM_WORK`);
    ``ratio`` is lambda_max (estimated) / beta."""
    want = 64.0 * 0.1 * max(float(ratio), 0.0)
    per_dim = np.inf if WARM_PER_DIM is None else \
        WARM_PER_DIM * d * (1.0 if WARM_DIM_KNEE is None else min(d, WARM_DIM_KNEE) / WARM_DIM_KNEE)
    return int(max(64, min(1024, want, per_dim, WARM_WORK / max(float(n) * (d + c), 1.0))))


#: Directions added in one iteration must activate different rows: their activation
#: patterns differ pairwise on at least this fraction of the rows (and on at least two
#: rows), taken best first from the oracle's maximiser and ``SPREAD_POOL * max_add``
#: candidates (the ``spread`` parameter's default). Neighbouring cells of one violated
#: region give nearly the same atom; the best of each cell filled every iteration with
#: them, and column generation needed more iterations (each with a larger master) to
#: reach the optimum. Measured on eleven exact rank-2 problems (spiral seeds 0..3, spiral
#: at beta 1e-3 and 1e-1 and with 120 points, Section 5.1, planted 100 x 2 to 400 x 2; one core, median of 5 fits, sum):
#: 1.25 s without, 0.88 s at 0.05, 1.0 s at 0.1, 0.86 s at 0.03; every fit certified;
#: iterations 7 -> 4 on the spiral, 12 -> 8 on the 120-point one; planted 1000 x 2,
#: c = 10: 4.95 -> 1.38 s (docs/design.md, section 5).
SPREAD = 0.05
SPREAD_POOL = 4
#: ... and only while the relative gap (estimate) is above ``SPREAD_GAP``: near the optimum
#: the violation is local, a neighbouring cell of an atom, exactly what the spread leaves
#: out (the spiral's iterations before its last all have gaps above 3e-3)
SPREAD_GAP = 1e-4
#: On data with more rows than this the patterns are compared on an even subsample of
#: this many rows.
SPREAD_ROWS = 4096


#: The parts of an iteration that ``info["time_breakdown"]`` times (plus ``"other"``).
TIMED_PARTS = ("oracle", "master", "merge", "refine", "prove")


class _Clock:
    """Seconds spent in each of :data:`TIMED_PARTS`; ``with clock("master"): ...``."""

    def __init__(self):
        self.seconds = dict.fromkeys(TIMED_PARTS, 0.0)

    @contextlib.contextmanager
    def __call__(self, part):
        t = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[part] += time.perf_counter() - t

    def breakdown(self, total):
        """The parts and ``other``: what is left of ``total`` (never negative)."""
        return dict(self.seconds, other=max(0.0, total - sum(self.seconds.values())))


class ConditionalGradient(Solver):
    """Fully-corrective conditional gradient with local refinement (``solver="cg"``).

    Parameters
    ----------
    tol : float, default 1e-6
        Stop when the certificate's relative gap is at most ``tol``.
    max_iter : int, default 100 (no limit when ``time_limit`` is given)
        Outer iterations (one oracle call each).
    refine : {"auto", True, False}, default "auto"
        Polish the neurons locally after each master solve: for rank-2 data slide every
        atom inside its cell jointly with the outputs (L-BFGS-B on the cells' arcs), else
        L-BFGS on the training objective. ``"auto"`` refines only for rank >= 3: in rank 2
        the oracle lists the best direction of every violated cell, and the exact master
        over those converges faster without sliding (measured in
        ``convexrelu bench --suite solvers``).
    refine_max_iter : int, default 1000
    merge : bool, default True
        Merge atoms that share a sign pattern (SVD of their sum) when valid.
    max_add : int, default 20
        Atoms added per iteration: the oracle's maximiser plus, when the oracle can list
        them (exact oracle, rank 2), the best directions of other violated cells.
    spread : float, default 0.05
        The directions added in one iteration activate different rows: their activation
        patterns differ pairwise on at least this fraction of the rows (and on at least
        two), chosen best first from the oracle's maximiser and ``4 * max_add`` candidates
        (neighbouring cells of one violated region give nearly the same atom), at most
        ``max_add`` in all, while the relative gap (estimate) is above
        :data:`SPREAD_GAP` (1e-4; near the optimum the violation is local and every
        candidate counts). ``0``: the maximiser and the best ``max_add`` candidates,
        however alike.
    time_limit : float, optional
        Seconds; stops with status ``"time_limit"``.
    verbose : int, default 0
        One log line per iteration at INFO level.
    max_escapes : int or "auto", default "auto"
        When only an *estimate* says the gap met ``tol`` (heuristic oracle), the solver
        first asks the oracle to search harder, then tries at most this many times a
        short non-convex descent (L-BFGS on eq. 5) from the network with added neurons
        (:func:`~convexrelu.solvers.engine.escape`); if that lowers the objective, the
        estimate was wrong and the iterations continue from the better network.
        ``"auto"``: 3; and with a ``time_limit`` (and no ``max_iter``), when no proof
        stands after them (and after branch and bound, where it runs), the descents go
        on, each from new random neurons, until one lowers the objective (the iterations
        then continue) or the time is spent: the fit uses the time it was given to look
        for a lower network rather than stop on an estimate (wine, beta = 0.01
        lambda_max, stopped at 27 s of 60 on an estimate while Adam's network at 60 s was
        6e-5 lower).
    warm_width : int or "auto", default "auto"
        With a heuristic oracle (no exact one for ``X``) and no ``init``, the solve starts
        from a short non-convex descent (L-BFGS on eq. 5) of this many neurons at the
        directions of the largest residuals and random directions (0: start from no
        neuron), for at most 15 % of the time left of ``time_limit`` and
        :func:`warm_iterations` L-BFGS iterations (100 for 64 neurons, more for wider
        starts, bounded by their cost). The conditional-gradient steps and the
        certificate then work from there. The descent reports its network (see
        ``callback``) at its L-BFGS iterations 10, 20, 40, ... and at its end.
        ``"auto"``: with a ``time_limit``, from 64 neurons to 1024 as lambda_max / beta
        grows and ``n (d + c)`` shrinks (see
        :func:`auto_warm_width`): problems whose optimum has hundreds of neurons get
        them at once, the weight decay and the master prune the rest; without a
        ``time_limit``, 64 (and the local moves on that path at most 100 L-BFGS
        iterations each: a fit bounded only by ``max_iter`` stays cheap and predictable).
    prove : {"auto", True, False}, default "auto"
        With a heuristic oracle, when the estimate met ``tol`` (and the escape descent
        found nothing), run branch and bound
        (:class:`~convexrelu.oracles.BranchAndBoundOracle`) on the final residual before
        stopping: it proves optimality (status ``"optimal"``), or finds a violating
        direction (added as a neuron; the iterations continue), or at its budget gives a
        proven bound tighter than the spectral one. ``"auto"``: when the oracle was chosen
        automatically and ``rank(X) <=``
        :data:`~convexrelu.certificates.BNB_AUTO_MAX_RANK`; ``True``: with any heuristic
        oracle.
    prove_time : float, optional
        Seconds per proof attempt. Default: with a ``time_limit``, the time left before it
        (the limit says how long the caller will wait, and a proof is what ``tol`` asks
        for; the search returns its proven bound at the limit, or at Ctrl-C); without
        one, at most 30 s per attempt and, over all attempts, twice as long as the solve
        without them (at least 10 s). An attempt that finds a violating direction adds it
        (and the best others it met) and the iterations continue, at full inner accuracy.
    device : None, str or torch.device, default None
        Where the dense work runs: None is NumPy on the host; a PyTorch device
        (``"cuda"``, ``"cuda:1"``, ``"cpu"``) runs the forward pass, the local moves'
        objective and gradients, the master's Gram matrices and QR, the oracle's batched
        evaluations and ascent, the spectral bound, and the merging and pattern tests
        there (:mod:`convexrelu.kernels`, :class:`~convexrelu._torch_kernels.TorchKernels`),
        with the data moved to the device once. The exact oracle's enumeration and branch
        and bound stay on the host. A CUDA device that PyTorch cannot see is an error.
    dtype : {"float64", "float32"}, default "float64"
        With a PyTorch ``device``: ``"float32"`` runs the local moves and the heuristic
        oracle's search in float32; the certificate (objective, residual, master, spectral
        bound, every bounding oracle) stays float64, so its ``dual`` is still proven.
    max_memory : float, optional
        Bytes of device memory a kernel call may use for its intermediate arrays (it
        works on row blocks that fit); default: half the free memory of a CUDA device,
        512 MB on the CPU.
    callback : callable, optional
        Called with a dict (``iter``, ``objective``, ``dual``, ``rel_gap``, ``network``,
        ``certificate``, ``stage``, ...) after each iteration (``stage`` ``"iteration"``)
        and, with a heuristic oracle, with the networks met between them that are lower
        than every network before: in the warm start's descent (``"warm start"``), the
        local moves (``"local move"``) and the escape descents (``"escape"``), at their
        L-BFGS iterations (Adam steps) 10, 20, 40, .... Those carry the spectral bound
        as their proven lower bound (no oracle call, never global); they are not in the
        result's history and do not decide when the solve stops, but an interrupt
        (Ctrl-C) returns such a network, with that certificate, when it is the lowest
        met. ``verbose=1`` prints them when the last line is a second old (long descents
        show progress), ``verbose=2`` always, labelled with their stage.
    random_state : None, int or Generator
        For the added neurons of the escape descent.

    Merging and refinement apply on the dense feature map only (``solve(...,
    features=...)`` with another map, e.g. the convolutional one, skips them). The result's
    ``info["time_breakdown"]`` gives the seconds spent in the oracle, the master, merging,
    refinement (or sliding), the final branch and bound (``prove``) and the rest.
    """

    name = "cg"
    _short_moves = False  # short local moves (see SHORT_MOVE_GAIN); set by each solve
    _deadline = None  # perf_counter() deadline of the current solve (time_limit)
    _escape_report = None  # reports an escape descent's networks (heuristic path)
    _dask = False  # whether the current solve runs on Dask data
    _spread_cache = None  # (X, host rows) of _spread_rows, reset by each solve
    losses = "cvxpy"  # squared: its own master; any other loss: through its CVXPY form
    default_max_iter = 100

    def __init__(self, *, tol=1e-6, max_iter=None, refine="auto", refine_max_iter=1000, merge=True,
                 max_add=20, spread=SPREAD, gl_tol=1e-10, max_escapes="auto", warm_width="auto",
                 time_limit=None, verbose=0, callback=None, random_state=None, prove="auto",
                 prove_time=None,
                 device=None, dtype="float64", max_memory=None):
        self._set_common(tol=tol, max_iter=max_iter, time_limit=time_limit, verbose=verbose,
                         callback=callback, random_state=random_state)
        if refine not in ("auto", True, False):
            raise ValueError(f"refine must be 'auto', True or False, got {refine!r}")
        self.refine = refine
        self.refine_max_iter = check_positive_int(refine_max_iter, "refine_max_iter")
        self.merge = bool(merge)
        self.max_add = check_positive_int(max_add, "max_add")
        real = (int, float, np.integer, np.floating)
        if isinstance(spread, bool) or not isinstance(spread, real) \
                or not 0.0 <= float(spread) < 1.0:
            raise ValueError(f"spread must be a fraction of the rows in [0, 1); got {spread!r}")
        self.spread = float(spread)
        self.gl_tol = check_tol(gl_tol, "gl_tol")
        self.max_escapes = (max_escapes if isinstance(max_escapes, str) and max_escapes == "auto"
                            else check_positive_int(max_escapes, "max_escapes", minimum=0))
        self.warm_width = (warm_width if isinstance(warm_width, str) and warm_width == "auto"
                           else check_positive_int(warm_width, "warm_width", minimum=0))
        if prove not in ("auto", True, False):
            raise ValueError(f"prove must be 'auto', True or False, got {prove!r}")
        self.prove = prove
        if prove_time is not None and not (np.isfinite(prove_time) and prove_time > 0):
            raise ValueError(f"prove_time must be None or a positive number of seconds; got {prove_time!r}")
        self.prove_time = None if prove_time is None else float(prove_time)
        self.device, self.dtype, self.max_memory = device, dtype, max_memory
        check_device(device, dtype, max_memory)

    def _solve(self, problem, beta, oracle, init: TwoLayerReLU | None = None, *,
               features=None) -> SolveResult:
        """Run the loop on ``oracle`` (built on ``X``) from ``init`` (or no neuron), on the
        back end of ``device`` (see :meth:`_loop`)."""
        if self.device is not None and type(problem.X).__module__.split(".")[0] == "dask":
            raise ValueError(f"device={self.device!r} with Dask input: a data-parallel fit runs "
                             "on the Dask cluster's workers; leave device=None")
        kern = make_backend(self.device, self.dtype, self.max_memory)
        if self.device is not None and problem.loss.name != "squared" \
                and not hasattr(problem.loss, "torch_value"):
            raise ValueError(f"device={self.device!r}: the {problem.loss.name} loss has no "
                             "PyTorch form (torch_value); fit it with device=None")
        self._search_kernels = kern
        with use_backend(kern.exact()):
            return self._loop(problem, beta, oracle, init, features=features)

    def _searching(self):
        """The context of the searches (local moves, the heuristic oracle): the back end
        in the requested ``dtype`` (float32 only there)."""
        return use_backend(self._search_kernels)

    def _loop(self, problem, beta, oracle, init: TwoLayerReLU | None = None, *,
              features=None) -> SolveResult:
        """Run the loop on ``oracle`` (built on ``X``) from ``init`` (or no neuron).

        ``features``: the feature map (see :class:`~convexrelu.solvers.engine.DenseFeatures`,
        the default on ``X``); with another map ``X`` must be its ``rows``, the matrix
        the oracle was built on. The result's ``info["time_breakdown"]`` says where the
        time went (``oracle``, ``master``, ``merge``, ``refine``, ``other``, in seconds).
        """
        X, Y, loss = problem.X, problem.Y, problem.loss
        fmap = DenseFeatures(X) if features is None else features
        name = self.name if fmap.name is None else f"{self.name}-{fmap.name}"
        self._loss, self._loss_name = loss, getattr(loss, "name", None)
        self._master_dual = None
        self._escapes = 0
        self._adam_fail = self._adam_wait = 0
        self._short_moves, last_primal = False, np.inf
        self._rng = np.random.default_rng(self.random_state)
        self._spread_cache = None  # see _spread_rows
        self._clock = clock = _Clock()
        smooth = np.isfinite(getattr(loss, "smoothness", 1.0))
        log = IterationLog(name, X, Y, beta, loss, self.tol, self.verbose, self.callback,
                           self.time_limit, t0=self._started)
        status, k = "max_iter", 0
        deadline = None if self.time_limit is None else log.t0 + float(self.time_limit)
        self._deadline = deadline
        gl_tol, refine_iter = self.gl_tol, self.refine_max_iter
        self._heuristic = oracle.kind == "heuristic"
        self._sparse_m = 0  # atoms left by the last exact (sparsifying) master
        self._prover = None
        dask = self._dask = type(X).__module__.split(".")[0] == "dask"
        if dask and self.prove is True:
            raise ValueError("prove=True with Dask input: branch and bound needs all rows in "
                             "one place (pass X.compute())")
        if (oracle.kind == "heuristic" and fmap.local_moves and not dask
                and (self.prove is True or (self.prove == "auto" and self._auto_oracle
                                            and problem.rank <= BNB_AUTO_MAX_RANK))):
            self._prover = BranchAndBoundOracle(problem, stop_above=self.tol, verbose=self.verbose)
        if oracle.kind == "heuristic":
            # no certificate can be proven: high-accuracy inner solves buy nothing beyond
            # what the requested tol needs (an estimate asked to meet tol = 1e-10, e.g. to
            # compare a Dask fit with the in-memory one, needs masters tighter than 1e-7)
            gl_tol = max(gl_tol, min(1e-7, 0.1 * self.tol))
        k = 0
        # the heuristic path (warm start, local moves) reports the networks its descents
        # meet (see callback)
        searching = oracle.kind == "heuristic" and fmap.local_moves
        moving = self._between(fmap, X, Y, loss, log, "local move") if searching else None
        self._escape_report = self._between(fmap, X, Y, loss, log, "escape") if searching \
            else None
        try:
            # inside the try: an interrupt once the warm start is recorded returns it
            if init is not None and init.n_neurons:
                U, V = split_network(init)
            else:
                U, V = np.zeros((X.shape[1], 0)), np.zeros((0, Y.shape[1]))
                width = self.warm_width
                if width == "auto" and deadline is None:
                    width = 64  # no budget to spend: the narrow, predictable start
                if searching and width == "auto":
                    lam = _lambda_hint(X, loss.gradient(np.zeros(Y.shape), Y))
                    width = auto_warm_width(X.shape[0], X.shape[1], Y.shape[1], lam / beta)
                if searching and width:
                    # no exact oracle: start from a short non-convex descent of a network of
                    # warm_width neurons (the conditional-gradient steps then add what it missed)
                    # for at most 15 % of the time left, so that the loop and its certificate
                    # get the rest (a quarter put the first iterate of planted 100000 x 50 at
                    # 18 s of 60; at 15 %: 11 s, and lower objectives at 30 s and 60 s). Of
                    # the time left, not of the limit: the set-up before it (the oracle, the
                    # first import of scikit-learn's warning class under a short limit, 0.5
                    # to 1 s) could leave a deadline already past, and the warm start then
                    # returned its random start (diabetes, beta = 0.1 lambda_max,
                    # time_limit=3: objective 195 at 0.7 s instead of 132 at 0.01 s)
                    now = time.perf_counter()
                    warm_deadline = None if deadline is None else \
                        now + 0.15 * max(deadline - now, 0.0)
                    warm = self._between(fmap, X, Y, loss, log, "warm start")
                    with clock("refine"), self._searching():
                        U, V, _ = escape(X, Y, beta, U, V, self._rng, warm_deadline,
                                         None if self._loss_name == "squared" else loss,
                                         n_new=width,
                                         max_iter=warm_iterations(X.shape[0], X.shape[1],
                                                                  Y.shape[1], width, refine_iter),
                                         progress=warm)
                    if U.shape[1]:
                        warm(U, V)
            for k in range(self.max_iter + 1):
                t_rec = time.perf_counter()
                res_p = None
                net = fmap.network(U, V)
                F = fmap.predict(net)
                # non-smooth loss: the master's multiplier is the subgradient to certify with
                G = loss.gradient(F, Y) if (smooth or self._master_dual is None) else self._master_dual
                Zo = fmap.pull_back(G)  # the oracle's point (G itself on the dense map)
                with clock("oracle"), self._oracle_context(oracle):
                    if fmap.local_moves:
                        oracle.hint(U)  # a searching oracle also starts from the neurons
                    res = oracle(Zo)
                cert = log.record(net, F, res, G=G, Zo=Zo)
                # short local moves once an iteration gains little (see SHORT_MOVE_GAIN)
                if SHORT_MOVE_GAIN is not None and np.isfinite(last_primal):
                    self._short_moves = (last_primal - cert.primal
                                         < SHORT_MOVE_GAIN * abs(last_primal))
                last_primal = cert.primal
                if deadline is not None:
                    # the inner steps stop early enough for the next oracle call and
                    # certificate (as long as this one took) to end by the time limit
                    self._deadline = deadline - 1.5 * (time.perf_counter() - t_rec)
                stop = log.stop_status(k, self.max_iter)
                if stop is None and deadline is not None and time.perf_counter() >= self._deadline:
                    stop = "time_limit"  # another iteration would end past the limit
                if stop == "estimate_converged":
                    # only an estimate met tol: search harder, then try to descend from
                    # a wider network, before believing it
                    res, cert, U, V, moved = self._doubt(oracle, fmap, X, Y, beta, U, V, net,
                                                         F, G, Zo, res, cert, log, self._deadline)
                    if moved:
                        U, V = self._master(fmap, Y, beta, U, V,
                                            max(gl_tol, 1e-3 * abs(cert.rel_gap_estimate)))
                        continue
                    stop = log.stop_status(k, self.max_iter)
                    if stop == "estimate_converged" and self._prover is not None \
                            and not log.out_of_time():
                        # prove it, or find the direction the estimate missed
                        res_p = self._prove(U, Zo, beta, cert.primal, G, log.Y)
                    if stop == "estimate_converged" and res_p is not None:
                        cert_p = log.record(net, F, res_p, G=G, Zo=Zo)
                        if cert_p.is_global and cert_p.primal <= log.best_primal:
                            log.best_net, log.best_cert = net, cert_p
                        if self._prover.last_stats.get("stopped") == "interrupted":
                            raise KeyboardInterrupt  # Ctrl-C in the proof: its bound is kept
                        if res_p.attained > beta * (1.0 + self.tol):
                            logger.info("cg: branch and bound found a direction at %.8g beta "
                                        "that the estimate missed; continuing",
                                        res_p.attained / beta)
                            res, stop = res_p, None
                            # a proof is now the aim: the inner solves at full accuracy
                            # (the heuristic path's looser ones leave Omega a little above
                            # beta, which no proof can get past)
                            gl_tol, refine_iter = self.gl_tol, self.refine_max_iter
                            self._heuristic = False
                        else:
                            stop = log.stop_status(k, self.max_iter)
                    if stop == "estimate_converged" and self._search_on(oracle, fmap, log):
                        # no proof stands and time is left: look for a lower network
                        U, V, moved = self._search(X, Y, beta, U, V, cert.primal)
                        if moved:
                            U, V = self._master(fmap, Y, beta, U, V,
                                                max(gl_tol, 1e-3 * abs(cert.rel_gap_estimate)))
                            continue
                if stop is not None:
                    status = stop
                    break
                arr = None
                if fmap.local_moves:
                    with clock("oracle"):
                        arr = oracle.arrangement_2d()
                slide = arr is not None and self.refine is True and self._loss_name == "squared"
                do_refine = fmap.local_moves and arr is None and self.refine in ("auto", True)
                new = self._new_atoms(X, oracle if res_p is None or res is not res_p
                                      else self._prover, Zo, res, beta, U,
                                      spread=cert.rel_gap_estimate > SPREAD_GAP)
                if new.shape[0]:
                    U = np.hstack([U, new.T])
                    if hasattr(fmap, "correlations"):
                        V = np.vstack([V, step_outputs(*fmap.correlations(new.T, -G), beta)])
                    else:
                        V = np.vstack([V, initial_outputs(fmap.atoms(new.T), F - G, F, beta)])
                # inexact master far from the optimum: accuracy follows the current gap.
                # Before a sliding solve (which re-optimises the outputs too) the group
                # lasso only selects atoms, so 1e-8 suffices there.
                floor = max(gl_tol, 1e-8) if slide else gl_tol
                tol_k = max(floor, 1e-3 * min(abs(cert.rel_gap_estimate), 1.0))
                # no FISTA probe: the new atoms' outputs are a first step, never within tol_k
                U, V = self._master(fmap, Y, beta, U, V, tol_k, probe=not new.shape[0])
                if slide:
                    # rank 2: slide the atoms inside their cells jointly with the outputs
                    iters = refine_iter if cert.rel_gap_estimate < 1e-3 else min(refine_iter, 200)
                    with clock("refine"):
                        U, V, slid = slide_2d(arr, X, Y, beta, U, V, iters, self._deadline)
                    if slid:
                        # the directions moved: re-solve the outputs exactly for them (the
                        # certificate is first order in the residual's error)
                        U, V = self._master(fmap, Y, beta, U, V, tol_k)
                    U, V = prune(U, V)
                    continue
                if self.merge and fmap.local_moves:
                    with clock("merge"):
                        U, V = merge_cells(X, U, V)
                if do_refine:
                    with clock("refine"), self._searching():
                        iters = self._refine_iter(X, Y, U.shape[1], refine_iter,
                                                  cert.rel_gap_estimate)
                        U, V, improved = refine(X, Y, beta, U, V, iters, self._deadline,
                                                None if self._loss_name == "squared" else loss,
                                                progress=moving)
                        steps = adam_steps(X.shape[0], X.shape[1], Y.shape[1], U.shape[1],
                                           iters) if self._heuristic else 0
                        use_adam = bool(steps) and self._loss_name == "squared"
                        if use_adam and ADAM_BACKOFF and self._adam_wait > 0:
                            # backing off after Adam moves that gained nothing
                            self._adam_wait -= 1
                            use_adam = False
                        if use_adam:
                            # Adam goes on where L-BFGS levels off (many-neuron networks)
                            U, V, moved = adam_moves(X, Y, beta, U, V, steps, self._deadline,
                                                     progress=moving)
                            improved = improved or moved
                            # after a move that gained nothing, skip the next ones (more
                            # of them after each failure; see ADAM_BACKOFF)
                            self._adam_fail = 0 if moved else min(self._adam_fail + 1,
                                                                  ADAM_BACKOFF_MAX)
                            self._adam_wait = (2 ** self._adam_fail) - 1
                    if improved:
                        U, V = self._master(fmap, Y, beta, U, V, tol_k)
        except KeyboardInterrupt:
            status = "interrupted"
            logger.warning("cg: interrupted at iteration %d; returning the best network so far", k)
        return log.result(status, k, info={"time_breakdown": clock.breakdown(log.elapsed())})

    @staticmethod
    def _between(fmap, X, Y, loss, log, stage):
        """The callable that reports a network ``(U, V)`` met between iterations (``stage``)
        to ``log`` (:meth:`~convexrelu.solvers.base.IterationLog.progress`), certified by
        the spectral bound (no oracle call)."""
        def report(U, V):
            net = fmap.network(U, V)
            F = fmap.predict(net)
            G = loss.gradient(F, Y)
            Zo = fmap.pull_back(G)
            log.progress(net, F, spectral_result(Zo, X, log.x_norm()), G=G, Zo=Zo, stage=stage)

        return report

    def _refine_iter(self, X, Y, m, limit, gap=0.0):
        """L-BFGS iterations of a local move: where a proof is the aim, ``limit`` once the
        relative gap ``gap`` is below :data:`EXACT_LONG_MOVE_GAP` and at most
        :data:`EXACT_EARLY_MOVE` before; on the heuristic path
        :func:`heuristic_refine_iter` when a ``time_limit`` is given (a budget to spend),
        else at most 100."""
        if not self._heuristic:
            return limit if not gap > EXACT_LONG_MOVE_GAP else min(limit, EXACT_EARLY_MOVE)
        if self.time_limit is None:
            return min(limit, 100)
        return heuristic_refine_iter(X.shape[0], X.shape[1], Y.shape[1], m, limit,
                                     short=self._short_moves)

    def _doubt(self, oracle, fmap, X, Y, beta, U, V, net, F, G, Zo, res, cert, log, deadline):
        """Before stopping on an estimate: ask a searching oracle to search harder (until
        it finds a violating direction or cannot search harder), then try a short
        non-convex descent from the network with added neurons (:func:`escape`). Returns
        ``(res, cert, U, V, moved)``: ``moved`` when the descent lowered the objective
        (the loop then continues from the new network); a violating direction found by
        the harder search is in ``res`` (recorded, so the estimate no longer meets tol)."""
        while not log.out_of_time() and oracle.intensify():
            with self._clock("oracle"), self._oracle_context(oracle):
                res = oracle(Zo)
            if res.value > beta * (1.0 + self.tol):
                cert = log.record(net, F, res, G=G, Zo=Zo)
                return res, cert, U, V, False
        most = 3 if self.max_escapes == "auto" else self.max_escapes
        if not fmap.local_moves or self._escapes >= most or log.out_of_time():
            return res, cert, U, V, False
        U, V, moved = self._escape_once(X, Y, beta, U, V, cert.primal, deadline)
        return res, cert, U, V, moved

    def _escape_once(self, X, Y, beta, U, V, primal, deadline):
        """One escape descent (:func:`escape`) from the network ``(U, V)``, whose objective
        is ``primal``. Returns ``(U, V, moved)``: the descent's network when it lowered
        the objective by more than ``tol`` (relative), else the network given."""
        self._escapes += 1
        with self._clock("refine"), self._searching():
            U2, V2, new_obj = escape(X, Y, beta, U, V, self._rng, deadline,
                                     None if self._loss_name == "squared" else self._loss,
                                     progress=self._escape_report)
        if new_obj < primal - max(self.tol, 1e-9) * abs(primal):
            logger.info("cg: the estimate met tol but escape descent %d (from a wider "
                        "network) lowered the objective %.10g -> %.10g; continuing",
                        self._escapes, primal, new_obj)
            return U2, V2, True
        return U, V, False

    def _search_on(self, oracle, fmap, log):
        """Whether to go on searching after an estimate met tol (``max_escapes="auto"``
        with a ``time_limit`` and no ``max_iter``, a heuristic oracle, and time left)."""
        return (self.max_escapes == "auto" and self.time_limit is not None
                and self.max_iter >= UNLIMITED_ITER and oracle.kind == "heuristic"
                and fmap.local_moves and not log.out_of_time()
                and self._deadline is not None and time.perf_counter() < self._deadline)

    def _search(self, X, Y, beta, U, V, primal):
        """Escape descents (:func:`escape`) from the network ``(U, V)``, each from new
        random neurons, until one lowers ``primal`` by more than ``tol`` (relative) or
        the deadline passes. Returns ``(U, V, moved)``."""
        while time.perf_counter() < self._deadline:
            U2, V2, moved = self._escape_once(X, Y, beta, U, V, primal, self._deadline)
            if moved:
                return U2, V2, True
        return U, V, False

    def _oracle_context(self, oracle):
        """A heuristic oracle searches in the requested ``dtype``; an oracle whose value
        is a bound computes in float64 (the certificate is built from it)."""
        if oracle.kind == "heuristic":
            return self._searching()
        return contextlib.nullcontext()

    def _prove(self, U, Zo, beta, primal, G, Y):
        """One branch-and-bound call on the residual ``Zo``, started from the neurons
        ``U``, within its time budget (see ``prove_time``). Its target is the largest bound
        on Omega that still certifies the network (objective ``primal``, gradient ``G`` on
        targets ``Y``) at ``tol``: :func:`~convexrelu.certificates.omega_for_tol`."""
        now = time.perf_counter()
        if self.prove_time is not None:
            budget = self.prove_time
        elif self._deadline is not None:
            budget = self._deadline - now  # all the time the caller allowed
        else:
            # no time limit: proving costs at most twice the solve without it, at least
            # 10 s, at most 30 s per attempt
            spent = self._clock.seconds.get("prove", 0.0)
            budget = min(30.0, max(10.0, 2.0 * (now - self._started - spent)) - spent)
            if budget <= 0.05:
                return None
        if self._deadline is not None:
            budget = min(budget, self._deadline - now)
        prover = self._prover
        # regions below the Omega that still certifies at tol need no refinement
        prover.target = omega_for_tol(primal, G, Y, beta, self._loss, self.tol)
        prover.time_limit = max(budget, 1e-3)
        prover.rtol = max(self.tol / 10.0, 1e-9)
        prover.hint(U)
        with self._clock("prove"):
            res = prover(Zo)
        st = prover.last_stats
        logger.info("cg: branch and bound: %s after %d regions (%.2f s), Omega <= %.10g "
                    "(%.3g beta), attained %.10g", st.get("stopped"), st.get("regions", 0),
                    res.time, res.value, res.value / beta, res.attained)
        return res

    def _new_atoms(self, X, oracle, Z, res, beta, U, spread=True):
        """Directions to add: the oracle's maximiser and, when the oracle can list them,
        the best direction of every other violated cell (spread over different rows, at
        most ``max_add`` in all; with ``spread=0`` the maximiser and at most ``max_add``
        others); ``Z`` is the point the oracle was called on, ``X`` its rows."""
        cand = [res.u] if res.value > beta else []
        if self.max_add > 1 and res.value > beta:
            spread = spread and self.spread > 0
            pool = self.max_add * (SPREAD_POOL if spread else 1)
            with self._clock("oracle"), self._oracle_context(oracle):
                _, more = oracle.candidates(Z, beta, pool)
            cand.extend(list(more))
        d = U.shape[0]
        if not cand:
            return np.zeros((0, d))
        C = np.array(cand).reshape(len(cand), d)
        # candidates that are atoms already (the same direction and pattern; one
        # activation call for all), and has_direction only for the candidates with a
        # (numerically) equal direction among the candidates before them
        known = known_directions(U, C, X)
        near_cands = np.any(np.tril(np.abs(C @ C.T - 1.0) <= HAS_DIRECTION_TOL, -1), axis=1)
        out = []
        for i, u in enumerate(C):
            if known[i]:
                continue
            if near_cands[i] and has_direction(np.array(out).T.reshape(d, -1), u, X):
                continue
            out.append(u)
        out = np.array(out).reshape(len(out), d)
        if spread and out.shape[0] > 1:
            return self._spread_out(X, out)
        return out[: self.max_add + 1]

    def _spread_rows(self, X):
        """The host rows on which :meth:`_spread_out` compares patterns: ``X`` itself (a
        NumPy array of at most :data:`SPREAD_ROWS` rows), else an even subsample of
        that many rows taken once per solve (Dask data: one pass, not one per iteration)."""
        if isinstance(X, np.ndarray) and X.shape[0] <= SPREAD_ROWS:
            return X
        cached = self._spread_cache
        if cached is None or cached[0] is not X:
            n = X.shape[0]
            idx = np.arange(n) if n <= SPREAD_ROWS else \
                np.unique(np.linspace(0, n - 1, SPREAD_ROWS).astype(np.int64))
            self._spread_cache = cached = (X, np.asarray(take_rows(X, idx), dtype=float))
        return cached[1]

    def _spread_out(self, X, C):
        """At most ``max_add`` of the candidate directions ``C`` (rows, best first): each
        kept when its activation pattern differs from every kept one's on at least
        ``spread`` of the rows of ``X`` (at least two rows; on an even subsample of
        :data:`SPREAD_ROWS` rows of larger data). The first is always kept."""
        rows = self._spread_rows(X)
        act = (rows @ C.T) > 0  # (rows, k), on the host
        least = max(2, int(np.ceil(self.spread * act.shape[0])))
        keep = [0]
        for i in range(1, C.shape[0]):
            if len(keep) >= self.max_add:
                break
            if np.all(np.count_nonzero(act[:, keep] != act[:, i:i + 1], axis=0) >= least):
                keep.append(i)
        return C[keep]

    def _master(self, fmap, Y, beta, U, V, tol=1e-12, probe=True):
        """The restricted master over the live atoms (timed as ``"master"``); atoms whose
        column vanishes or whose output row is zero are dropped. ``probe``: see
        :func:`~convexrelu.solvers.engine.group_lasso` (False right after new atoms)."""
        with self._clock("master"):
            if self._loss_name == "squared":
                # the master's data, computed where the data live (no n x m array on the host)
                H = fmap.system(U, Y) if hasattr(fmap, "system") else \
                    AtomSystem.from_features(fmap.atoms(U), Y)
                live = H.colsq > 0
                if not np.all(live):
                    U, V, H = U[:, live], V[live], H.subset(live)
                max_ipm, working_set = None, False
                if self._heuristic:
                    # no certificate can be proven on the heuristic path: no interior point
                    # that costs more than a few oracle calls (FISTA's answer is then kept
                    # and the L-BFGS moves re-optimise the outputs) ...
                    max_ipm = 0.05
                    if H.m > 1.5 * max(self._sparse_m, 32):
                        # ... except when the atoms have grown by half since the last exact
                        # master: a capped FISTA zeroes few of them (wine, beta = 0.01:
                        # 960 neurons after 60 s, stalled), the interior point does. It
                        # may take a tenth of the time left (of the time so far without a
                        # time limit)
                        now = time.perf_counter()
                        max_ipm = 0.1 * ((self._deadline - now) if self._deadline is not None
                                         else max(now - self._started, 5.0))
                        # on a working set of the atoms: the optimum keeps few of them
                        # (iris, beta = 0.01 lambda_max: 20 of 147; 0.4 s -> 0.04 s);
                        # not on Dask data, where each round's QR is a pass over the rows
                        working_set = not self._dask
                V = group_lasso(H, Y, beta, V, tol=tol, deadline=self._deadline,
                                max_ipm_time=max_ipm, working_set=working_set, probe=probe)
                if max_ipm is None or max_ipm > 0.05:
                    self._sparse_m = int(np.count_nonzero(np.linalg.norm(V, axis=1)))
            else:
                H = fmap.atoms(U)
                live = np.linalg.norm(H, axis=0) > 0
                U, V, H = U[:, live], V[live], H[:, live]
                V, self._master_dual = group_lasso_general(H, Y, beta, self._loss)
            keep = np.linalg.norm(V, axis=1) > 0
            return U[:, keep], V[keep]
