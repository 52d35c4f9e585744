r"""``solver="sgd"``: the non-convex baseline, trained the way the paper trains it (App. A.1).

The two-layer network :math:`f(X) = (XW_1)_+ W_2` with ``n_neurons`` hidden units is
trained on the weight-decay objective of paper eq. 5,

.. math::

    p(W_1, W_2) = L\big((XW_1)_+ W_2, Y\big) + \tfrac{\beta}{2}\big(\|W_1\|_F^2 + \|W_2\|_F^2\big),

by full-batch gradient descent with momentum 0.95 (``optimizer="sgd"``, the paper's
protocol) or full-batch Adam (``optimizer="adam"``):

* **initialisation**: Kaiming (He) uniform, :math:`W_1 \sim U(\pm\sqrt{6/d})` (ReLU gain)
  and :math:`W_2 \sim U(\pm\sqrt{3/m})` (linear gain), from ``random_state``;
* **learning rate** ``lr="auto"``: the largest of ``lr_max, lr_max/2, lr_max/4, ...`` for
  which a probe of ``probe_epochs`` epochs from the same initialisation does not diverge
  (objective finite and never above ``1e3`` times its start, and lower at the end than at
  the start); the probes are recorded in ``result.info["lr_probes"]``;
* **schedule**: the learning rate is halved whenever the objective has not improved by
  a relative ``plateau_threshold`` for ``plateau_patience`` epochs (PyTorch's
  ``ReduceLROnPlateau``), down to ``min_lr``; a step that diverges restores the best
  weights and halves the rate;
* the weight decay is part of the objective itself (not the optimiser's ``weight_decay``),
  so Adam minimises eq. 5 too.

The solve ends when the certificate's gap meets ``tol`` (it is computed at every
learning-rate halving and at the end; status ``"optimal"`` when that proves global
optimality, ``"estimate_converged"`` when the gap is only an estimate), when the rate is at its floor and the
objective on a plateau (status ``"stalled"``: a stationary point that the certificate
does not prove optimal, the paper's §5.1 finding), or at ``max_epochs`` / ``time_limit``.
The returned network is the best iterate, rebalanced (:math:`\|u_j\| = \|v_j\|`, which
never raises the objective), with the same certificate as every other solver's. Ctrl-C
returns it too (status ``"interrupted"``).

The loss is the loss's own PyTorch form (``loss.torch_value``; a loss without one is
refused before any work). The history is an :class:`~convexrelu.solvers.base.IterationLog`
with a row per epoch (``iter``, ``time``, ``objective`` of the iterate before its step,
``lr``, ``n_neurons``); ``dual``, ``gap``, ``rel_gap`` and ``omega`` are filled in at the
epochs where the best network was certified and NaN elsewhere.

Needs the optional ``torch`` extra (``pip install torch==2.13.0`` for the CPU build).
"""

from __future__ import annotations

import logging
import math
import time

import numpy as np

from .._validation import check_positive_float, check_positive_int
from ..losses import torch_loss  # noqa: F401  (kept here for compatibility)
from ..network import TwoLayerReLU, _import_torch
from .base import IterationLog, SolveResult, Solver

__all__ = ["SGD", "torch_loss"]

logger = logging.getLogger(__name__)

_DIVERGE_FACTOR = 1e3


