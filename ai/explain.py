"""Explanations of a segmentation model's output: Grad-CAM on a chosen layer and TTA uncertainty.

Both are computed on the model grid (see ai.engine) and returned as float32 Volumes resampled onto the
first input's grid, so they overlay the image directly.
"""

from __future__ import annotations

import numpy as np

from ai.engine import predict, preprocess
from ai.model import LoadedModel
from viewer.core.errors import ModelError
from viewer.core.resample import resample_to
from viewer.core.volume import Volume


def layer_names(model: LoadedModel) -> list[str]:
    """Names of the network's convolution layers (candidates for Grad-CAM), shallow to deep."""
    import torch

    return [n for n, m in model.network.named_modules() if isinstance(m, torch.nn.Conv3d | torch.nn.ConvTranspose3d)]


def _padded(x: np.ndarray, multiple: int) -> tuple[np.ndarray, tuple[int, ...]]:
    shape = x.shape[1:]
    pad = [(0, (-s) % multiple) for s in shape]
    return np.pad(x, [(0, 0), *pad], mode="edge"), shape


def grad_cam(model: LoadedModel, volumes: list[Volume], label: int, *, layer: str | None = None,
             roi: Volume | None = None, multiple: int = 16) -> Volume:
    """Grad-CAM heat map (0..1) for ``label``: target is the sum of that class's logits inside ``roi``
    (a mask on the first input's grid; default: where the model predicts ``label``). ``layer`` names a
    module (default: the deepest convolution before the output); the whole model grid goes through the
    network at once, padded to ``multiple`` voxels."""
    import torch

    if label not in model.card.labels:
        raise ModelError(f"model {model.card.id} has no label {label}")
    names = layer_names(model)
    layer = layer or (names[-2] if len(names) > 1 else names[-1])
    modules = dict(model.network.named_modules())
    if layer not in modules:
        raise ModelError(f"model {model.card.id} has no layer {layer!r}")
    x, grid = preprocess(model, volumes)
    xp, shape = _padded(x, multiple)
    saved = {}
    hook = modules[layer].register_forward_hook(lambda _m, _i, out: saved.__setitem__("act", out))
    try:
        net = model.network.cpu().eval()
        inp = torch.from_numpy(xp[None])
        logits = net(inp)[0, :, : shape[0], : shape[1], : shape[2]]
        if roi is not None:
            mask = resample_to(roi.with_array((roi.array > 0).astype(np.uint8)), grid, nearest=True).array > 0
            mask = torch.from_numpy(mask)
        else:
            mask = logits.argmax(0) == label
        if not bool(mask.any()):
            raise ModelError(f"Grad-CAM: no voxels of label {label} in the region")
        target = logits[label][mask].sum()
        act = saved["act"]
        (grads,) = torch.autograd.grad(target, act)
    finally:
        hook.remove()
    weights = grads.mean(dim=(2, 3, 4), keepdim=True)
    cam = torch.relu((weights * act).sum(1, keepdim=True))
    cam = torch.nn.functional.interpolate(cam, size=xp.shape[1:], mode="trilinear", align_corners=False)
    cam = cam[0, 0, : shape[0], : shape[1], : shape[2]].detach().numpy()
    cam = (cam / max(float(cam.max()), 1e-12)).astype(np.float32)
    out = resample_to(grid.with_array(cam, units="arbitrary", modality="OT"), volumes[0])
    return out.with_array(out.array.astype(np.float32), description=f"Grad-CAM {model.card.labels[label]} @ {layer}")


def tta_uncertainty(model: LoadedModel, volumes: list[Volume], *, device="cpu") -> Volume:
    """Per-voxel spread of the mirrored predictions: the largest standard deviation of any class
    probability across the identity and each mirror axis of the card (0 = all agree)."""
    x, grid = preprocess(model, volumes)
    runs = []
    for axis in [None, *model.mirror_axes]:
        dim = None if axis is None else 3 - axis  # x=0 -> array dim 3 of (C, z, y, x)
        xi = x if dim is None else np.ascontiguousarray(np.flip(x, dim))
        p = predict(model, xi, device=device)
        runs.append(p if dim is None else np.flip(p, dim))
    spread = np.stack(runs).std(axis=0).max(axis=0).astype(np.float32)
    out = resample_to(grid.with_array(spread, units="arbitrary", modality="OT"), volumes[0])
    return out.with_array(out.array.astype(np.float32), description=f"{model.card.id} TTA uncertainty")
