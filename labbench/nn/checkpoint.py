"""Checkpoints and saved weights: what ``run.checkpoint``, ``run.restore``,
``run.resumable`` and ``run.save_weights`` write and read.

A checkpoint is one file, ``artifacts/checkpoint.pt`` in the run folder,
written atomically (a temporary file, flushed and synced, then renamed over
the old one). It holds plain state dicts, tensors, numbers and strings only,
so it loads with ``torch.load(..., weights_only=True)``:

- ``format``, ``version``, ``exercise``, ``epoch`` (epochs completed), ``total``, ``phase``;
- ``models``, ``optimizers``, ``schedulers``: ``{name: state_dict}`` and their class names;
- ``scaler``: the GradScaler's state (fp16), or None;
- ``rng``: torch (CPU and every CUDA device), numpy's and Python's global states;
- ``generators``: ``{name: state}`` of the generators the loop draws from
  (shuffling, augmentation; torch or numpy generators);
- ``extra``: whatever else the loop carries across epochs (histories, timers);
- ``events_offset``: how far ``events.jsonl`` had got, so a resumption can
  set aside the events of epochs it will train again.

``artifacts/weights.pt`` holds the models' weights only (``format
"labbench-weights"``), for later exercises to start from
(:func:`load_weights`).
"""

from __future__ import annotations

import copy
import datetime as _dt
import os
import random
import tempfile
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

FORMAT = "labbench-checkpoint"
WEIGHTS_FORMAT = "labbench-weights"
VERSION = 1
CHECKPOINT = "checkpoint.pt"
CHECKPOINT_INFO = "checkpoint.json"
WEIGHTS = "weights.pt"


class CheckpointError(Exception):
    """A checkpoint that cannot be used here: missing, damaged, from another
    exercise, or not fitting this run's models."""


# ----------------------------------------------------------------- naming
def named(objs, default: str) -> dict[str, Any]:
    """``{name: obj}`` from a dict, a single object (named ``default``) or None."""
    if objs is None:
        return {}
    if isinstance(objs, Mapping):
        return {str(k): v for k, v in objs.items() if v is not None}
    return {default: objs}


# -------------------------------------------------------------------- RNG
def rng_state() -> dict[str, Any]:
    """The global random states: torch (CPU and each CUDA device), numpy, Python."""
    np_state = np.random.get_state()
    py_version, py_internal, py_gauss = random.getstate()
    cuda = None
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        cuda = [s.clone() for s in torch.cuda.get_rng_state_all()]
    return {
        "torch": torch.get_rng_state(),
        "cuda": cuda,
        "numpy": {"kind": str(np_state[0]), "keys": torch.from_numpy(np.asarray(np_state[1], dtype=np.int64)),
                  "pos": int(np_state[2]), "has_gauss": int(np_state[3]), "gauss": float(np_state[4])},
        "python": {"version": int(py_version), "state": torch.tensor(py_internal, dtype=torch.int64),
                   "gauss": py_gauss},
    }


