"""Mixed precision (AMP) in training: autocast + gradient scaling, on by default on CUDA only."""

from __future__ import annotations

import torch

#: the autocast dtype per device type (float16 on CUDA; CPU autocast runs bfloat16)
AMP_DTYPES = {"cuda": torch.float16, "cpu": torch.bfloat16}


def amp_default(dev: torch.device) -> bool:
    """Whether a run on ``dev`` uses AMP unless told: on CUDA yes, elsewhere no (bfloat16 autocast is slower
    than float32 on most CPUs)."""
    return dev.type == "cuda"


def grad_scaler(dev: torch.device, amp: bool) -> torch.amp.GradScaler:
    """The GradScaler of a run on ``dev``: enabled when the run uses AMP, and then its steps run under
    :func:`autocast`; disabled, scale / step / update are plain backward and optimiser steps."""
    return torch.amp.GradScaler(dev.type, enabled=amp)


def autocast(dev: torch.device, scaler: torch.amp.GradScaler):
    """The autocast context of a forward pass in a run whose scaler is ``scaler`` (on when the run uses AMP)."""
    return torch.autocast(device_type=dev.type, dtype=AMP_DTYPES.get(dev.type, torch.float16),
                          enabled=scaler.is_enabled())
