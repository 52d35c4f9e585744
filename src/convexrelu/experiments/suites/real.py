r"""``fit`` with its defaults against tuned Adam and the package's ``sgd``, equal wall time.

Every method gets the same wall-clock budget on the same prepared problem and is judged
on the same objective, paper eq. 5:

.. math:: p(W_1, W_2) = \tfrac12\|(XW_1)_+W_2 - Y\|_F^2 + \tfrac\beta2(\|W_1\|_F^2+\|W_2\|_F^2).

Problems (nothing is downloaded): scikit-learn's bundled ``linnerud`` (20 x 3, 3 targets),
``diabetes`` (442 x 10, 1 target), ``wine`` (178 x 13, 3 classes), ``breast_cancer``
(569 x 30, 2 classes), ``digits`` (1797 x 64, 10 classes), ``iris`` (150 x 4, 3 classes):
``X`` standardised per column (zero mean, unit variance; a constant column is left at
zero), regression targets standardised, classes one-hot (float); and the paper's planted
data ``convexrelu.datasets.planted(n, d, c=10, seed=0)`` as generated (``X ~ N(0, 1)``,
``Y`` from a random teacher) at ``n = 2000, d = 20`` and ``n = 100000, d = 50``.
``beta`` is ``0.1`` and ``0.01`` times an **estimated** :math:`\lambda_{\max}` (the
smallest ``beta`` whose optimum is zero), ``cr.omega(X, Y, oracle="heuristic",
random_state=0).attained``: a value attained by a unit direction, so a lower estimate of
:math:`\lambda_{\max} = \Omega(Y)`. Both fractions are run on every problem, the planted
ones included (the run length does not depend on ``beta``: every run has the budget).

Methods, each run in a fresh child process (``subprocess``; one BLAS/OpenMP/PyTorch
thread: ``OMP_NUM_THREADS`` etc. are 1 in the child's environment, and the child runs
under ``threadpoolctl.threadpool_limits(1)`` and ``torch.set_num_threads(1)``):

* ``default``: ``cr.fit(X, Y, beta, time_limit=budget, callback=...)``, every option at
  its default; one point per iteration, plus the returned network's objective when it
  came back within the budget. Also recorded: ``status``, ``certificate.is_global``,
  ``is_rigorous``, ``dual``, ``rel_gap`` and ``lower_bound`` when the certificate has one.
* ``adam-w{100,1000}-lr{1e-3,1e-2}``: the competitor, written here: full-batch
  ``torch.optim.Adam`` (default betas, no schedule) in float64 directly on eq. 5, width
  ``w`` and learning rate ``lr``; ``W1`` Kaiming-uniform for ReLU (``U(+-sqrt(6/d))``),
  ``W2`` ``U(+-1/sqrt(w))`` (PyTorch's default for a linear layer), seed 0. Its objective
  is the loss of the forward pass each step computes anyway; points are kept every step
  for the first 200 steps, then at most every ``budget/5000`` seconds, and at the end.
* ``sgd``: the package's baseline ``cr.fit(X, Y, beta, solver=SGD(1000, optimizer=...,
  time_limit=budget, max_iter=10**9, random_state=0))`` (``--sgd-optimizer``, default the
  package's own ``"sgd"``: momentum 0.95, automatic learning rate); one point per epoch
  (the values its ``history`` holds, kept like Adam's), plus the returned network.

Timing: the child imports what it needs (numpy, convexrelu, PyTorch for the PyTorch
methods, whose one-time warm-up, about a second for the first optimizer built, is paid
on a 2 x 2 dummy), loads the prepared arrays, and then starts its clock; from there everything
counts (oracle and pattern set-up, learning-rate search, initialisation, certification).
A run that has not finished ``grace`` seconds after its budget (default ``max(5,
budget/2)``) is killed; points recorded by then are kept (the child streams them to a
file), its status is ``"killed"``. Points after the budget never count. The parent
records each run's wall time (process start to exit) and its peak resident memory: the
child's own ``VmHWM`` (``/proc/self/status``; ``RUSAGE_SELF`` ``ru_maxrss`` where there is
no ``/proc``, but on Linux that also counts the parent's memory at the fork), for a killed
child the ``VmHWM`` the parent last read from ``/proc``; and the peak when the clock
started (interpreter, imports and data), so ``peak - start`` is what the method added.

Per problem: the objective of a method at time ``t`` is the lowest objective it had
reached by ``t`` (every method may keep its best iterate); ``best`` is the lowest any
method reached within the budget. Per method: the relative excess
``(obj - best) / |best|`` at ``budget/2`` and at ``budget`` (``-`` when it had no point
yet) and the first time within ``1e-3`` (relative) of ``best``. Then the criteria:

(a) ``default`` at ``budget/2`` and at ``budget`` is <= the best of the four Adam
    configurations at the same time;
(b) ``default`` reaches the best Adam configuration's final objective (the one lowest at
    the budget), within ``1e-3`` relative, in at most 1/4 of the time that configuration
    needed to come within ``1e-3`` of its own final value;
(c) ``default``'s final result has a proven lower bound: a finite ``certificate.dual``
    (always proven: from the oracle when ``is_rigorous``, else from the spectral bound;
    the oracle's estimate is ``dual_estimate``).

Any run whose status is ``"optimal"`` while ``is_global`` is False is flagged.

Then, in this process once every run has finished (nothing else running), the small exact
cases: the paper's Section 5.1 data (``convexrelu.datasets.planted()``, 25 x 2, c = 5) and
the spiral (``convexrelu.datasets.spiral()``, 60 x 2, c = 3), ``beta = 0.01``,
``cr.fit(X, Y, beta)`` with its defaults under ``threadpool_limits(1)``, one warm-up fit
and then ``--small-repeats`` (default 9) timed fits each:

(d) the median time is at most 0.05 s and the fit is certified (status ``"optimal"``,
    ``is_global``).

Output: ``<out>/real.json`` (machine, git revision, command line, budget, problems,
trajectories thinned to <= 300 points, summaries, criteria) and ``<out>/real.md`` (one
row per problem and ``beta``), rewritten atomically after each finished problem; one
progress line per finished run. ``--jobs 2`` runs two children at once: it perturbs the
timings (shared memory bandwidth and caches); the ratios are what count.

Usage::

    convexrelu bench --suite real [--quick] [--out DIR] -- [--budget S] [--problems a,b]
        [--jobs N] [--fractions 0.1,0.01] [--methods m1,m2] [--grace S] [--small-repeats N]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import math
import os
from pathlib import Path
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import traceback

import numpy as np

from convexrelu.experiments._common import (first_time_within, git_revision, machine_info,
                                            write_json, write_text)

#: Every problem, in run order; --quick runs QUICK_PROBLEMS.
PROBLEMS = ("linnerud", "diabetes", "wine", "breast_cancer", "digits", "iris",
            "planted2000", "planted100000")
QUICK_PROBLEMS = ("linnerud", "diabetes", "wine", "iris", "planted2000")
#: beta = fraction x estimated lambda_max.
BETA_FRACTIONS = (0.1, 0.01)
#: The four Adam configurations (width, learning rate).
ADAM_CONFIGS = tuple((w, lr) for w in (100, 1000) for lr in (1e-3, 1e-2))
ADAM_METHODS = tuple(f"adam-w{w}-lr{lr:.0e}".replace("e-0", "e-") for w, lr in ADAM_CONFIGS)
METHODS = ("default", *ADAM_METHODS, "sgd")
#: Width of the package's sgd baseline.
SGD_WIDTH = 1000
#: "Within" tolerance (relative) for times to reach a value.
RTOL = 1e-3
#: Criterion (b): default's time at most this fraction of Adam's.
SPEEDUP = 0.25
#: Stored points per trajectory.
MAX_POINTS = 300
#: Seconds a child may take to import and load the data before its clock starts.
STARTUP_TIMEOUT = 120.0
#: The small exact cases of criterion (d): name, ``convexrelu.datasets`` function (its
#: defaults), beta; timed ``SMALL_REPEATS`` times after a warm-up fit; (d) asks for a median
#: of at most ``SMALL_LIMIT`` seconds and a certified fit.
SMALL_CASES = (("§5.1 planted", "planted", 1e-2), ("spiral", "spiral", 1e-2))
SMALL_REPEATS = 9
SMALL_LIMIT = 0.05
#: Environment of every child: one thread everywhere.
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
               "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS", "BLIS_NUM_THREADS")

_DATASETS = {"linnerud": ("load_linnerud", "regression"), "diabetes": ("load_diabetes", "regression"),
             "wine": ("load_wine", "classes"), "breast_cancer": ("load_breast_cancer", "classes"),
             "digits": ("load_digits", "classes"), "iris": ("load_iris", "classes")}
_PLANTED = {"planted2000": (2000, 20, 10), "planted100000": (100000, 50, 10)}


# ======================================================================================
# problems
# ======================================================================================
def standardize(A):
    """Columns to zero mean and unit variance; a constant column becomes zero."""
    A = np.asarray(A, dtype=float)
    A = A - A.mean(axis=0)
    sd = A.std(axis=0)
    return np.divide(A, sd, out=np.zeros_like(A), where=sd > 0)


def load_problem(name):
    """``(X, Y, prep)`` of problem ``name`` (see the module docstring), ``prep`` in words."""
    if name in _PLANTED:
        from convexrelu.datasets import planted

        n, d, c = _PLANTED[name]
        X, Y, _ = planted(n=n, d=d, c=c, seed=0)
        return X, Y, f"planted(n={n}, d={d}, c={c}, seed=0), as generated"
    if name not in _DATASETS:
        raise ValueError(f"unknown problem {name!r}; choose from {', '.join(PROBLEMS)}")
    import sklearn.datasets

    loader, kind = _DATASETS[name]
    data = getattr(sklearn.datasets, loader)()
    X = standardize(data.data)
    if kind == "regression":
        y = np.asarray(data.target, dtype=float)
        Y = standardize(y.reshape(len(y), -1))
        return X, Y, f"sklearn {loader}: X and Y standardised per column"
    labels = np.asarray(data.target)
    classes = np.unique(labels)
    Y = (labels[:, None] == classes[None, :]).astype(float)
    return X, Y, f"sklearn {loader}: X standardised per column, {len(classes)} classes one-hot"


def estimate_lambda_max(X, Y):
    """Heuristic Omega(Y): attained by a unit direction, a lower estimate of lambda_max."""
    import convexrelu as cr

    return float(cr.omega(X, Y, oracle="heuristic", random_state=0).attained)


# ======================================================================================
# the child: one (problem, method) run
# ======================================================================================
def _maxrss_mb():
    """Peak resident memory of this process in MB: ``VmHWM`` of ``/proc/self/status``
    where there is one (Linux), else ``RUSAGE_SELF`` ``ru_maxrss``. On Linux ``ru_maxrss``
    of a freshly started process also counts its parent's resident memory at the fork
    (the suite's parent holds PyTorch, CVXPY and the data): ``VmHWM`` starts afresh at
    ``exec``."""
    hwm = _vmhwm_mb("self")
    if hwm is not None:
        return hwm
    import resource

    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kB on Linux, bytes on macOS
    return kb / 1024.0 ** (2 if sys.platform == "darwin" else 1)


class _Recorder:
    """Streams ``(time, objective)`` points (one JSON line each) so that a killed run keeps
    what it had; ``thin`` keeps every point of the first ``dense`` and then at most one
    per ``dt`` seconds (always the last via :meth:`final`)."""

    def __init__(self, fh, t0, dt=0.0, dense=200):
        self.fh, self.t0, self.dt, self.dense = fh, t0, dt, dense
        self.count, self.last_t, self.pending = 0, -math.inf, None

    def clock(self):
        return time.perf_counter() - self.t0

    def event(self, **kw):
        self.fh.write(json.dumps(kw) + "\n")
        self.fh.flush()

    def point(self, value, force=False):
        t = self.clock()
        self.count += 1
        if force or self.count <= self.dense or t - self.last_t >= self.dt:
            self.last_t = t
            self.pending = None
            self.event(e="p", t=t, f=float(value))
        else:
            self.pending = (t, float(value))

    def final(self):
        if self.pending is not None:
            self.event(e="p", t=self.pending[0], f=self.pending[1])
            self.pending = None


def _certificate_fields(res):
    cert = res.certificate
    # the certificate's dual is always a proven lower bound (spectral when not rigorous)
    return dict(status=res.status, objective=float(res.objective), n_iter=int(res.n_iter),
                n_neurons=int(res.network.n_neurons), is_global=bool(cert.is_global),
                is_rigorous=bool(cert.is_rigorous), dual=float(cert.dual),
                rel_gap=float(cert.rel_gap), dual_estimate=float(cert.dual_estimate),
                rel_gap_estimate=float(cert.rel_gap_estimate),
                oracle_kind=cert.oracle_kind, pattern_scope=cert.pattern_scope,
                lower_bound=float(cert.dual), has_lower_bound_field=True)


def _run_default(X, Y, beta, budget, rec, device=None):
    import convexrelu as cr

    res = cr.fit(X, Y, beta, time_limit=max(budget - rec.clock(), 1e-3), device=device,
                 callback=lambda info: rec.point(info["objective"]))
    rec.final()
    rec.point(res.objective, force=True)  # the returned network, when it came back
    return _certificate_fields(res)


def _run_sgd(X, Y, beta, budget, rec, optimizer, device=None):
    import convexrelu as cr
    from convexrelu.solvers import SGD

    solver = SGD(SGD_WIDTH, optimizer=optimizer, time_limit=max(budget - rec.clock(), 1e-3),
                 device=device or "cpu",
                 max_iter=10**9, random_state=0, callback=lambda info: rec.point(info["objective"]))
    res = cr.fit(X, Y, beta, solver=solver)
    rec.final()
    rec.point(res.objective, force=True)
    out = _certificate_fields(res)
    out.update(optimizer=optimizer, epochs=int(res.n_iter), lr0=res.info.get("lr0"),
               final_lr=res.info.get("final_lr"))
    return out


def _run_adam(X, Y, beta, budget, rec, width, lr, seed=0, device=None):
    """Full-batch Adam (float64) on eq. 5 until the budget is spent (on ``device``)."""
    import torch

    torch.manual_seed(seed)
    dt = torch.float64
    dev = torch.device(device or "cpu")
    Xt = torch.as_tensor(X, dtype=dt).to(dev)
    Yt = torch.as_tensor(Y, dtype=dt).to(dev)
    d, c = X.shape[1], Y.shape[1]
    W1 = torch.empty(width, d, dtype=dt)
    torch.nn.init.kaiming_uniform_(W1, nonlinearity="relu")  # U(+-sqrt(6/d)), fan_in = d
    W1 = W1.T.contiguous().to(dev).requires_grad_(True)
    bound = 1.0 / math.sqrt(width)
    W2 = torch.empty(width, c, dtype=dt).uniform_(-bound, bound).to(dev).requires_grad_(True)
    opt = torch.optim.Adam([W1, W2], lr=lr)
    half_beta = 0.5 * beta
    steps, status = 0, "time_limit"
    while rec.clock() < budget:
        opt.zero_grad(set_to_none=True)
        R = torch.relu(Xt @ W1) @ W2 - Yt
        obj = 0.5 * torch.sum(R * R) + half_beta * (torch.sum(W1 * W1) + torch.sum(W2 * W2))
        val = float(obj.detach())
        if not math.isfinite(val):
            status = "diverged"
            break
        rec.point(val)  # the objective of the weights this step starts from
        obj.backward()
        opt.step()
        steps += 1
    rec.final()
    return dict(status=status, steps=steps, width=width, lr=lr, seed=seed)


def _warm_up_torch(torch):
    """PyTorch's one-time costs, paid before the clock: the first optimizer built imports
    ``torch._dynamo`` (about a second), which a session that trains twice pays once."""
    w = torch.zeros(2, 2, dtype=torch.float64, requires_grad=True)
    for opt in (torch.optim.Adam([w], lr=1e-3), torch.optim.SGD([w], lr=1e-3, momentum=0.9)):
        sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt)
        opt.zero_grad(set_to_none=True)
        loss = torch.sum(torch.relu(w @ w))
        loss.backward()
        opt.step()
        sched.step(float(loss))


def run_small(repeats=SMALL_REPEATS):
    """Criterion (d): time ``cr.fit`` with its defaults on the small exact cases
    (:data:`SMALL_CASES`), single-threaded, one warm-up fit and ``repeats`` timed ones."""
    import convexrelu as cr
    from convexrelu import datasets
    from threadpoolctl import threadpool_limits

    out = []
    for name, fn, beta in SMALL_CASES:
        X, Y = getattr(datasets, fn)()[:2]
        times, every = [], True
        with threadpool_limits(1):
            res = cr.fit(X, Y, beta)  # the warm-up: first-call imports and caches
            for _ in range(repeats):
                t = time.perf_counter()
                res = cr.fit(X, Y, beta)
                times.append(time.perf_counter() - t)
                every = every and res.status == "optimal" and res.certificate.is_global
        med = float(np.median(times))
        cert = res.certificate
        certified = bool(every)  # every timed fit, not only the last
        out.append(dict(name=name, n=int(X.shape[0]), d=int(X.shape[1]), c=int(Y.shape[1]),
                        beta=beta, times_s=times, median_s=med, min_s=float(min(times)),
                        max_s=float(max(times)), status=res.status, is_global=bool(cert.is_global),
                        rel_gap=float(cert.rel_gap), objective=float(res.objective),
                        n_iter=int(res.n_iter), certified_every=certified,
                        passed=bool(certified and med <= SMALL_LIMIT)))
    return out


def _child_main(spec_path) -> int:
    """Entry point of a child process: run ``spec["method"]`` and stream JSON lines."""
    spec = json.loads(Path(spec_path).read_text())
    method, budget = spec["method"], float(spec["budget"])
    with open(spec["events"], "w") as fh:
        try:
            import warnings

            from threadpoolctl import threadpool_limits

            import convexrelu  # noqa: F401  (imported before the clock starts)

            device = spec.get("device")
            if method != "default" or device is not None:
                import torch

                torch.set_num_threads(1)
                try:
                    torch.set_num_interop_threads(1)
                except RuntimeError:  # already set
                    pass
                _warm_up_torch(torch)
                if device is not None:  # the device's own start-up, before the clock
                    float(torch.ones(2, 2, dtype=torch.float64, device=device).sum())
            with np.load(spec["data"]) as z:
                X, Y = z["X"], z["Y"]
            beta = float(spec["beta"])
            # after the imports, so that every BLAS/OpenMP library loaded by now is limited
            with threadpool_limits(1), warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                rec = _Recorder(fh, time.perf_counter(), dt=budget / 5000.0)
                rec.event(e="start", rss_mb=_maxrss_mb())
                if method == "default":
                    out = _run_default(X, Y, beta, budget, rec, device)
                elif method == "sgd":
                    out = _run_sgd(X, Y, beta, budget, rec, spec.get("sgd_optimizer", "sgd"),
                                   device)
                else:
                    width, lr = ADAM_CONFIGS[ADAM_METHODS.index(method)]
                    out = _run_adam(X, Y, beta, budget, rec, width, lr, device=device)
                out["time"] = rec.clock()
            msgs = list(dict.fromkeys(f"{w.category.__name__}: {w.message}" for w in caught))
            out["warnings"] = [m[:300] for m in msgs[:5]]
            rec.event(e="end", result=out, peak_rss_mb=_maxrss_mb())
            return 0
        except Exception as exc:  # noqa: BLE001 - reported to the parent, which carries on
            fh.write(json.dumps(dict(e="error", error=f"{type(exc).__name__}: {exc}",
                                     traceback=traceback.format_exc()[-3000:],
                                     peak_rss_mb=_maxrss_mb())) + "\n")
            fh.flush()
            return 1


# ======================================================================================
# the parent: launch, watch, collect
# ======================================================================================
def _vmhwm_mb(pid):
    """Peak resident memory (``VmHWM``) of a live process from /proc (Linux), or None."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except (OSError, ValueError, IndexError):
        pass
    return None


def _read_events(path):
    events = []
    try:
        with open(path) as fh:
            for line in fh:
                try:
                    events.append(json.loads(line))
                except json.JSONDecodeError:  # a line cut by a kill
                    pass
    except OSError:
        pass
    return events


def run_one(workdir, data_path, problem_key, method, beta, budget, grace, sgd_optimizer="sgd",
            stop=None, device=None):
    """Run ``method`` in a fresh child process; return its record (trajectory included).

    ``stop``: a :class:`threading.Event`; when set (Ctrl-C in the parent), the child is
    killed."""
    tag = f"{problem_key}__{method}".replace("/", "_")
    spec_path = os.path.join(workdir, tag + ".spec.json")
    events_path = os.path.join(workdir, tag + ".events.jsonl")
    err_path = os.path.join(workdir, tag + ".stderr")
    Path(spec_path).write_text(json.dumps(dict(method=method, budget=budget, beta=beta,
                                               data=data_path, events=events_path,
                                               sgd_optimizer=sgd_optimizer, device=device)))
    env = dict(os.environ, **{v: "1" for v in THREAD_VARS})
    code = ("import sys; from convexrelu.experiments.suites.real import _child_main; "
            "sys.exit(_child_main(sys.argv[1]))")
    t_launch = time.perf_counter()
    killed, hwm, started_at = None, None, None
    with open(err_path, "w") as err:
        proc = subprocess.Popen([sys.executable, "-c", code, spec_path], env=env,
                                stdout=subprocess.DEVNULL, stderr=err)
        try:
            while True:
                try:
                    proc.wait(timeout=0.2)
                    break
                except subprocess.TimeoutExpired:
                    pass
                hwm = _vmhwm_mb(proc.pid) or hwm
                now = time.perf_counter()
                if started_at is None and os.path.exists(events_path) \
                        and os.path.getsize(events_path) > 0:  # the first line: "start"
                    started_at = now
                if started_at is None and now - t_launch > STARTUP_TIMEOUT:
                    killed = f"no start within {STARTUP_TIMEOUT:.0f} s"
                elif started_at is not None and now - started_at > budget + grace:
                    killed = f"still running {grace:g} s after the budget"
                if stop is not None and stop.is_set():
                    killed = "interrupted"
                if killed:
                    proc.kill()
                    proc.wait()
                    break
        finally:
            if proc.poll() is None:  # interrupted (Ctrl-C): never leave the child behind
                proc.kill()
                proc.wait()
    wall = time.perf_counter() - t_launch
    events = _read_events(events_path)
    start = next((e for e in events if e.get("e") == "start"), {})
    end = next((e for e in events if e.get("e") in ("end", "error")), None)
    times = [e["t"] for e in events if e.get("e") == "p"]
    values = [e["f"] for e in events if e.get("e") == "p"]
    rec = dict(method=method, wall_s=wall, returncode=proc.returncode,
               rss_start_mb=start.get("rss_mb"), times=times, values=values)
    if end is not None and end.get("e") == "end":
        rec.update(end["result"])
        rec["peak_rss_mb"] = end.get("peak_rss_mb")
        rec["peak_rss_source"] = "child's own peak (VmHWM, else ru_maxrss)"
    else:
        rec["peak_rss_mb"] = (end or {}).get("peak_rss_mb", hwm)
        rec["peak_rss_source"] = ("child's own peak (VmHWM, else ru_maxrss)" if end else
                                  "VmHWM read by the parent (last read before the kill)")
        if killed:
            rec.update(status="killed", killed=killed)
        elif end is not None:
            rec.update(status="error", error=end.get("error"), traceback=end.get("traceback"))
        else:
            rec.update(status="crashed", error=f"exit status {proc.returncode} without a result")
        try:
            rec["stderr_tail"] = Path(err_path).read_text(errors="replace")[-2000:]
        except OSError:
            pass
    return rec


# ======================================================================================
# summaries and criteria
# ======================================================================================
def value_at(times, values, t):
    """Lowest objective reached by time ``t`` (None before the first point)."""
    v = [f for s, f in zip(times, values) if s <= t]
    return float(min(v)) if v else None


def time_to(times, values, target, budget, rtol=RTOL):
    """First time <= budget within ``rtol`` of ``target`` (None = never)."""
    pts = [(s, f) for s, f in zip(times, values) if s <= budget]
    if not pts or target is None:
        return None
    t, v = zip(*pts)
    return first_time_within(t, v, target, rtol)


def _excess(v, best):
    if v is None or best is None:
        return None
    return float((v - best) / max(abs(best), 1e-300))


def thin(times, values, k=MAX_POINTS):
    """At most ``k`` points, evenly by index, keeping the first, the last and the best."""
    n = len(times)
    if n <= k:
        return dict(time=list(times), objective=list(values))
    idx = set(np.linspace(0, n - 1, k - 1).round().astype(int).tolist())
    idx.add(int(np.argmin(values)))
    idx = sorted(idx)
    return dict(time=[times[i] for i in idx], objective=[values[i] for i in idx])


def summarize(runs, budget):
    """Per-method summaries, ``best``, and the criteria (a), (b), (c) of one problem."""
    half = budget / 2.0
    finals = {m: value_at(r["times"], r["values"], budget) for m, r in runs.items()}
    reached = [v for v in finals.values() if v is not None]
    best = min(reached) if reached else None
    best_method = next((m for m, v in finals.items() if v == best), None) if reached else None
    summary = {}
    for m, r in runs.items():
        summary[m] = dict(
            objective_half=value_at(r["times"], r["values"], half), objective_final=finals[m],
            excess_half=_excess(value_at(r["times"], r["values"], half), best),
            excess_final=_excess(finals[m], best),
            time_to_rtol=time_to(r["times"], r["values"], best, budget),
            peak_rss_mb=r.get("peak_rss_mb"), rss_start_mb=r.get("rss_start_mb"),
            wall_s=r["wall_s"], status=r.get("status"), n_points=len(r["times"]))
    crit = dict(a=None, b=None, c=None)
    d = runs.get("default")
    adams = [m for m in ADAM_METHODS if m in runs]
    inf = math.inf
    if d is not None and adams:
        rows = []
        ok = True
        for t in (half, budget):
            dv = value_at(d["times"], d["values"], t)
            av = {m: value_at(runs[m]["times"], runs[m]["values"], t) for m in adams}
            am = min(av, key=lambda m: inf if av[m] is None else av[m])
            good = dv is not None and (av[am] is None or dv <= av[am])
            ok &= good
            rows.append(dict(t=t, default=dv, best_adam=av[am], best_adam_method=am, ok=good))
        crit["a"] = dict(passed=ok, at=rows)
        am = min(adams, key=lambda m: inf if finals[m] is None else finals[m])
        target = finals[am]
        t_adam = time_to(runs[am]["times"], runs[am]["values"], target, budget)
        t_def = time_to(d["times"], d["values"], target, budget)
        passed = (t_def is not None and t_adam is not None and t_def <= SPEEDUP * t_adam)
        crit["b"] = dict(passed=passed, adam_method=am, adam_final=target, adam_time=t_adam,
                         default_time=t_def, rtol=RTOL,
                         ratio=None if not (t_def is not None and t_adam) else t_def / t_adam)
    if d is not None:
        lb, dual = d.get("lower_bound"), d.get("dual")
        rigorous = bool(d.get("is_rigorous")) and dual is not None and math.isfinite(dual)
        finite_lb = lb is not None and math.isfinite(lb)
        if "is_global" not in d:
            why = f"no result ({d.get('status')}: {d.get('killed') or d.get('error') or ''})"
        elif finite_lb and not rigorous:
            why = f"proven dual {lb:.6g} (spectral bound; the {d.get('oracle_kind')} oracle's " \
                  f"estimate is {d.get('dual_estimate', float('nan')):.6g})"
        elif rigorous:
            why = f"rigorous dual {dual:.6g} ({d.get('oracle_kind')} oracle)"
        else:
            why = (f"dual {dual:.6g} is an estimate ({d.get('oracle_kind')} oracle, "
                   f"{d.get('pattern_scope')} patterns); "
                   + ("no finite lower_bound" if d.get("has_lower_bound_field")
                      else "the certificate has no lower_bound field"))
        crit["c"] = dict(passed=bool(finite_lb or rigorous), why=why,
                         is_rigorous=d.get("is_rigorous"), dual=dual, lower_bound=lb,
                         has_lower_bound_field=d.get("has_lower_bound_field"))
    return best, best_method, summary, crit


def flags_of(runs, label):
    """Runs with status "optimal" but is_global False (must never happen)."""
    return [f"{label} {m}: status 'optimal' with is_global False" for m, r in runs.items()
            if r.get("status") == "optimal" and r.get("is_global") is False]


# ======================================================================================
# output
# ======================================================================================
def _g(v, spec=".1e", none="—"):
    if v is None:
        return none
    if spec == ".1e" and v == 0:
        return "0"
    return format(v, spec)


def _pf(c):
    return "—" if c is None else ("PASS" if c["passed"] else "FAIL")


def markdown(result):
    budget = result["budget_s"]
    methods = result["methods"]
    h = f"{budget / 2:g}s"
    lines = [f"# `fit` defaults vs tuned Adam and sgd, {budget:g} s each "
             f"({'quick' if result['quick'] else 'full'})", "",
             f"git {result['git_revision']}; jobs {result['jobs']}"
             + (" (runs in parallel: timings perturbed, ratios are what count)"
                if result["jobs"] > 1 else "") + f"; kill grace {result['grace_s']:g} s; "
             f"single-threaded children.", "",
             f"Cells per method: relative excess over `best` at {h} / at {budget:g}s / first "
             f"time within {RTOL:g} of `best` (— = no point yet / never). beta is a fraction "
             f"of an **estimated** lambda_max (heuristic Omega(Y), a lower estimate). "
             f"(a) default <= best Adam at {h} and {budget:g}s; (b) default reaches the best "
             f"Adam final objective (rtol {RTOL:g}) in <= {SPEEDUP:g} x that Adam's time; "
             f"(c) default's result has a proven lower bound.", ""]
    head = (["problem", "n x d", "c", "beta/λmax(est)"] + methods
            + ["default status / certified", "peak MB (default; adam max; sgd)", "(a)", "(b)", "(c)"])
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for p in result["problems"]:
        s = p["summary"]
        cells = [p["name"], f"{p['n']} x {p['d']}", str(p["c"]), f"{p['beta_fraction']:g}"]
        for m in methods:
            x = s.get(m)
            cells.append("n/a" if x is None else
                         f"{_g(x['excess_half'])} / {_g(x['excess_final'])} / "
                         f"{_g(x['time_to_rtol'], '.2f', 'never')}")
        d = p["runs"].get("default", {})
        cells.append(f"{d.get('status', '—')} / {d.get('is_global', '—')}"
                     + (f" (rel_gap {d['rel_gap']:.1e})" if d.get("rel_gap") is not None else ""))
        adam_peaks = [s[m]["peak_rss_mb"] for m in ADAM_METHODS if m in s and s[m]["peak_rss_mb"]]
        peaks = [s.get("default", {}).get("peak_rss_mb"), max(adam_peaks) if adam_peaks else None,
                 s.get("sgd", {}).get("peak_rss_mb")]
        cells.append("; ".join(_g(v, ".0f") for v in peaks))
        cells += [_pf(p["criteria"][k]) for k in ("a", "b", "c")]
        lines.append("| " + " | ".join(cells) + " |")
    if result.get("small"):
        lines += ["", f"## Small exact cases (d): median of {result['small_repeats']} fits "
                  f"<= {SMALL_LIMIT:g} s, certified", "",
                  "| problem | n x d | c | beta | median s | min s | max s | iterations | status "
                  "| certified (rel_gap) | (d) |", "|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in result["small"]:
            lines.append(f"| {r['name']} | {r['n']} x {r['d']} | {r['c']} | {r['beta']:g} | "
                         f"{r['median_s']:.4f} | {r['min_s']:.4f} | {r['max_s']:.4f} | "
                         f"{r['n_iter']} | {r['status']} | {r['is_global']} ({r['rel_gap']:.1e}) | "
                         f"{'PASS' if r['passed'] else 'FAIL'} |")
    lines += ["", "## Runs", "",
              "| problem | method | objective at budget | status | wall s | peak MB | start MB "
              "| points | note |", "|---|---|---|---|---|---|---|---|---|"]
    for p in result["problems"]:
        for m in methods:
            r, x = p["runs"].get(m), p["summary"].get(m)
            if r is None:
                continue
            note = r.get("killed") or r.get("error") or ""
            if m == "default" and "dual" in r:
                note = (f"dual {r['dual']:.6g} ({'oracle bound' if r['is_rigorous'] else 'spectral bound'}), "
                        f"{r.get('n_iter')} it, {r.get('n_neurons')} neurons " + note)
            elif m.startswith("adam") and "steps" in r:
                note = f"{r['steps']} steps " + note
            elif m == "sgd" and "epochs" in r:
                note = f"{r['epochs']} epochs, lr0 {_g(r.get('lr0'), '.3g')} " + note
            lines.append(f"| {p['name']} | {m} | {_g(x['objective_final'], '.8g')} | "
                         f"{r.get('status')} | {r['wall_s']:.1f} | {_g(x['peak_rss_mb'], '.0f')} | "
                         f"{_g(x['rss_start_mb'], '.0f')} | {x['n_points']} | {note.strip()} |")
    if result["flags"]:
        lines += ["", "## Flags (must never happen)", ""] + [f"* {f}" for f in result["flags"]]
    return "\n".join(lines) + "\n", lines[: lines.index("## Runs") - 1]


def _write(out, result):
    for p in result["problems"]:
        p["trajectories"] = {m: thin(r["times"], r["values"]) for m, r in p["runs"].items()}
    stored = dict(result)
    stored["problems"] = [dict(p, runs={m: {k: v for k, v in r.items() if k not in ("times", "values")}
                                        for m, r in p["runs"].items()}) for p in result["problems"]]
    write_json(os.path.join(out, "real.json"), stored)
    md, table = markdown(result)
    write_text(os.path.join(out, "real.md"), md)
    return table


# ======================================================================================
# main
# ======================================================================================
def _names(text, allowed, what):
    names = [s.strip() for s in text.split(",") if s.strip()]
    bad = [s for s in names if s not in allowed]
    if bad or not names:
        raise SystemExit(f"real: unknown {what} {', '.join(bad) or '(none)'}; choose from "
                         f"{', '.join(allowed)}")
    return names


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="convexrelu bench --suite real --",
                                description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="bench_out")
    p.add_argument("--quick", action="store_true",
                   help=f"problems {','.join(QUICK_PROBLEMS)} and a 10 s budget")
    p.add_argument("--budget", type=float, default=None,
                   help="wall-clock seconds per run (default 60; 10 with --quick)")
    p.add_argument("--problems", default=None, help=f"subset of {','.join(PROBLEMS)}")
    p.add_argument("--fractions", default=",".join(map(str, BETA_FRACTIONS)),
                   help="beta / estimated lambda_max (default 0.1,0.01)")
    p.add_argument("--methods", default=None, help=f"subset of {','.join(METHODS)}")
    p.add_argument("--jobs", type=int, default=1, help="runs at once (default 1)")
    p.add_argument("--grace", type=float, default=None,
                   help="seconds past the budget before a run is killed (default max(5, budget/2))")
    p.add_argument("--sgd-optimizer", choices=("sgd", "adam"), default="sgd",
                   help="optimizer of the package's sgd baseline (default sgd)")
    p.add_argument("--small-repeats", type=int, default=SMALL_REPEATS,
                   help=f"timed fits of each small exact case, criterion (d) (default "
                        f"{SMALL_REPEATS}; 0 skips them)")
    p.add_argument("--device", default=None,
                   help="a PyTorch device (cuda): every method runs there (the default fit "
                        "with fit(device=...)); default: the CPU, NumPy for the default fit")
    args = p.parse_args(argv)
    budget = args.budget if args.budget is not None else (10.0 if args.quick else 60.0)
    if not budget > 0 or args.jobs < 1 or args.small_repeats < 0:
        raise SystemExit("real: --budget must be > 0, --jobs >= 1 and --small-repeats >= 0")
    try:
        from convexrelu.experiments._common import require_torch

        require_torch("the 'real' benchmark suite (its Adam competitor)")
    except ImportError as exc:
        print(f"real: {exc}", file=sys.stderr)
        return 2
    grace = args.grace if args.grace is not None else max(5.0, budget / 2)
    problems = (_names(args.problems, PROBLEMS, "problem") if args.problems
                else list(QUICK_PROBLEMS if args.quick else PROBLEMS))
    methods = _names(args.methods, METHODS, "method") if args.methods else list(METHODS)
    try:
        fractions = [float(f) for f in args.fractions.split(",") if f.strip()]
    except ValueError:
        raise SystemExit(f"real: --fractions must be numbers; got {args.fractions!r}") from None
    os.makedirs(args.out, exist_ok=True)
    if args.jobs > 1:
        print(f"real: --jobs {args.jobs}: runs execute in parallel, which perturbs the "
              "timings; the ratios are what count", flush=True)

    from threadpoolctl import threadpool_limits

    t_all = time.perf_counter()
    workdir = tempfile.mkdtemp(prefix="real_bench_")
    result = dict(suite="real", command=" ".join(["convexrelu bench --suite real --", *(argv or [])]),
                  argv=list(argv or []), sys_argv=list(sys.argv), machine=machine_info(),
                  git_revision=git_revision(), quick=args.quick, budget_s=budget, grace_s=grace,
                  jobs=args.jobs, methods=methods, rtol=RTOL, speedup=SPEEDUP,
                  device=args.device or "cpu (NumPy for the default fit)",
                  sgd=dict(n_neurons=SGD_WIDTH, optimizer=args.sgd_optimizer),
                  adam=dict(configs=[dict(method=m, width=w, lr=lr) for m, (w, lr)
                                     in zip(ADAM_METHODS, ADAM_CONFIGS)],
                            init="W1 kaiming_uniform (relu), W2 U(+-1/sqrt(w)), seed 0",
                            dtype="float64", full_batch=True),
                  threads="1 per child (env vars, threadpool_limits(1), torch.set_num_threads(1))",
                  timing=("clock starts in the child after imports and data loading; points "
                          "after the budget do not count"),
                  lambda_max_estimate='cr.omega(X, Y, oracle="heuristic", random_state=0).attained '
                                      "(a lower estimate)",
                  problems=[], flags=[], small=[], small_repeats=args.small_repeats)
    tasks, cases = [], []
    try:
        for name in problems:
            X, Y, prep = load_problem(name)
            t = time.perf_counter()
            with threadpool_limits(1):
                lam = estimate_lambda_max(X, Y)
            t_lam = time.perf_counter() - t
            data_path = os.path.join(workdir, f"{name}.npz")
            np.savez(data_path, X=X, Y=Y)
            print(f"{name}: n={X.shape[0]} d={X.shape[1]} c={Y.shape[1]}, estimated lambda_max "
                  f"{lam:.6g} ({t_lam:.1f} s)", flush=True)
            for frac in fractions:
                case = dict(name=f"{name} β={frac:g}", problem=name, n=X.shape[0], d=X.shape[1],
                            c=Y.shape[1], prep=prep, lambda_max_est=lam, beta_fraction=frac,
                            beta=frac * lam, runs={})
                cases.append(case)
                for m in methods:
                    tasks.append((case, data_path, m))
        lock, stop = threading.Lock(), threading.Event()
        done = dict(count=0)

        def finish(case):
            runs = case["runs"]
            best, best_method, summary, crit = summarize(runs, budget)
            case.update(best=best, best_method=best_method, summary=summary, criteria=crit)
            result["problems"] = [c for c in cases if "summary" in c]
            result["flags"] = [f for c in result["problems"] for f in flags_of(c["runs"], c["name"])]
            result["total_s"] = time.perf_counter() - t_all
            _write(args.out, result)

        def work(task):
            case, data_path, m = task
            key = f"{case['problem']}_{case['beta_fraction']:g}"
            if stop.is_set():
                return
            try:
                rec = run_one(workdir, data_path, key, m, case["beta"], budget, grace,
                              args.sgd_optimizer, stop, args.device)
            except Exception as exc:  # noqa: BLE001 - one failed launch never stops the suite
                rec = dict(method=m, wall_s=0.0, times=[], values=[], status="error",
                           error=f"launch failed: {type(exc).__name__}: {exc}")
            with lock:
                case["runs"][m] = rec
                done["count"] += 1
                final = value_at(rec["times"], rec["values"], budget)
                extra = ""
                if m in ("default", "sgd") and "is_global" in rec:
                    extra = f", certified {rec['is_global']}, rel_gap {rec['rel_gap']:.1e}"
                print(f"[{done['count']}/{len(tasks)}] {case['name']} {m}: objective "
                      f"{_g(final, '.8g')} at {budget:g}s, status {rec.get('status')}{extra}, "
                      f"wall {rec['wall_s']:.1f} s, peak {_g(rec.get('peak_rss_mb'), '.0f')} MB"
                      + (f" ({rec.get('killed') or rec.get('error')})"
                         if rec.get("status") in ("killed", "error", "crashed") else ""),
                      flush=True)
                if len(case["runs"]) == len(methods):
                    finish(case)

        pool = concurrent.futures.ThreadPoolExecutor(max_workers=args.jobs)
        try:
            for fut in [pool.submit(work, t) for t in tasks]:
                fut.result()
        except BaseException:  # Ctrl-C or a bug: kill the children, drop the queued runs
            stop.set()
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    if args.small_repeats:
        # after every run, so that nothing else shares the machine
        result["small"] = run_small(args.small_repeats)
        result["flags"] += [f"{r['name']} (small exact case): status 'optimal' with is_global "
                            f"False" for r in result["small"]
                            if r["status"] == "optimal" and not r["is_global"]]
        for r in result["small"]:
            print(f"small exact case {r['name']}: median {r['median_s']:.4f} s of "
                  f"{args.small_repeats} fits, {r['status']}, certified {r['is_global']} "
                  f"(rel_gap {r['rel_gap']:.1e}): (d) {'PASS' if r['passed'] else 'FAIL'}",
                  flush=True)
    result["total_s"] = time.perf_counter() - t_all
    table = _write(args.out, result)
    print("\n".join(table))
    for f in result["flags"]:
        print(f"FLAG: {f}")
    print(f"wrote {os.path.join(args.out, 'real.json')} and {os.path.join(args.out, 'real.md')} "
          f"({result['total_s']:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
