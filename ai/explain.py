"""Explanations of a segmentation model's output: Grad-CAM on a chosen layer and TTA uncertainty.

Both are computed on the model grid (see ai.engine), tile by tile or pass by pass with progress and
cancel, and returned as float32 Volumes resampled onto the first input's grid, so they overlay the image
directly.
"""

from __future__ import annotations

import numpy as np

from ai.engine import OVERLAP, mirror_combinations, network_roi, predict, preprocess, window_count
from ai.model import LoadedModel
from viewer.core.errors import ModelError
from viewer.core.progress import CancelToken, ProgressCallback, no_progress
from viewer.core.resample import resample_to
from viewer.core.volume import Volume


def layer_names(model: LoadedModel) -> list[str]:
    """Names of the network's convolution layers (candidates for Grad-CAM), shallow to deep."""
    import torch

    return [n for n, m in model.network.named_modules() if isinstance(m, torch.nn.Conv3d | torch.nn.ConvTranspose3d)]


def default_layer(model: LoadedModel) -> str:
    """The last convolution that still has more channels than the model has classes: the decoder's
    final feature layer, at full or half resolution, before the output head."""
    modules = dict(model.network.named_modules())
    names = layer_names(model)
    n_classes = len(model.card.labels)
    return next((n for n in reversed(names) if modules[n].out_channels > n_classes), names[-1])


def grad_cam(model: LoadedModel, volumes: list[Volume], label: int, *, layer: str | None = None,
             roi: Volume | None = None, progress: ProgressCallback | None = None,
             cancel: CancelToken | None = None) -> Volume:
    """Class activation map (0..1) of ``label`` by HiResCAM, the Grad-CAM variant that multiplies
    gradients and activations voxel by voxel instead of averaging the gradients over the volume: for a
    fully convolutional segmentation network it shows where the evidence for the label is, where
    averaged weights smear it across the body. Target: the sum of the label's logits inside ``roi``
    (a mask on the first input's grid; default: where the engine's segmentation has ``label``). ``layer``
    names a module (default: :func:`default_layer`). Computed per sliding-window tile (the engine's
    patch, overlap and Gaussian blending), so memory stays that of one patch; ``progress`` is reported
    and ``cancel`` honoured per tile. Scaled so the 99.5th percentile of the positive values is 1."""
    import torch
    from monai.inferers import sliding_window_inference

    progress = progress or no_progress
    if label not in model.card.labels:
        raise ModelError(f"model {model.card.id} has no label {label}")
    layer = layer or default_layer(model)
    modules = dict(model.network.named_modules())
    if layer not in modules:
        raise ModelError(f"model {model.card.id} has no layer {layer!r}")
    x, grid = preprocess(model, volumes)
    if roi is not None:
        mask = resample_to(roi.with_array((roi.array > 0).astype(np.uint8)), grid, nearest=True).array > 0
    else:  # the label where the engine's sliding-window run puts it (as in the segmentation shown)
        mask = predict(model, x, device="cpu", cancel=cancel,
                       progress=lambda f, m: progress(f * 0.5, f"segmenting: {m}")).argmax(0) == label
    if not mask.any():
        raise ModelError(f"Grad-CAM: no voxels of label {label} in the region")
    channels = x.shape[0]
    roi_size = network_roi(model)
    stacked = model.to_network_order(torch.from_numpy(np.concatenate([x, mask[None].astype(np.float32)])[None]))
    total, done, saved = window_count(stacked.shape[2:], roi_size), [0], {}
    net = model.network.cpu().eval()

    def tile_cam(batch):  # the mask rides along as the last channel, so each tile knows its target voxels
        if cancel is not None:
            cancel.raise_if_cancelled()
        inp, target_mask = batch[:, :channels], batch[:, channels] > 0.5
        cam = torch.zeros((batch.shape[0], 1, *batch.shape[2:]))
        if target_mask.any():
            with torch.enable_grad():
                logits = net(inp)
                act = saved["act"]
                (grads,) = torch.autograd.grad(logits[:, label][target_mask].sum(), act)
            heat = torch.relu((grads * act).sum(1, keepdim=True)).detach()
            cam = torch.nn.functional.interpolate(heat, size=inp.shape[2:], mode="trilinear", align_corners=False)
        done[0] += batch.shape[0]
        progress(0.5 + 0.45 * min(done[0] / total, 1.0), f"Grad-CAM tile {done[0]}/{total}")
        return cam

    hook = modules[layer].register_forward_hook(lambda _m, _i, out: saved.__setitem__("act", out))
    try:
        with torch.no_grad():
            cam = sliding_window_inference(stacked, roi_size, sw_batch_size=2, predictor=tile_cam, overlap=OVERLAP,
                                           mode="gaussian")
    finally:
        hook.remove()
    cam = model.to_network_order(cam)[0, 0].numpy()
    positive = cam[cam > 0]
    scale = float(np.percentile(positive, 99.5)) if positive.size else 1.0
    cam = np.clip(cam / max(scale, 1e-12), 0, 1).astype(np.float32)
    out = resample_to(grid.with_array(cam, units="arbitrary", modality="OT"), volumes[0])
    progress(1.0, "done")
    return out.with_array(out.array.astype(np.float32), description=f"Grad-CAM {model.card.labels[label]} @ {layer}")


def tta_uncertainty(model: LoadedModel, volumes: list[Volume], *, device="cpu",
                    progress: ProgressCallback | None = None, cancel: CancelToken | None = None) -> Volume:
    """Per-voxel spread of the mirrored predictions: the largest standard deviation of any class
    probability across the identity and every combination of the card's mirror axes (0 = all agree).
    ``cancel`` is honoured within and between the passes (Cancelled, nothing returned)."""
    progress = progress or no_progress
    x, grid = preprocess(model, volumes)
    flips = mirror_combinations(model.mirror_axes)
    mean = m2 = None
    for n, axes in enumerate(flips, start=1):  # Welford's running mean and variance: two maps, not 2^k
        dims = tuple(3 - a for a in axes)  # x=0 -> array dim 3 of (C, z, y, x)
        xi = np.ascontiguousarray(np.flip(x, dims)) if dims else x
        p = predict(model, xi, device=device, cancel=cancel,
                    progress=lambda f, m, n=n: progress((n - 1 + f) / len(flips) * 0.95, f"pass {n}/{len(flips)}: {m}"))
        p = np.flip(p, dims) if dims else p  # (K, z, y, x): the same dims
        if mean is None:
            mean, m2 = p.copy(), np.zeros_like(p)
        else:
            delta = p - mean
            mean += delta / n
            m2 += delta * (p - mean)
        if cancel is not None:
            cancel.raise_if_cancelled()
    spread = np.sqrt(m2 / len(flips)).max(axis=0).astype(np.float32)
    out = resample_to(grid.with_array(spread, units="arbitrary", modality="OT"), volumes[0])
    return out.with_array(out.array.astype(np.float32), description=f"{model.card.id} TTA uncertainty")