class SGD(Solver):
    """Non-convex training of the two-layer ReLU network by full-batch GD with momentum or Adam.

    Parameters
    ----------
    n_neurons : int, default 100
        Hidden units ``m`` (ignored when a warm start is given: its width is used).
    optimizer : {"sgd", "adam"}, default "sgd"
        ``"sgd"``: gradient descent with ``momentum`` (the paper's protocol); ``"adam"``.
    lr : "auto" or float, default "auto"
        Initial learning rate; ``"auto"`` searches for the largest that does not diverge.
    momentum : float, default 0.95
    max_iter : int, default 20000 (no limit when ``time_limit`` is given)
        Epochs (full-batch steps); ``max_epochs`` is another name for it.
    plateau_patience : int, default 200
        Epochs without a relative improvement of ``plateau_threshold`` before halving.
    plateau_threshold : float, default 1e-7
    min_lr : float, optional
        Floor of the schedule; default ``lr0 * 2**-20``.
    lr_max : float, default 1.0
        First rate tried by ``lr="auto"``.
    probe_epochs : int, default 50
    dtype : {"float64", "float32"}, default "float64"
    device : str, default "cpu"
        A PyTorch device (``"cuda"`` for the GPU back end).
    random_state : None, int or Generator
        Seed of the initialisation (a Generator gives one seed).
    tol : float, default 1e-6
        Stop when the certificate's relative gap is at most ``tol``.
    time_limit : float, optional
        Seconds.
    verbose : int, default 0
        ``verbose >= 1``: a log line per learning-rate change and per ``log_every`` epochs.
    log_every : int, default 1000
    callback : callable, optional
        Called with a dict (``epoch``, ``time``, ``objective``, ``lr``) after every epoch.
    """

    name = "sgd"
    losses = "torch"
    default_max_iter = 20000

    def __init__(self, n_neurons=100, *, optimizer="sgd", lr="auto", momentum=0.95,
                 max_epochs=None, plateau_patience=200, plateau_threshold=1e-7, min_lr=None,
                 lr_max=1.0, probe_epochs=50, dtype="float64", device="cpu", random_state=None,
                 tol=1e-6, time_limit=None, verbose=0, log_every=1000, callback=None,
                 max_iter=None):
        if max_epochs is not None and max_iter is not None and max_epochs != max_iter:
            raise ValueError(f"max_epochs is another name for max_iter; got max_iter={max_iter!r} "
                             f"and max_epochs={max_epochs!r}")
        if max_epochs is not None:
            max_epochs = check_positive_int(max_epochs, "max_epochs")
        self._set_common(tol=tol, max_iter=max_iter if max_iter is not None else max_epochs,
                         time_limit=time_limit, verbose=verbose, callback=callback,
                         random_state=random_state)
        self.n_neurons = check_positive_int(n_neurons, "n_neurons")
        if optimizer not in ("sgd", "adam"):
            raise ValueError(f"optimizer must be 'sgd' or 'adam'; got {optimizer!r}")
        self.optimizer = optimizer
        if not (isinstance(lr, str) and lr == "auto"):
            lr = check_positive_float(lr, "lr", "'auto' or a positive number")
        self.lr = lr
        momentum = check_positive_float(momentum, "momentum", "a number in [0, 1)", allow_zero=True)
        if momentum >= 1:
            raise ValueError(f"momentum must be a number in [0, 1); got {momentum!r}")
        self.momentum = momentum
        self.plateau_patience = check_positive_int(plateau_patience, "plateau_patience")
        self.plateau_threshold = check_positive_float(plateau_threshold, "plateau_threshold", "a positive number")
        self.min_lr = None if min_lr is None else check_positive_float(min_lr, "min_lr", "a positive number")
        self.lr_max = check_positive_float(lr_max, "lr_max", "a positive number")
        self.probe_epochs = check_positive_int(probe_epochs, "probe_epochs")
        if dtype not in ("float64", "float32"):
            raise ValueError(f"dtype must be 'float64' or 'float32'; got {dtype!r}")
        self.dtype = dtype
        self.device = device
        self.log_every = check_positive_int(log_every, "log_every")

    @property
    def max_epochs(self) -> int:
        """Epochs: the same as ``max_iter``."""
        return self.max_iter

    # -- set-up ------------------------------------------------------------------------
    def _torch(self):
        torch = _import_torch()
        dev = torch.device(self.device)
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"device={self.device!r} was asked for but PyTorch sees no CUDA device")
        return torch, dev, getattr(torch, self.dtype)

    def _init(self, torch, d, c, init, dev, dt):
        if init is not None and init.n_neurons:
            return (torch.tensor(np.asarray(init.W1), dtype=dt, device=dev),
                    torch.tensor(np.asarray(init.W2), dtype=dt, device=dev))
        rs = self.random_state
        seed = (int(rs.integers(2**63 - 1)) if isinstance(rs, np.random.Generator)
                else int(rs) if rs is not None else int(np.random.SeedSequence().generate_state(1)[0]))
        g = torch.Generator().manual_seed(seed)
        m = self.n_neurons
        W1 = (torch.rand((d, m), generator=g, dtype=torch.float64) * 2 - 1) * math.sqrt(6.0 / d)
        W2 = (torch.rand((m, c), generator=g, dtype=torch.float64) * 2 - 1) * math.sqrt(3.0 / m)
        return W1.to(dev, dt), W2.to(dev, dt)

    def _make_opt(self, torch, params, lr):
        if self.optimizer == "adam":
            return torch.optim.Adam(params, lr=lr)
        return torch.optim.SGD(params, lr=lr, momentum=self.momentum)

    # -- solve ---------------------------------------------------------------------------
    def _solve(self, problem, beta, oracle, init=None) -> SolveResult:
        X, Y, loss = problem.X, problem.Y, problem.loss
        torch, dev, dt = self._torch()
        log = IterationLog(self.name, X, Y, beta, loss, self.tol, time_limit=self.time_limit, t0=self._started)
        Xt = torch.tensor(X, dtype=dt, device=dev)
        Yt = torch.tensor(Y, dtype=dt, device=dev)
        torch_loss(loss, Yt[:1], Yt[:1])  # refuse a loss without a PyTorch form before any work
        W1_0, W2_0 = self._init(torch, X.shape[1], Y.shape[1], init, dev, dt)
        m = int(W1_0.shape[1])

        def objective(W1, W2):
            F = torch.relu(Xt @ W1) @ W2
            return loss.torch_value(F, Yt) + 0.5 * beta * (torch.sum(W1 * W1) + torch.sum(W2 * W2))

        probes = []
        if isinstance(self.lr, str):
            # the search may use half of what is left of time_limit; at that point the
            # rate being probed is taken (the loop's divergence restarts still guard it)
            search_deadline = None if self.time_limit is None else \
                time.perf_counter() + 0.5 * (self._started + self.time_limit - time.perf_counter())
            lr0 = self._find_lr(torch, objective, W1_0, W2_0, probes, search_deadline)
        else:
            lr0 = float(self.lr)
        min_lr = self.min_lr if self.min_lr is not None else lr0 * 2.0 ** -20
        W1 = W1_0.clone().requires_grad_(True)
        W2 = W2_0.clone().requires_grad_(True)
        opt = self._make_opt(torch, [W1, W2], lr0)
        sched = torch.optim.lr_scheduler.ReduceLROnPlateau(
            opt, mode="min", factor=0.5, patience=self.plateau_patience,
            threshold=self.plateau_threshold, threshold_mode="rel", min_lr=min_lr)
        checks = []
        best = [math.inf, W1_0.clone(), W2_0.clone()]
        state = dict(status=None, resets=0)
        since_best = 0
        t_train = time.perf_counter()

        def certify_best():
            """Certify the best iterate (rebalanced) into the last epoch's row; it becomes
            the network the solve returns."""
            net = self._network(best)
            F = net.predict(X)
            cert = log.certify_last(net, F, oracle(loss.gradient(F, Y)))
            checks.append(dict(epoch=len(log.rows), time=log.elapsed(), objective=cert.primal,
                               dual=cert.dual, rel_gap=cert.rel_gap, is_global=cert.is_global))
            if self.verbose:
                logger.info("sgd epoch %d  best %.10g  dual %.10g  rel_gap %.2e  lr %.3g",
                            len(log.rows), cert.primal, cert.dual, cert.rel_gap,
                            opt.param_groups[0]["lr"])
            return cert

        try:
            for epoch in range(self.max_iter):
                opt.zero_grad(set_to_none=True)
                obj = objective(W1, W2)
                val = float(obj.detach())
                if not math.isfinite(val) or val > _DIVERGE_FACTOR * max(best[0], 1e-300) and epoch:
                    # diverged: back to the best weights, half the rate, fresh momentum
                    lr = opt.param_groups[0]["lr"] * 0.5
                    state["resets"] += 1
                    logger.log(logging.INFO if self.verbose else logging.DEBUG,
                               "sgd epoch %d: objective %.3g diverged; restart from the best "
                               "weights with lr %.3g", epoch, val, lr)
                    with torch.no_grad():
                        W1.copy_(best[1])
                        W2.copy_(best[2])
                    opt = self._make_opt(torch, [W1, W2], lr)
                    sched.optimizer = opt
                    continue
                obj.backward()
                row = log.record_step(val, m, it=epoch, lr=opt.param_groups[0]["lr"])
                if val < best[0]:
                    improved = val < best[0] * (1 - self.plateau_threshold)
                    best[0] = val
                    best[1] = W1.detach().clone()
                    best[2] = W2.detach().clone()
                    since_best = 0 if improved else since_best + 1
                else:
                    since_best += 1
                if self.callback is not None:
                    self.callback(dict(epoch=epoch, time=row["time"], objective=val, lr=row["lr"]))
                if self.verbose and epoch % self.log_every == 0:
                    logger.info("sgd epoch %6d  obj %.10g  lr %.3g  %.2fs", epoch, val,
                                row["lr"], row["time"])
                lr_before = opt.param_groups[0]["lr"]
                opt.step()
                sched.step(val)
                if opt.param_groups[0]["lr"] < lr_before:
                    cert = certify_best()
                    if min(cert.rel_gap, cert.rel_gap_estimate) <= self.tol:  # decided below
                        state["status"] = "converged"
                        break
                if lr_before <= min_lr * (1 + 1e-12) and since_best >= self.plateau_patience:
                    state["status"] = "stalled"
                    break
                if log.out_of_time():
                    state["status"] = "time_limit"
                    break
            else:
                state["status"] = "max_iter"
        except KeyboardInterrupt:
            state["status"] = "interrupted"
            logger.warning("sgd: interrupted after %d epochs; returning the best network so far",
                           len(log.rows))
        if not log.rows:
            raise RuntimeError("sgd: no epoch completed")
        train_time = time.perf_counter() - t_train
        cert = certify_best()
        status = state["status"]
        if status == "converged" or min(cert.rel_gap, cert.rel_gap_estimate) <= self.tol:
            # the log decides what may be claimed: "optimal" only with a proof,
            # "estimate_converged" for an estimate that met tol, "stalled" when the gap
            # met tol at a halving but not at the end
            status = "optimal"
        n_ep = len(log.rows)
        info = dict(optimizer=self.optimizer, lr0=lr0, final_lr=float(opt.param_groups[0]["lr"]),
                    min_lr=min_lr, n_neurons=m, epochs=n_ep,
                    train_time_s=train_time, objective_unbalanced=float(best[0]),
                    divergence_restarts=state["resets"], lr_probes=probes, checks=checks,
                    dtype=self.dtype, device=str(dev))
        # no ConvergenceWarning on a budget: a non-convex baseline reports its gap instead
        return log.result(status, n_ep, info, warn_budget=False)

    def _find_lr(self, torch, objective, W1_0, W2_0, probes, deadline=None):
        """Largest ``lr_max / 2**k`` whose probe run does not diverge; at ``deadline`` the
        rate being probed (halved if its probe has diverged) is returned untested."""
        lr = self.lr_max
        for _ in range(60):
            W1 = W1_0.clone().requires_grad_(True)
            W2 = W2_0.clone().requires_grad_(True)
            opt = self._make_opt(torch, [W1, W2], lr)
            start = None
            ok = True
            for _ in range(self.probe_epochs):
                if deadline is not None and time.perf_counter() >= deadline:
                    probes.append(dict(lr=lr, ok=None))  # untested: out of time
                    return lr
                opt.zero_grad(set_to_none=True)
                obj = objective(W1, W2)
                val = float(obj.detach())
                start = val if start is None else start
                if not math.isfinite(val) or val > _DIVERGE_FACTOR * start:
                    ok = False
                    break
                obj.backward()
                opt.step()
            if ok:
                with torch.no_grad():
                    end = float(objective(W1, W2))
                ok = math.isfinite(end) and end < start
            probes.append(dict(lr=lr, ok=bool(ok)))
            if ok:
                return lr
            lr *= 0.5
        raise RuntimeError(f"sgd: no learning rate down to {lr:.1e} decreases the objective in "
                           f"{self.probe_epochs} epochs; check the data scale")

    @staticmethod
    def _network(best):
        W1 = best[1].detach().cpu().double().numpy()
        W2 = best[2].detach().cpu().double().numpy()
        return TwoLayerReLU(W1, W2).rebalance()
