"""Which torch device a fit runs on (``--device auto|cpu|cuda``)."""

from __future__ import annotations

import torch

from glselect.errors import GlselectError


def resolve_device(name: str) -> torch.device:
    """``auto``: the CUDA GPU when one is present, else the CPU.

    Raises
    ------
    GlselectError
        ``cuda`` was asked for but no CUDA GPU is available.
    """
    if name == "cuda" and not torch.cuda.is_available():
        raise GlselectError("--device cuda was given but no CUDA GPU is available", hint="use --device cpu or --device auto")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)
