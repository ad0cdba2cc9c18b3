"""Which torch device a model runs on: one check shared by the embedder, GE2E and the separator."""

from __future__ import annotations

import torch

from singerid.errors import ParameterError


def check_device(device: str) -> str:
    """Validate ``device`` ("cpu", "cuda", "cuda:1") and return its canonical name.

    Raises ParameterError for an unknown device, or CUDA where none is available.
    """
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ParameterError(f"unknown device {device!r}: use 'cpu' or 'cuda'") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ParameterError(f"device {device!r} requested but CUDA is not available here; use device='cpu'")
    if dev.type not in ("cpu", "cuda"):
        raise ParameterError(f"unsupported device {device!r}: use 'cpu' or 'cuda'")
    return str(dev)
