"""Training helpers shared by the exercises: an optimiser factory with each
optimiser's own settings, one classifier epoch on in-memory tensors, an
evaluation pass, and a confusion matrix.

Everything stays on the device: losses and hit counts are summed as tensors
and read once per epoch (no ``.item()`` per batch).
"""

from __future__ import annotations

import contextlib
from typing import Callable, Iterable

import torch
import torch.nn.functional as F

from .batching import batch_indices
from .amp import Precision, native_bf16

OPTIMIZERS = ("sgd", "adam", "adamw", "lbfgs", "adagrad", "rmsprop", "adadelta")

#: learning rates used when none is given (PyTorch's defaults; SGD has none there)
DEFAULT_LR = {"sgd": 0.01, "adam": 1e-3, "adamw": 1e-3, "lbfgs": 1.0, "adagrad": 1e-2, "rmsprop": 1e-2,
              "adadelta": 1.0}


def make_optimizer(name: str, params: Iterable, *, lr: float | None = None, momentum: float = 0.0,
                   nesterov: bool = False, weight_decay: float = 0.0, rho: float | None = None,
                   eps: float | None = None, betas: tuple[float, float] | None = None,
                   max_iter: int = 1, line_search: str | None = "strong_wolfe",
                   fused: bool = False) -> torch.optim.Optimizer:
    """A torch optimiser by name with the settings that apply to it.

    ``momentum``/``nesterov`` apply to SGD (and momentum to RMSprop), ``rho`` to
    Adadelta (and to RMSprop as its ``alpha``), ``betas`` to Adam(W), ``max_iter``
    and ``line_search`` to LBFGS. Settings that do not apply are ignored.
    ``fused``: SGD and Adam(W) update every parameter in one kernel where this
    torch has it for the parameters' device (CPU: torch 2.4 and later), the
    same update with far fewer operations (a tiny model's step is mostly
    per-operation overhead); elsewhere the ordinary implementation.
    """
    name = name.lower()
    if name not in OPTIMIZERS:
        raise ValueError(f'unknown optimiser "{name}"; expected one of {", ".join(OPTIMIZERS)}')
    lr = DEFAULT_LR[name] if lr is None else float(lr)
    params = list(params)
    if name == "sgd":
        kw = {"lr": lr, "momentum": momentum, "nesterov": nesterov and momentum > 0, "weight_decay": weight_decay}
        return _maybe_fused(torch.optim.SGD, params, kw, fused)
    if name in ("adam", "adamw"):
        kw = {"lr": lr, "weight_decay": weight_decay}
        if betas is not None:
            kw["betas"] = tuple(betas)
        if eps is not None:
            kw["eps"] = eps
        return _maybe_fused(torch.optim.Adam if name == "adam" else torch.optim.AdamW, params, kw, fused)
    if name == "lbfgs":
        return torch.optim.LBFGS(params, lr=lr, max_iter=max_iter, line_search_fn=line_search)
    if name == "adagrad":
        return torch.optim.Adagrad(params, lr=lr, weight_decay=weight_decay, **({"eps": eps} if eps else {}))
    if name == "rmsprop":
        kw = {"lr": lr, "momentum": momentum, "weight_decay": weight_decay}
        if rho is not None:
            kw["alpha"] = rho
        if eps is not None:
            kw["eps"] = eps
        return torch.optim.RMSprop(params, **kw)
    kw = {"lr": lr, "weight_decay": weight_decay}
    if rho is not None:
        kw["rho"] = rho
    if eps is not None:
        kw["eps"] = eps
    return torch.optim.Adadelta(params, **kw)


def _maybe_fused(cls, params: list, kw: dict, fused: bool) -> torch.optim.Optimizer:
    """``cls(params, fused=True, **kw)`` when asked for and supported, else ``cls(params, **kw)``."""
    if fused:
        try:
            return cls(params, fused=True, **kw)
        except (RuntimeError, TypeError, ValueError):  # an older torch, or a device/dtype without the kernel
            pass
    return cls(params, **kw)


def autocast(device: torch.device | str, enabled: bool = True, dtype: torch.dtype | None = None):
    """Older form of :func:`labbench.nn.precision` kept for existing callers:
    bf16 autocast on CUDA where the GPU has it (fp16 only when asked for with
    ``dtype``, and then without a scaler: use ``precision("fp16", dev)``);
    on the CPU bf16, when ``enabled``."""
    from .amp import native_bf16

    dev = torch.device(device)
    if not enabled or dev.type not in ("cuda", "cpu"):
        return contextlib.nullcontext()
    if dev.type == "cuda":
        if dtype is None:
            if not native_bf16(dev):
                return contextlib.nullcontext()
            dtype = torch.bfloat16
        return torch.autocast("cuda", dtype=dtype)
    return torch.autocast("cpu", dtype=torch.bfloat16)