def set_rng_state(state: Mapping[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    cuda = state.get("cuda")
    if cuda and torch.cuda.is_available():
        if len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda)
        else:  # another machine: keep what can be kept
            torch.cuda.set_rng_state(cuda[0])
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    p = state["python"]
    random.setstate((p["version"], tuple(int(v) for v in p["state"].tolist()), p["gauss"]))


def generator_state(gen) -> dict[str, Any]:
    if isinstance(gen, torch.Generator):
        return {"kind": "torch", "state": gen.get_state()}
    if isinstance(gen, np.random.Generator):
        return {"kind": "numpy", "state": copy.deepcopy(gen.bit_generator.state)}
    if isinstance(gen, np.random.RandomState):
        s = gen.get_state()
        return {"kind": "numpy-legacy", "keys": torch.from_numpy(np.asarray(s[1], dtype=np.int64)), "pos": int(s[2]),
                "has_gauss": int(s[3]), "gauss": float(s[4])}
    raise TypeError(f"cannot checkpoint a generator of type {type(gen).__name__} "
                    "(expected torch.Generator or a numpy Generator/RandomState)")


def set_generator_state(gen, state: Mapping[str, Any], name: str = "") -> None:
    kind = state.get("kind")
    if isinstance(gen, torch.Generator) and kind == "torch":
        gen.set_state(state["state"])
    elif isinstance(gen, np.random.Generator) and kind == "numpy":
        gen.bit_generator.state = state["state"]
    elif isinstance(gen, np.random.RandomState) and kind == "numpy-legacy":
        gen.set_state(("MT19937", state["keys"].numpy().astype(np.uint32), state["pos"], state["has_gauss"],
                       state["gauss"]))
    else:
        raise CheckpointError(f"generator {name!r}: the checkpoint holds a {kind} generator, this run has a "
                              f"{type(gen).__name__}")


# --------------------------------------------------------------- capture
def to_cpu_copy(obj):
    """A deep copy with every tensor detached and copied to the CPU (so the
    snapshot does not change as training goes on)."""
    if isinstance(obj, torch.Tensor):
        t = obj.detach()
        return t.to("cpu", copy=True) if t.device.type != "cpu" else t.clone()
    if isinstance(obj, dict):
        return {k: to_cpu_copy(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [to_cpu_copy(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(to_cpu_copy(v) for v in obj)
    return copy.deepcopy(obj)


def capture(epoch: int, *, models, optimizers=None, schedulers=None, scaler=None, generators=None, extra=None,
            exercise: str | None = None, total: int | None = None, phase: str = "epoch",
            events_offset: int | None = None) -> dict[str, Any]:
    """Everything a resumption needs, copied to the CPU."""
    models, optimizers = named(models, "model"), named(optimizers, "optimizer")
    schedulers, generators = named(schedulers, "scheduler"), named(generators, "generator")
    if not models:
        raise ValueError("a checkpoint needs at least one model")
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "exercise": exercise,
        "epoch": int(epoch),
        "total": int(total) if total is not None else None,
        "phase": phase,
        "saved": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "models": {k: m.state_dict() for k, m in models.items()},
        "model_classes": {k: type(m).__name__ for k, m in models.items()},
        "optimizers": {k: o.state_dict() for k, o in optimizers.items()},
        "optimizer_classes": {k: type(o).__name__ for k, o in optimizers.items()},
        "schedulers": {k: s.state_dict() for k, s in schedulers.items()},
        "scaler": scaler.state_dict() if scaler is not None and scaler.is_enabled() else None,
        "rng": rng_state(),
        "generators": {k: generator_state(g) for k, g in generators.items()},
        "extra": dict(extra) if extra is not None else {},
        "events_offset": events_offset,
    }
    return to_cpu_copy(payload)


# ------------------------------------------------------------- file I/O
def save_atomic(obj: Any, path: Path) -> Path:
    """``torch.save`` to a temporary file beside ``path``, synced, then renamed
    over it: a reader (or a crash) sees the old file or the new one, never half."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save(obj, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; the run folder's other files follow the umask
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return path


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _load(path: Path, what: str) -> dict:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no {what} there")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # zip/pickle/EOF errors of every kind: the file is damaged
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise CheckpointError(f"{path}: damaged or not a {what} ({type(exc).__name__}: {first[:200]})") from None
    return obj


def read_checkpoint(path: Path, exercise: str | None = None) -> dict:
    """A checkpoint's contents, checked: a labbench checkpoint, of a known
    version, written by ``exercise`` (when given)."""
    obj = _load(path, "checkpoint")
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a labbench checkpoint")
    if obj.get("version") != VERSION:
        raise CheckpointError(f"{path}: checkpoint format version {obj.get('version')}, this labbench reads {VERSION}")
    if exercise and obj.get("exercise") and obj["exercise"] != exercise:
        raise CheckpointError(f"{path}: written by exercise {obj['exercise']}, not {exercise}; "
                              "a checkpoint only resumes the exercise that wrote it")
    return obj


def _check_names(kind: str, saved: Mapping, given: Mapping, path) -> None:
    if set(saved) != set(given):
        raise CheckpointError(f"{path}: the checkpoint has {kind} {sorted(saved)}, this run has {sorted(given)}")


def apply(payload: dict, *, models, optimizers=None, schedulers=None, scaler=None, generators=None,
          extra: dict | None = None, path: Path | str = "checkpoint") -> None:
    """Load a checkpoint's states into the run's objects (every name must match)."""
    models, optimizers = named(models, "model"), named(optimizers, "optimizer")
    schedulers, generators = named(schedulers, "scheduler"), named(generators, "generator")
    _check_names("models", payload["models"], models, path)
    _check_names("optimizers", payload["optimizers"], optimizers, path)
    _check_names("schedulers", payload["schedulers"], schedulers, path)
    _check_names("generators", payload["generators"], generators, path)
    for k, m in models.items():
        saved_cls = payload.get("model_classes", {}).get(k)
        if saved_cls and saved_cls != type(m).__name__:
            raise CheckpointError(f"{path}: model {k!r} is a {saved_cls} in the checkpoint, a {type(m).__name__} here")
        try:
            m.load_state_dict(payload["models"][k])
        except RuntimeError as exc:
            first = str(exc).strip().splitlines()
            raise CheckpointError(f"{path}: model {k!r} does not fit the checkpoint (were its parameters "
                                  f"changed?): {' '.join(first[:3])[:300]}") from None
    for k, o in optimizers.items():
        saved_cls = payload.get("optimizer_classes", {}).get(k)
        if saved_cls and saved_cls != type(o).__name__:
            raise CheckpointError(f"{path}: optimiser {k!r} is {saved_cls} in the checkpoint, {type(o).__name__} here")
        try:
            o.load_state_dict(payload["optimizers"][k])
        except (ValueError, KeyError, RuntimeError) as exc:
            raise CheckpointError(f"{path}: optimiser {k!r} does not fit the checkpoint: {exc}") from None
    for k, s in schedulers.items():
        try:
            s.load_state_dict(payload["schedulers"][k])
        except (ValueError, KeyError) as exc:
            raise CheckpointError(f"{path}: LR schedule {k!r}: {exc}") from None
    saved_scaler = payload.get("scaler")
    enabled = scaler is not None and scaler.is_enabled()
    if (saved_scaler is not None) != enabled:
        raise CheckpointError(f"{path}: the checkpoint was {'' if saved_scaler is not None else 'not '}trained with a "
                              f"GradScaler (fp16) and this run {'uses' if enabled else 'does not use'} one; "
                              "resume with the same precision")
    if enabled:
        scaler.load_state_dict(saved_scaler)
    set_rng_state(payload["rng"])
    for k, g in generators.items():
        set_generator_state(g, payload["generators"][k], k)
    if extra is not None:
        extra.clear()
        extra.update(payload.get("extra") or {})


# ---------------------------------------------------------------- weights
def weights_payload(models, *, exercise: str | None = None, epoch: int | None = None) -> dict:
    models = named(models, "model")
    return to_cpu_copy({"format": WEIGHTS_FORMAT, "version": VERSION, "exercise": exercise, "epoch": epoch,
                        "models": {k: m.state_dict() for k, m in models.items()},
                        "model_classes": {k: type(m).__name__ for k, m in models.items()}})


def load_weights(source: Path | str, models=None, *, file: str = WEIGHTS, exercise: str | None = None,
                 strict: bool = True) -> dict[str, dict]:
    """The saved weights of a run (its folder, or a ``weights.pt`` file);
    loaded into ``models`` (a module or ``{name: module}``) when given.
    Returns ``{name: state_dict}``."""
    path = Path(source)
    if path.is_dir():
        path = path / "artifacts" / file
    obj = _load(path, "weights file")
    if not isinstance(obj, dict) or obj.get("format") not in (WEIGHTS_FORMAT, FORMAT):
        raise CheckpointError(f"{path}: not a labbench weights file")
    if exercise and obj.get("exercise") and obj["exercise"] != exercise:
        raise CheckpointError(f"{path}: weights of exercise {obj['exercise']}, expected {exercise}")
    states = obj["models"]
    if models is not None:
        given = named(models, next(iter(states), "model"))
        missing = [k for k in given if k not in states]
        if missing:
            raise CheckpointError(f"{path}: no weights named {missing}; it has {sorted(states)}")
        for k, m in given.items():
            try:
                m.load_state_dict(states[k], strict=strict)
            except RuntimeError as exc:
                raise CheckpointError(f"{path}: weights {k!r} do not fit this model: "
                                      f"{' '.join(str(exc).splitlines()[:3])[:300]}") from None
    return states
