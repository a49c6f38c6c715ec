"""A MONAI bundle run as MONAI's evaluator runs it: the bundle's own preprocessing, inferer and postprocessing
objects, with radview Volumes in place of the files LoadImaged would read and a label Volume out.

The steps are those of ``monai.engines.SupervisedEvaluator`` driven by a bundle's inference.json: the
preprocessing Compose on ``{"image": ...}`` (its LoadImaged reads the Volumes through ``VolumeReader``,
which gives what NibabelReader / ITKReader give for the file: the stored voxels as (x, y, z) and the RAS
affine), collation into a batch of one, ``inferer(inputs, network)``, decollation, and the postprocessing
Compose on the merged batch + output dict (Activationsd, Invertd, AsDiscreted, ... as written; SaveImaged
is skipped: radview writes the result itself). Whatever the bundle's ``pred`` holds at the end is mapped
onto the first Volume's grid (exactly, when the bundle inverts its preprocessing with Invertd).
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ai.model import LoadedModel, mirror_combinations
from viewer.core.errors import ModelError
from viewer.core.progress import no_progress
from viewer.core.resample import resample_to
from viewer.core.volume import Volume

log = logging.getLogger(__name__)

#: world LPS <-> RAS (its own inverse): x and y change sign
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
#: postprocessing transforms that only write files: radview writes its own outputs instead
WRITERS = ("SaveImaged", "SaveImage")


class VolumeReader:
    """A MONAI ``ImageReader`` for LoadImage(d) that reads radview Volumes instead of files: the stored voxels
    in MONAI's (x, y, z) order and the RAS affine, as NibabelReader and ITKReader give them for the file the
    Volume came from; several Volumes (one grid) are stacked as channels, as a list of files would be."""

    def __init__(self, volumes: list[Volume]):
        self.volumes = volumes

    def verify_suffix(self, filename) -> bool:
        """Any name: the reader serves the Volumes it holds."""
        return True

    def read(self, data, **kwargs):
        """The Volumes (``data`` is the source name LoadImage was given)."""
        return self.volumes

    def get_data(self, volumes) -> tuple[np.ndarray, dict]:
        """(array (x, y, z) or (C, x, y, z), metadata with MONAI's affine / original_affine / spatial_shape)."""
        ref = volumes[0]
        arrays = [np.asarray(v.array).transpose(2, 1, 0) for v in volumes]
        affine = LPS_TO_RAS @ ref.index_to_world_matrix
        meta = {"affine": affine, "original_affine": affine.copy(), "spatial_shape": np.array(ref.size),
                "space": "RAS", "spacing": np.array(ref.spacing, float),
                "original_channel_dim": float("nan") if len(arrays) == 1 else 0}
        return (arrays[0] if len(arrays) == 1 else np.stack(arrays)), meta


def volume_of(tensor, values: np.ndarray, target: Volume, **fields) -> Volume:
    """A radview Volume of ``values`` ((x, y, z), as MONAI holds them) on the grid of MetaTensor ``tensor``;
    a plain tensor (no affine) of ``target``'s shape lies on ``target``'s grid, any other is a ModelError."""
    if not hasattr(tensor, "affine"):
        if values.shape != tuple(target.size):
            raise ModelError(f"the bundle's prediction {tuple(values.shape)} carries no affine (not a MetaTensor) and "
                             f"is not on the image grid {tuple(target.size)}")
        return target.with_array(np.ascontiguousarray(values.transpose(2, 1, 0)), **fields)
    lps = LPS_TO_RAS @ np.asarray(tensor.affine, float)
    spacing = np.linalg.norm(lps[:3, :3], axis=0)
    return Volume(np.ascontiguousarray(values.transpose(2, 1, 0)), tuple(spacing), tuple(lps[:3, 3]),
                  lps[:3, :3] / spacing, **fields)


@dataclass
class BundlePipeline:
    """The objects a bundle's inference.json declares, built by one ConfigParser (so Invertd's reference to
    the preprocessing is the very Compose that ran)."""

    preprocessing: Any  # monai.transforms.Compose
    inferer: Any  # monai.inferers.Inferer
    postprocessing: Any = None  # monai.transforms.Compose, or None: pred is the network's raw output
    image_key: str = "image"
    pred_key: str = "pred"
    multi_label: bool = False  # sigmoid outputs: one channel per label, overlapping


def steps_of(compose) -> list:
    """The transforms of a Compose, nested ones flattened ([] for None, [t] for a single transform)."""
    if compose is None:
        return []
    return list(compose.flatten().transforms) if hasattr(compose, "flatten") else [compose]


def _apply(step, data, what: str, index: int, source: str, reader=None):
    """``step`` (transform ``index`` of ``what``) on ``data`` (a LoadImaged with ``reader``); ModelError naming
    the transform when it cannot run."""
    from monai.transforms import apply_transform

    try:
        return step(data, reader=reader) if reader is not None else apply_transform(step, data)
    except Exception as err:  # MONAI wraps a transform's own errors in RuntimeError
        cause = err.__cause__ or err
        detail = str(cause).strip().splitlines()
        raise ModelError(f"the bundle's {what} transform {index} ({type(step).__name__}) cannot run on {source}: "
                         f"{type(cause).__name__}{': ' + detail[-1] if detail else ''}") from err


def run_preprocessing(pipeline: BundlePipeline, volumes: list[Volume], source: str) -> dict:
    """The bundle's preprocessing on ``volumes`` (its LoadImaged reading them through VolumeReader; a
    preprocessing without one gets LoadImaged(image, ensure_channel_first=True) first)."""
    from monai.transforms import LoadImaged

    steps = steps_of(pipeline.preprocessing)
    if not any(isinstance(s, LoadImaged) for s in steps):
        steps = [LoadImaged(keys=pipeline.image_key, ensure_channel_first=True), *steps]
    data = {pipeline.image_key: source}
    reader = VolumeReader(volumes)
    for i, step in enumerate(steps):
        data = _apply(step, data, "preprocessing", i, source, reader if isinstance(step, LoadImaged) else None)
    return data


def window_total(inferer, spatial_shape) -> int:
    """How many windows ``inferer`` runs over a (spatial_shape) input: MONAI's scan of a SlidingWindowInferer
    (interval int(roi * (1 - overlap)), at least 1), 1 for any other inferer."""
    roi = getattr(inferer, "roi_size", None)
    if roi is None:
        return 1
    n = len(spatial_shape)
    roi = np.broadcast_to(np.asarray(roi), (n,))
    overlap = np.broadcast_to(np.asarray(getattr(inferer, "overlap", 0.25), float), (n,))
    total = 1
    for s, r, o in zip(spatial_shape, roi, overlap, strict=True):
        r = int(s) if r is None or int(r) <= 0 else int(r)  # MONAI: non-positive roi = the whole axis
        step = max(int(r * (1 - o)), 1)
        total *= 1 if s <= r else math.ceil((s - r) / step) + 1
    return total


def run_inferer(model: LoadedModel, pipeline: BundlePipeline, inputs, *, device, tta: bool, progress, cancel):
    """``pipeline.inferer(inputs, network)`` as the evaluator calls it (no_grad), the network wrapped to report
    progress, honour ``cancel`` and, with ``tta``, average its outputs over the card's mirror combinations.

    The bundle's network runs as built, in MONAI's layout: radview's channels-last CPU copy (ai.cpu_network)
    was 1.4x slower on a small bundle UNet ([8, 16] channels, 4 x 64 x 64 x 32 windows: 1.24 vs 0.90 s)."""
    import torch

    network = model.network
    flips = [model.mirror_dims(axes) for axes in mirror_combinations(model.mirror_axes)] if tta else [[]]
    total = window_total(pipeline.inferer, inputs.shape[2:]) * len(flips)
    done = [0]

    def predictor(batch, *args, **kwargs):
        if cancel is not None:
            cancel.raise_if_cancelled()
        out = None
        for dims in flips:
            try:
                y = network(torch.flip(batch, dims) if dims else batch, *args, **kwargs)
            except torch.OutOfMemoryError:
                raise
            except RuntimeError as err:  # e.g. a traced network whose card lists other input channels
                raise ModelError(f"the network rejects a {tuple(batch.shape)} input patch "
                                 f"({str(err).strip().splitlines()[-1]})", model.card_path) from err
            y = (torch.flip(y, dims) if dims else y).float()
            out = y if out is None else out.add_(y)
            done[0] += batch.shape[0]
            progress(0.1 + 0.8 * min(done[0] / total, 1.0), f"window {done[0]}/{total}")
        return out.div_(len(flips)) if len(flips) > 1 else out

    with torch.no_grad():
        return pipeline.inferer(inputs.to(device), predictor)


def run_postprocessing(pipeline: BundlePipeline, batch: dict, output: dict, *, with_top: bool, source: str):
    """The evaluator's postprocessing: batch and output decollated, merged, the bundle's transforms applied in
    order (file writers skipped). Returns (pred, top): ``top`` (only ``with_top``) is the highest channel
    value just before the first AsDiscreted on pred (the probability of the chosen label), carried through
    the same Invertd steps as pred."""
    import torch
    from monai.transforms import AsDiscreted, Decollated, Invertd

    decollate = Decollated(keys=None, detach=True)
    data = {**decollate(batch)[0], **decollate(output)[0]}
    key, top = pipeline.pred_key, None
    for i, step in enumerate(steps_of(pipeline.postprocessing)):
        if type(step).__name__ in WRITERS:
            log.debug("bundle postprocessing %s skipped: radview writes the result", type(step).__name__)
            continue
        acts_on_pred = key in getattr(step, "keys", ())
        if with_top and top is None and acts_on_pred and isinstance(step, AsDiscreted):
            top = {**data, key: torch.amax(data[key], dim=0, keepdim=True)}
        elif top is not None and acts_on_pred and isinstance(step, Invertd):
            top = _apply(step, top, "postprocessing", i, source)
        data = _apply(step, data, "postprocessing", i, source)
    if with_top and top is None:
        top = {key: torch.amax(data[key], dim=0, keepdim=True)}
    return data[key], (top[key] if top is not None else None)


def labels_of(pred: np.ndarray, multi_label: bool) -> np.ndarray:
    """A label map (x, y, z) from the bundle's final pred (C, x, y, z): one channel holds labels; several
    channels are either per-label masks (``multi_label``: label k + 1 where channel k is set, later channels
    painted over earlier ones) or class scores (argmax)."""
    if pred.shape[0] == 1:
        return np.rint(pred[0]).astype(np.int32)
    if multi_label:
        out = np.zeros(pred.shape[1:], np.int32)
        for k in range(pred.shape[0]):
            out[pred[k] > 0.5] = k + 1
        return out
    return np.argmax(pred, axis=0)


@dataclass
class MonaiBundleModel(LoadedModel):
    """A loaded MONAI bundle: ``segment_volumes`` runs the bundle's own pipeline (see the module docstring)."""

    pipeline: BundlePipeline | None = field(default=None, repr=False)

    def to(self, device) -> MonaiBundleModel:
        self.network = self.network.to(device)
        return self

    def segment_volumes(self, volumes: list[Volume], *, device, tta: bool = False, progress=None, cancel=None,
                        return_probabilities: bool = False, roi=None):
        """ai.engine.run_segmentation for MONAI bundles: labels on the first volume's grid (other channels
        are resampled onto it); ``roi`` runs the bundle on the box widened to one patch (context_roi) and
        keeps labels inside the box only."""
        import torch
        from monai.data import list_data_collate

        from ai.engine import SegmentationResult, check_inputs, context_roi
        from ai.formats.nnunet import index_box

        progress = progress or no_progress
        check_inputs(self, volumes)
        ref = volumes[0]
        inputs = [ref] + [v if v.same_grid(ref) else resample_to(v, ref) for v in volumes[1:]]
        box = None
        if roi is not None:
            box = index_box(ref, context_roi(self, ref, roi))
            inputs = [_crop(v, box) for v in inputs]
        source = str((ref.meta.get("files") or [ref.description or "the image"])[0])
        progress(0.0, f"{self.card.id}: bundle preprocessing")
        if device.type == "cpu":
            torch.set_num_threads(os.cpu_count() or 1)
        self.to(device).network.eval()
        data = run_preprocessing(self.pipeline, inputs, source)
        batch = list_data_collate([data])
        pred = run_inferer(self, self.pipeline, batch[self.pipeline.image_key], device=device, tta=tta,
                           progress=progress, cancel=cancel)
        if cancel is not None:
            cancel.raise_if_cancelled()
        progress(0.9, f"{self.card.id}: bundle postprocessing")
        pred, top = run_postprocessing(self.pipeline, batch, {self.pipeline.image_key: batch[self.pipeline.image_key],
                                                              self.pipeline.pred_key: pred.cpu()},
                                       with_top=return_probabilities, source=source)
        target = inputs[0]
        values = labels_of(np.asarray(pred.detach().cpu().float()), self.pipeline.multi_label)
        labels = _on_grid(volume_of(pred, values.astype(np.uint8 if values.max(initial=0) < 256 else np.uint16),
                                    target, units="label", modality="SEG"), target, nearest=True)
        prob = None
        if top is not None:  # 0 where the bundle never evaluated (e.g. Invertd's padding of a crop): background
            p = np.asarray(top.detach().cpu().float())[0]
            p[p == 0] = 1.0
            prob = _on_grid(volume_of(top, p, target, units="arbitrary", modality="OT"), target, nearest=False)
        if box is not None:
            keep = index_box(ref, roi)
            labels = _paste(labels.array, ref, box, keep, 0)
            prob = _paste(prob.array, ref, box, keep, 1.0) if prob is not None else None
        unc = prob.with_array((1.0 - prob.array).astype(np.float32)) if prob is not None else None
        progress(1.0, "done")
        names = {k: v for k, v in self.card.labels.items() if k}
        return SegmentationResult(ref.with_array(labels.array, units="label", modality="SEG",
                                                 description=f"{self.card.id} labels"),
                                  names, prob, unc, self.card.id, self.card.version)


def _on_grid(vol: Volume, target: Volume, *, nearest: bool) -> Volume:
    """``vol`` on ``target``'s grid: as it is when it already lies there (Invertd), else resampled."""
    if vol.same_grid(target):
        return target.with_array(vol.array, units=vol.units, modality=vol.modality)
    log.info("bundle output grid differs from the image's: resampled (%s)", "nearest" if nearest else "linear")
    return resample_to(vol, target, nearest=nearest, default=0 if nearest else 1.0)


def _crop(vol: Volume, box) -> Volume:
    """The part of ``vol`` inside the (z, y, x) index slices ``box``, at its place in the world."""
    start = np.array([box[2].start, box[1].start, box[0].start], float)
    return Volume(np.ascontiguousarray(vol.array[box]), vol.spacing, tuple(vol.index_to_world(start)),
                  vol.direction, modality=vol.modality, units=vol.units, description=vol.description,
                  meta=vol.meta)


def _paste(values: np.ndarray, ref: Volume, box, keep, fill) -> Volume:
    """``values`` (the crop ``box`` of ``ref``) on ``ref``'s whole grid, ``fill`` outside the index box ``keep``."""
    full = np.full(ref.array.shape, fill, values.dtype)
    full[box] = values
    inside = np.zeros(ref.array.shape, bool)
    inside[keep] = True
    full[~inside] = fill
    return ref.with_array(full)