def _precision_for(device, amp, precision: Precision | None) -> Precision:
    if precision is not None:
        return precision
    ctx_dtype = torch.bfloat16 if amp and (torch.device(device).type == "cpu"
                                          or native_bf16(torch.device(device))) else None
    return Precision(name="bf16" if ctx_dtype is not None else "fp32", device=torch.device(device), dtype=ctx_dtype)


def classifier_epoch(model: torch.nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor,
                     batch_size: int, *, generator: torch.Generator | None = None,
                     loss_fn: Callable = F.cross_entropy, amp: bool = False, scaler=None,
                     precision: Precision | None = None, run=None, schedule=None, forward: Callable | None = None,
                     check_stop: Callable[[], None] | None = None, limit_batches: int | None = None,
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """One shuffled pass over ``(x, y)`` in index-slice batches.

    Returns ``(mean loss, accuracy)`` as 0-d tensors (the Keras epoch numbers:
    averages over the batches seen while training). ``precision`` (from
    :func:`labbench.nn.precision`) gives the autocast and, for fp16, the
    GradScaler (the older ``amp``/``scaler`` arguments still work);
    ``schedule.after_batch()`` is called after each step; ``forward`` is what
    is called on a batch (default: the model; e.g. its compiled form).
    With ``run``, a Stop ends the epoch after the current batch
    (:meth:`Run.batches`); ``check_stop`` (raising) is called every 50 batches.
    """
    prec = _precision_for(x.device, amp, precision)
    fwd = forward or model
    model.train()
    loss_sum = torch.zeros((), device=x.device)
    hits = torch.zeros((), device=x.device, dtype=torch.long)
    seen = 0
    batches = batch_indices(len(x), batch_size, generator=generator, device=x.device)
    if limit_batches is not None:
        batches = batches[:limit_batches]
    for i, idx in enumerate(run.batches(batches) if run is not None else batches):
        xb, yb = x[idx], y[idx]
        with prec.autocast():
            out = fwd(xb)
            loss = loss_fn(out, yb)
        opt.zero_grad(set_to_none=True)
        if scaler is not None and precision is None:
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
        else:
            prec.minimize(loss, opt)
        if schedule is not None:
            schedule.after_batch()
        n = len(idx)
        loss_sum += loss.detach().float() * n
        hits += (out.detach().argmax(1) == yb).sum()
        seen += n
        if check_stop is not None and i % 50 == 49:
            check_stop()
    return loss_sum / max(seen, 1), hits.float() / max(seen, 1)


@torch.no_grad()
def evaluate(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, *, batch_size: int = 1000,
             loss_fn: Callable = F.cross_entropy, amp: bool = False, precision: Precision | None = None,
             forward: Callable | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(mean loss, accuracy, predicted labels)`` in eval mode."""
    prec = _precision_for(x.device, amp, precision)
    fwd = forward or model
    was = model.training
    model.eval()
    loss_sum = torch.zeros((), device=x.device)
    preds = []
    for start in range(0, len(x), batch_size):
        xb, yb = x[start:start + batch_size], y[start:start + batch_size]
        with prec.autocast():
            out = fwd(xb)
        loss_sum += loss_fn(out.float(), yb, reduction="sum")
        preds.append(out.argmax(1))
    model.train(was)
    pred = torch.cat(preds) if preds else torch.zeros(0, dtype=torch.long, device=x.device)
    acc = (pred == y).float().mean() if len(y) else torch.zeros((), device=x.device)
    return loss_sum / max(len(x), 1), acc, pred


def confusion_matrix(pred: torch.Tensor, true: torch.Tensor, n_classes: int) -> torch.Tensor:
    """Counts with rows = true class, columns = predicted class."""
    idx = true.long().cpu() * n_classes + pred.long().cpu()
    return torch.bincount(idx, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def count_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


@contextlib.contextmanager
def cpu_threads(n: int | None, device: torch.device | str = "cpu"):
    """Run a block with ``n`` intra-op CPU threads (restored afterwards).

    Tiny networks (a few thousand weights, batches of tens of rows) are
    fastest on one thread: the work per operation is far below what pays for
    waking other threads, and on a busy machine those threads wait for cores
    (measured: 10-50x slower per step with 2 threads on a loaded 2-core box).
    """
    if n is None or torch.device(device).type != "cpu":
        yield
        return
    old = torch.get_num_threads()
    torch.set_num_threads(max(1, int(n)))
    try:
        yield
    finally:
        torch.set_num_threads(old)
