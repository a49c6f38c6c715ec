"""Run a model on registered volumes: preprocess -> sliding-window predict -> export to the image grid.

Axis order is SimpleITK's: arrays are (z, y, x), geometry (x, y, z) in LPS mm. The three steps follow
nnU-Net: ``preprocess`` resamples every input onto the model grid the card describes (orientation and
grid rule: radview's axis-aligned LPS grid, or MONAI's Orientationd + Spacingd grid for bundles) at
the model's spacing and normalises it as the card says; ``predict`` puts the array in the network's
axis order (card ``array_order``: (z, y, x), or MONAI's (x, y, z)) and runs MONAI's sliding-window
inference with Gaussian weighting (optional mirroring TTA over every combination of the mirror axes);
``export`` takes the argmax at model resolution (or the card's post-processing: ai.postprocess) and resamples
the labels back onto the first input's grid with nearest neighbour, exactly. nnU-Net folders and MONAI
bundles segment with their own pipelines (``segment_volumes``: ai.formats.nnunet, ai.formats.monai_bundle_run;
a bundle's inferer and postprocessing as it declares them); these steps serve their cards where radview's
preprocessing is needed (Grad-CAM).
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass, field
from itertools import permutations

import numpy as np

from ai.model import LoadedModel, axis_codes, mirror_combinations
from ai.normalize import check_units, normalize
from ai.postprocess import label_map, label_rules
from viewer.core.errors import ModelError
from viewer.core.presets import looks_like_hu
from viewer.core.progress import CancelToken, ProgressCallback, no_progress
from viewer.core.resample import background_value, resample_to
from viewer.core.volume import Volume, box_corners

log = logging.getLogger(__name__)
OVERLAP = 0.25
NO_MIRRORING = "model card allows no mirroring: test-time augmentation skipped"


@dataclass
class SegmentationResult:
    """A model's output on the first input's grid."""

    labels: Volume  # uint8 label map
    names: dict[int, str]
    probabilities: Volume | None = None  # float32: probability of the chosen label
    uncertainty: Volume | None = None  # float32: 1 - the chosen label's probability (or TTA spread)
    model_id: str = ""
    model_version: str = ""
    warnings: list[str] = field(default_factory=list)  # e.g. NO_MIRRORING: what the run could not do


#: CPU threads torch may use for one inference in this process (None: every core); see set_cpu_threads.
_cpu_threads: int | None = None


def set_cpu_threads(threads: int | None) -> None:
    """Limit the CPU threads of every later inference in this process (None: every core). Processes sharing a
    machine (local batch workers) each take their share: two processes of 2 threads each on 2 cores ran the
    built-in model ~20x slower than two of 1 thread."""
    global _cpu_threads
    _cpu_threads = None if threads is None else max(1, int(threads))


def cpu_threads() -> int:
    """The CPU threads an inference uses in this process (set_cpu_threads, or every core)."""
    return _cpu_threads or os.cpu_count() or 1


def select_device(preference: str = "auto"):
    """torch.device for 'auto' (CUDA > MPS > CPU), 'cuda', 'mps' or 'cpu'; ModelError if unavailable."""
    import torch

    if preference == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if preference == "cuda" and not torch.cuda.is_available():
        raise ModelError("device 'cuda' requested but no CUDA GPU is available (use --device cpu or auto)")
    if preference == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ModelError("device 'mps' requested but Apple MPS is not available")
    if preference not in ("cuda", "mps", "cpu"):
        raise ModelError(f"unknown device {preference!r} (auto, cpu, cuda, mps)")
    return torch.device(preference)


def grid_frame(reference: Volume, orientation: str = "LPS", grid: str = "axis_aligned"):
    """(direction, stored_axes) of the model grid: columns of ``direction`` are the world LPS unit vectors
    of its axes; ``stored_axes[i]`` is the reference axis grid axis i comes from ("monai" grids and ""
    = stored orientation), else None. See ModelCard.orientation / grid."""
    if not orientation:
        return np.asarray(reference.direction, float), [0, 1, 2]
    codes = axis_codes(orientation)
    if codes is None:
        raise ModelError(f"model orientation {orientation!r} is not three axis codes (e.g. LPS, RAS)")
    if grid == "axis_aligned":
        direction = np.zeros((3, 3))
        for i, (w, sign) in enumerate(codes):
            direction[w, i] = sign
        return direction, None
    stored = np.asarray(reference.direction, float)  # MONAI Orientationd: permute/flip the stored axes
    dominant = np.argmax(np.abs(stored), axis=0)
    if sorted(dominant) != [0, 1, 2]:
        raise ModelError(f"{reference.description}: the image axes are too oblique to reorient to {orientation}")
    axes = [int(np.flatnonzero(dominant == w)[0]) for w, _ in codes]
    direction = np.column_stack([stored[:, j] * sign * np.sign(stored[w, j]) for (w, sign), j in zip(codes, axes,
                                                                                                       strict=True)])
    return direction, axes


def _grid_spacing(reference: Volume, spacing, stored_axes) -> np.ndarray:
    """Spacing (mm) per model-grid axis: ``spacing`` (the card's), or None = the reference's, taken along
    the reference axes the grid axes come from (``stored_axes`` of grid_frame)."""
    if spacing is None:
        spacing = np.asarray(reference.spacing, float)[stored_axes] if stored_axes else reference.spacing
    return np.asarray(spacing, float)


def model_grid(reference: Volume, spacing, roi=None, *, orientation: str = "LPS", grid: str = "axis_aligned"
               ) -> Volume:
    """The model grid at ``spacing`` (per grid axis; None = the reference's) over ``reference``.

    ``grid`` "axis_aligned" (radview's models): axes exactly along ``orientation``'s world directions,
    covering the reference's extent, voxel edges on its outer edges. "monai" (MONAI bundles): the
    reference's stored axes permuted/flipped to the nearest ``orientation`` (Orientationd), first voxel
    centre on the reference's first corner centre and round(extent / spacing) + 1 voxels (Spacingd).
    ``roi`` = ((x0, y0, z0), (x1, y1, z1)) world LPS mm keeps only the part inside that box (extent rule).
    """
    direction, stored_axes = grid_frame(reference, orientation, grid)
    spacing = _grid_spacing(reference, spacing, stored_axes)
    local = reference.index_to_world(reference.corner_indices()) @ direction  # grid-frame mm
    lo, hi = local.min(axis=0), local.max(axis=0)
    if grid == "monai" and roi is None:
        size = np.maximum(np.round((hi - lo) / spacing + 1).astype(int), 1)
        origin = direction @ lo
    else:
        half = np.abs(direction.T @ reference.direction @ np.diag(reference.spacing)).sum(axis=1) / 2
        lo, hi = lo - half, hi + half
        if roi is not None:
            box = np.asarray(roi, float)
            local_box = box_corners(box.min(axis=0), box.max(axis=0)) @ direction
            lo, hi = np.maximum(lo, local_box.min(axis=0)), np.minimum(hi, local_box.max(axis=0))
            if np.any(hi <= lo):
                raise ModelError(f"the region {box.tolist()} mm does not overlap the image")
        size = np.maximum(np.ceil((hi - lo) / spacing).astype(int), 1)
        origin = direction @ (lo + spacing / 2)
    placeholder = np.broadcast_to(np.zeros((), np.uint8), tuple(size[::-1]))
    return Volume(placeholder, tuple(spacing), tuple(origin), direction)


def onto_model_grid(vol: Volume, grid: Volume, *, nearest: bool = False, default: float = 0) -> Volume:
    """``vol`` (an input image, or a training target) on a model grid: a grid voxel straddling ``vol``'s edge takes
    the edge's values (resample_to's ``border``), so the network never sees a slab of ``default`` there."""
    return resample_to(vol, grid, nearest=nearest, default=default, border=True)


def _fits(wanted: str, vol: Volume) -> bool:
    """Does ``vol`` fit an input channel of modality ``wanted``? NIfTI/NRRD files carry no modality:
    an 'OT' image whose values sit at air = -1000 is accepted as CT (logged)."""
    if wanted in ("any", vol.modality) or (wanted == "CT" and vol.units == "HU"):
        return True
    if wanted == "CT" and vol.modality == "OT" and looks_like_hu(vol):
        log.info("%s has no modality; its values look like HU, used as CT", vol.description)
        return True
    return False


def _all_fit(wanted: list[str], volumes) -> bool:
    return all(_fits(w, v) for w, v in zip(wanted, volumes, strict=True))


def check_inputs(model: LoadedModel, volumes: list[Volume]) -> None:
    """ModelError unless the volumes match the card's input channels (count, modality and the units the
    normalisation needs, e.g. SUVbw for 'suv')."""
    wanted = model.card.modalities
    for vol in volumes:
        vol.require_scalar(f"model {model.card.id}")
    got = [v.modality for v in volumes]
    if len(got) != len(wanted) or not _all_fit(wanted, volumes):
        reordered = len(got) == len(wanted) and any(_all_fit(wanted, order) for order in permutations(volumes))
        order = f": give them in this order ({', '.join(wanted)})" if reordered else ""
        raise ModelError(
            f"model {model.card.id} needs {' and '.join(wanted)}, got {' and '.join(got) or 'nothing'}{order}")
    for vol, spec in zip(volumes, model.card.normalization, strict=True):
        check_units(vol, spec, model.card.id)


def preprocess(model: LoadedModel, volumes: list[Volume], roi=None) -> tuple[np.ndarray, Volume]:
    """(channels (C, z, y, x) float32 on the model grid, that grid); ``roi``: see model_grid. The grid's
    layout is the card's (orientation, grid); predict puts the array in the network's axis order."""
    check_inputs(model, volumes)
    card = model.card
    grid = model_grid(volumes[0], card.spacing, roi, orientation=card.orientation, grid=card.grid)
    channels = []
    for vol, spec in zip(volumes, model.card.normalization, strict=True):
        # integer images are interpolated in their own type (< 0.5 unit rounding) to spare a float32 copy
        # of the full-resolution input; float images stay float. MONAI grids: float32, as LoadImage gives
        if card.grid == "monai" and vol.array.dtype != np.float32:
            vol = vol.with_array(vol.array.astype(np.float32))
        on_grid = onto_model_grid(vol, grid, default=background_value(vol))
        channels.append(normalize(on_grid.array, spec))
    return np.stack(channels), grid


def window_starts(size: int, r: int) -> list[int]:
    """First indices along one axis of ``size`` voxels of MONAI's sliding windows of ``r`` voxels (OVERLAP): a step
    of r x (1 - OVERLAP), the last window moved back to end at the edge; one window when it spans the axis."""
    step = max(int(r * (1 - OVERLAP)), 1)
    return [0] if size <= r else [min(i * step, size - r) for i in range(math.ceil((size - r) / step) + 1)]


def window_count(shape, roi) -> int:
    """How many sliding windows of size ``roi`` (OVERLAP) cover an array of ``shape``."""
    return math.prod(len(window_starts(s, r)) for s, r in zip(shape, roi, strict=True))


def network_roi(model: LoadedModel) -> tuple[int, ...]:
    """The card's patch size (listed along the grid axes x, y, z) in the network's axis order."""
    patch = [int(v) for v in model.card.patch_size]
    return tuple(patch if model.card.array_order == "xyz" else patch[::-1])


def predict(model: LoadedModel, x: np.ndarray, *, device="auto", tta: bool = False,
            progress: ProgressCallback | None = None, cancel: CancelToken | None = None,
            softmax: bool = True) -> np.ndarray:
    """Softmax probabilities (K, z, y, x) float32 on the model grid, by Gaussian-weighted sliding windows
    over ``x`` (C, z, y, x) put in the network's axis order; ``tta`` averages the identity and every
    combination of the card's mirror axes (mirror_combinations). ``softmax`` False: the network's outputs
    as they are (a regression: translation models, ai.translation)."""
    import torch
    from monai.inferers import sliding_window_inference

    progress = progress or no_progress
    device = select_device(device) if isinstance(device, str) else device
    if device.type == "cpu":
        torch.set_num_threads(cpu_threads())
    model.to(device).network.eval()
    network = model.inference_network(device)
    roi = network_roi(model)
    flips = mirror_combinations(model.mirror_axes) if tta else [()]
    inputs = model.to_network_order(torch.from_numpy(x[None]))
    total = window_count(inputs.shape[2:], roi) * len(flips)
    done = [0]

    def window(batch):
        if cancel is not None:
            cancel.raise_if_cancelled()
        if device.type in ("cpu", "cuda") and batch.ndim in (4, 5):  # oneDNN / cuDNN without layout reorders
            batch = batch.contiguous(memory_format=torch.channels_last if batch.ndim == 4 else torch.channels_last_3d)
        with torch.autocast(device_type="cuda", dtype=torch.float16, enabled=device.type == "cuda"):
            try:
                out = network(batch)
            except torch.OutOfMemoryError:
                raise
            except RuntimeError as err:  # e.g. a traced network whose card lists other input channels
                raise ModelError(f"the network rejects a {tuple(batch.shape)} input patch "
                                 f"({str(err).strip().splitlines()[-1]})", model.card_path) from err
        done[0] += batch.shape[0]
        progress(min(done[0] / total, 1.0) * 0.95, f"window {done[0]}/{total}")
        return out.float().contiguous()  # MONAI stitches channels-first windows fastest

    probs = None
    with torch.inference_mode():
        for axes in flips:
            dims = model.mirror_dims(axes)
            inp = torch.flip(inputs, dims) if dims else inputs
            logits = sliding_window_inference(inp, roi, sw_batch_size=2, predictor=window, overlap=OVERLAP,
                                              mode="gaussian", padding_mode=model.card.window_padding,
                                              sw_device=device, device=torch.device("cpu"))
            p = _softmax_(logits) if softmax else logits
            p = torch.flip(p, dims) if dims else p
            probs = p if probs is None else probs.add_(p)
        probs.div_(len(flips))
    return model.to_network_order(probs)[0].numpy().astype(np.float32, copy=False)


def _softmax_(logits):
    """Softmax over the class dimension, in place (one full-size float tensor fewer than torch.softmax)."""
    logits.sub_(logits.amax(dim=1, keepdim=True)).exp_()
    return logits.div_(logits.sum(dim=1, keepdim=True))


def context_roi(model: LoadedModel, reference: Volume, roi):
    """``roi`` widened (about its centre) to at least one patch of the model, so a small box is segmented
    with the image context the network needs; model_grid clips it to the image.

    The patch (card patch_size x spacing, per model-grid axis) lies along the grid's own axes
    (grid_frame), not the world's: a MONAI grid's first axis may run along world z. The box is widened
    to the world bounding box of that patch."""
    box = np.asarray(roi, float)
    lo, hi = box.min(axis=0), box.max(axis=0)
    card = model.card
    direction, stored_axes = grid_frame(reference, card.orientation, card.grid)
    patch_mm = np.asarray(card.patch_size, float) * _grid_spacing(reference, card.spacing, stored_axes)
    half = np.maximum((hi - lo) / 2, np.abs(direction) @ patch_mm / 2)
    centre = (lo + hi) / 2
    return centre - half, centre + half


def _inside(grid: Volume, roi) -> np.ndarray:
    """Boolean (z, y, x) mask of ``grid``'s voxel centres inside the world box ``roi`` (any grid direction:
    MONAI grids are reoriented or keep the image's oblique axes)."""
    box = np.asarray(roi, float)
    return grid.centres_within(grid.index_to_world_matrix, box.min(axis=0), box.max(axis=0))


def export(probs: np.ndarray, grid: Volume, reference: Volume, with_probabilities: bool = True,
           keep=None, rules: dict[int, dict] | None = None) -> tuple[Volume, Volume | None, Volume | None]:
    """(labels uint8, probability of the chosen label, uncertainty = 1 - that probability) resampled onto
    ``reference``'s grid; the two float maps only ``with_probabilities`` (they cost 2 full-size float32).
    ``keep``: a world box outside which everything is background (the user's ROI within its context).
    ``rules``: the card's post-processing per label id (ai.postprocess), applied on the model grid."""
    arr = label_map(probs, grid.spacing, rules or {})
    outside = ~_inside(grid, keep) if keep is not None else None
    if outside is not None:
        arr[outside] = 0
    labels = grid.with_array(arr, units="label", modality="SEG")
    out = resample_to(labels, reference, nearest=True)
    if not with_probabilities:
        return out, None, None
    top = np.take_along_axis(probs, arr[None].astype(np.intp), axis=0)[0]
    if outside is not None:
        top[outside] = 1.0  # background, not evaluated
    top = grid.with_array(top, units="arbitrary", modality="OT")
    prob = resample_to(top, reference, default=1.0)  # outside a region: background, not evaluated
    unc = prob.with_array((1.0 - prob.array).astype(np.float32))
    return out, prob, unc


def run_segmentation(model: LoadedModel, volumes: list[Volume], *, device="auto", tta: bool = False,
                     progress: ProgressCallback | None = None, cancel: CancelToken | None = None,
                     return_probabilities: bool = False, roi=None) -> SegmentationResult:
    """Segment ``volumes`` (registered, first one defines the output grid) with ``model``.

    ``roi`` = ((x0, y0, z0), (x1, y1, z1)) world LPS mm limits the result to that box: the network
    runs on the box widened to at least one patch (context_roi); the label map still covers the whole
    image (0 outside the box).

    Raises ModelError on channel/modality mismatch or for models that give no label map (translation, centre-point
    detectors), and Cancelled when ``cancel`` fires (no partial output is returned).
    """
    if model.card.task == "translation":
        raise ModelError(f"model {model.card.id} is a translation model: it makes images (radview synthesize), "
                         "not labels", model.card_path)
    if model.card.detection.get("kind") == "heatmap":
        raise ModelError(f"model {model.card.id} is a centre-point detector: it finds lesions (radview detect, "
                         "Detect in the AI panel), not labels", model.card_path)
    if hasattr(model, "segment_volumes"):  # formats that replay their own pipeline (nnU-Net v2, MONAI bundles)
        result = model.segment_volumes(volumes, device=select_device(device) if isinstance(device, str) else device,
                                       tta=tta, progress=progress, cancel=cancel,
                                       return_probabilities=return_probabilities, roi=roi)
    else:
        result = _segment(model, volumes, device, tta, progress, cancel, return_probabilities, roi)
    if tta and not model.mirror_axes:  # said to the user by whoever shows the result (CLI, AI panel), once
        log.info("%s: %s", model.card.id, NO_MIRRORING)
        result.warnings.append(NO_MIRRORING)
    return result


def _segment(model, volumes, device, tta, progress, cancel, return_probabilities, roi) -> SegmentationResult:
    """run_segmentation's preprocess -> predict -> export for formats without their own pipeline."""
    progress = progress or no_progress
    progress(0.0, f"preparing {model.card.id}")
    x, grid = preprocess(model, volumes, context_roi(model, volumes[0], roi) if roi is not None else None)
    probs = predict(model, x, device=device, tta=tta, progress=progress, cancel=cancel)
    if cancel is not None:
        cancel.raise_if_cancelled()
    progress(0.96, "resampling to the image grid")
    labels, prob, unc = export(probs, grid, volumes[0], return_probabilities, keep=roi,
                               rules=label_rules(model.card.postprocessing, model.card.labels))
    del probs
    names = {k: v for k, v in model.card.labels.items() if k}
    progress(1.0, "done")
    return SegmentationResult(labels.with_array(labels.array, description=f"{model.card.id} labels"), names,
                              prob, unc, model.card.id, model.card.version)

