"""Choosing where a run goes: ``auto`` takes the CUDA device with the most free
memory when there is one, else the CPU."""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass
class DeviceInfo:
    name: str  # "cpu", "cuda:0", ...
    label: str  # human name
    free_mb: int | None = None
    total_mb: int | None = None


def cuda_devices() -> list[DeviceInfo]:
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        return []
    if not torch.cuda.is_available():
        return []
    out = []
    for i in range(torch.cuda.device_count()):
        try:
            free, total = torch.cuda.mem_get_info(i)
        except RuntimeError:
            free, total = None, None
        out.append(DeviceInfo(f"cuda:{i}", torch.cuda.get_device_name(i),
                              free // 2**20 if free is not None else None,
                              total // 2**20 if total is not None else None))
    return out


def available_devices() -> list[DeviceInfo]:
    import platform

    return [DeviceInfo("cpu", platform.processor() or platform.machine() or "CPU")] + cuda_devices()


class DeviceUnavailable(ValueError):
    pass


def resolve_device(spec: str = "auto"):
    """``auto|cpu|cuda|cuda:N`` to a ``torch.device``; a clear error when the
    asked-for device is not there."""
    import torch

    spec = (spec or "auto").strip()
    if spec == "cpu":
        return torch.device("cpu")
    if spec == "auto":
        gpus = cuda_devices()
        if not gpus:
            return torch.device("cpu")
        best = max(gpus, key=lambda d: d.free_mb or 0)
        return torch.device(best.name)
    if spec == "mps":
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        raise DeviceUnavailable("device mps asked for, but this torch has no MPS support")
    if spec.startswith("cuda"):
        if not torch.cuda.is_available():
            raise DeviceUnavailable(f"device {spec} asked for, but CUDA is not available here (use --device cpu or auto)")
        idx = int(spec.split(":", 1)[1]) if ":" in spec else 0
        if idx >= torch.cuda.device_count():
            raise DeviceUnavailable(f"device {spec} asked for, but only {torch.cuda.device_count()} CUDA device(s) exist")
        return torch.device(f"cuda:{idx}")
    raise DeviceUnavailable(f"unknown device {spec!r}: expected auto, cpu, cuda or cuda:N")


def describe_device(device) -> dict:
    import torch

    info = {"device": str(device)}
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info.update(name=props.name, memory_mb=props.total_memory // 2**20,
                    capability=f"{props.major}.{props.minor}")
    else:
        import platform

        info.update(name=platform.processor() or platform.machine(), threads=torch.get_num_threads())
        try:
            info["memory_mb"] = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20
        except (ValueError, OSError, AttributeError):  # not on every platform
            pass
    return info


def seed_everything(seed: int) -> None:
    import random

    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
