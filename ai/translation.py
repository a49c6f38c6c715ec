"""Translation models (e.g. MR -> synthetic CT): a regression network run on the image grid, its output
de-normalised as the card says and flagged synthetic (``Volume.synthetic``) in memory, in files and in views.

A translation card (task "translation", ``labels`` {}) states its output::

    "output": {"modality": "CT", "units": "HU", "kind": "linear", "scale": 1000.0, "offset": -1000.0,
               "clip": [-1024, 3071]}

value = network output * scale + offset, clipped to ``clip`` (optional); HU are stored as int16, other units
as float32. ``anatomy`` (e.g. "brain") names what it was trained on: an input that does not look like that
region gets a warning (check_anatomy), an input of the wrong modality a ModelError (check_modalities).
The pipeline is the engine's: preprocess (model grid + normalisation) -> sliding-window predict without a
softmax -> de-normalise -> resample linearly onto the first input's grid.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from ai.model import LoadedModel, ModelCard
from viewer.core.errors import ModelError
from viewer.core.presets import looks_like_hu
from viewer.core.progress import CancelToken, ProgressCallback, no_progress
from viewer.core.resample import resample_to
from viewer.core.volume import SYNTHETIC_PREFIX, UNITS, Volume

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Anatomy:
    """What an input of a body region looks like: DICOM BodyPartExamined values and the largest field of view
    (mm, any axis) a scan of it has."""

    body_parts: tuple[str, ...]
    max_extent_mm: float
    min_extent_mm: float


#: Regions a translation card's ``anatomy`` may name. A head scan (MNI152: 182 x 218 x 182 mm; clinical head
#: MR / CT fields of view 180-260 mm) is well under 300 mm along every axis; an abdomen or body scan is not.
ANATOMIES = {"brain": Anatomy(("HEAD", "BRAIN", "SKULL", "HEADNECK", "HEAD_NECK"), 300.0, 100.0)}


@dataclass
class TranslationResult:
    """A translation model's output on the first input's grid, flagged synthetic, and what the run warned."""

    volume: Volume
    warnings: list[str] = field(default_factory=list)


def output_spec(card: ModelCard) -> dict:
    """The card's ``output`` checked: modality, units (viewer.core.volume.UNITS), kind "linear", scale and
    offset numbers, optional clip [low, high]; ModelError naming the model otherwise."""
    spec = dict(card.output or {})
    problem = None
    if card.task != "translation":
        problem = f"is a {card.task} model, not a translation model (task 'translation')"
    elif spec.get("kind", "linear") != "linear":
        problem = f"output kind {spec.get('kind')!r} is not 'linear'"
    elif spec.get("units") not in UNITS or not spec.get("modality"):
        problem = f"output must state its modality and units (one of {', '.join(UNITS)}), got {spec or 'nothing'}"
    elif not all(isinstance(spec.get(k, 0.0), (int, float)) for k in ("scale", "offset")):
        problem = "output scale and offset must be numbers"
    elif "clip" in spec and (len(spec["clip"]) != 2 or spec["clip"][0] >= spec["clip"][1]):
        problem = f"output clip {spec['clip']} is not [low, high]"
    if problem:
        raise ModelError(f"model {card.id} {problem}")
    return spec


def synthetic_statement(card: ModelCard, source_modality: str) -> str:
    """What a synthetic volume says it is, e.g. "SYNTHETIC CT from MR by mr-to-ct-synth 0.1"."""
    return f"{SYNTHETIC_PREFIX} {output_spec(card)['modality']} from {source_modality} by {card.id} {card.version}"


def check_modalities(card: ModelCard, volumes: list[Volume]) -> tuple[list[Volume], list[str]]:
    """(the inputs as the card's modalities, warnings). An image of another recorded modality is refused
    (ModelError naming it); an image whose file records none (NIfTI, NRRD) is taken as the card's modality
    with a warning, unless its values look like CT in HU."""
    if len(volumes) != len(card.inputs):
        raise ModelError(f"model {card.id} takes {len(card.inputs)} image(s) ({' + '.join(card.modalities)}), "
                         f"got {len(volumes)}")
    out, warnings = [], []
    for vol, wanted in zip(volumes, card.modalities, strict=True):
        vol.require_scalar(f"model {card.id}")
        name = vol.description or "the image"
        recorded = "" if vol.modality == "OT" and not looks_like_hu(vol) else vol.modality
        if wanted not in ("any", recorded) and not (wanted == "CT" and vol.units == "HU"):
            if recorded:
                raise ModelError(f"model {card.id} translates {wanted} images; {name} is {recorded}",
                                 (vol.meta.get("files") or [None])[0])
            warnings.append(f"{name} records no modality: taken as {wanted} (the model translates {wanted})")
            vol = vol.with_array(vol.array, modality=wanted)
        if vol.is_synthetic:
            warnings.append(f"{name} is itself synthetic ({vol.synthetic})")
        out.append(vol)
    return out, warnings


def check_anatomy(card: ModelCard, vol: Volume) -> list[str]:
    """Warnings when ``vol`` does not look like the card's ``anatomy``: a DICOM BodyPartExamined naming another
    region, or a field of view larger or smaller than that region's scans. [] when it fits (or no anatomy)."""
    if not card.anatomy:
        return []
    region = ANATOMIES.get(card.anatomy.lower())
    if region is None:
        return [f"model {card.id} was trained on '{card.anatomy}', which radview cannot check inputs against"]
    warnings = []
    name = vol.description or "the image"
    part = str(vol.meta.get("body_part") or "").upper()
    if part and part not in region.body_parts:
        warnings.append(f"{name} shows body part {part}; model {card.id} was trained on {card.anatomy} only")
    extent = np.asarray(vol.size) * np.asarray(vol.spacing)
    if extent.max() > region.max_extent_mm or extent.max() < region.min_extent_mm:
        shown = " x ".join(f"{e:.0f}" for e in extent)
        warnings.append(f"{name}: field of view {shown} mm does not look like a {card.anatomy} scan "
                        f"({region.min_extent_mm:.0f}-{region.max_extent_mm:.0f} mm); model {card.id} was trained "
                        f"on {card.anatomy} only: its output elsewhere is not meaningful")
    return warnings


def to_output(values: np.ndarray, spec: dict) -> np.ndarray:
    """Network output -> the card's units in place: * scale + offset, clipped; float32."""
    values *= float(spec.get("scale", 1.0))
    values += float(spec.get("offset", 0.0))
    if "clip" in spec:
        np.clip(values, *spec["clip"], out=values)
    return values


def run_translation(model: LoadedModel, volumes: list[Volume], *, device="auto",
                    progress: ProgressCallback | None = None, cancel: CancelToken | None = None) -> TranslationResult:
    """Translate ``volumes`` (registered; the first defines the output grid) with a translation ``model``.

    Returns the synthetic volume on the first input's grid (modality and units from the card's ``output``,
    ``synthetic`` = synthetic_statement) and the warnings (anatomy, unrecorded modality). Raises ModelError for
    a non-translation model or a wrong input modality, Cancelled when ``cancel`` fires.
    """
    from ai.engine import predict, preprocess

    progress = progress or no_progress
    card = model.card
    spec = output_spec(card)
    volumes, warnings = check_modalities(card, volumes)
    warnings += check_anatomy(card, volumes[0])
    for w in warnings:  # the caller shows them (CLI: stderr; app: the AI panel's status)
        log.info("%s: %s", card.id, w)
    progress(0.0, f"preparing {card.id}")
    x, grid = preprocess(model, volumes)
    out = predict(model, x, device=device, progress=progress, cancel=cancel, softmax=False)
    if cancel is not None:
        cancel.raise_if_cancelled()
    progress(0.96, "resampling to the image grid")
    values = grid.with_array(to_output(out[0], spec), modality=spec["modality"], units=spec["units"])
    background = float(spec["clip"][0]) if "clip" in spec else 0.0
    values = resample_to(values, volumes[0], default=background)
    array = values.array
    if spec["units"] == "HU":  # stored as CT is: int16 HU
        array = np.rint(array).clip(-32768, 32767).astype(np.int16)
    source = volumes[0]
    statement = synthetic_statement(card, source.modality)
    keep = ("patient_name", "patient_id", "study_uid", "study_description", "study_date")
    meta = {k: source.meta[k] for k in keep if k in source.meta}
    meta["derived_from"] = list(source.meta.get("files") or [])
    result = Volume(array, source.spacing, source.origin, source.direction, modality=spec["modality"],
                    units=spec["units"], description=f"{statement} ({source.description})".strip(), meta=meta,
                    synthetic=statement)
    progress(1.0, "done")
    return TranslationResult(result, warnings)
