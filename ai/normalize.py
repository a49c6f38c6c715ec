"""Per-channel intensity normalisation as a model card prescribes (float32 in, float32 out)."""

from __future__ import annotations

import numpy as np

from ai.formats.nnunet_preprocess import SCHEMES as NNUNET_SCHEMES
from ai.formats.nnunet_preprocess import normalize_channel
from viewer.core.errors import ModelError
from viewer.core.volume import Volume

#: units an input channel must be in for a normalisation kind (PET SUV models see SUV, not Bq/mL)
REQUIRED_UNITS = {"suv": "SUVbw"}


def check_units(vol: Volume, spec: dict, model_id: str) -> None:
    """ModelError naming the image unless ``vol`` is in the units ``spec``'s kind needs (REQUIRED_UNITS)."""
    wanted = REQUIRED_UNITS.get(spec.get("kind"))
    if wanted and vol.units != wanted:
        image = vol.description or "the image"
        raise ModelError(f"model {model_id} needs PET in {wanted} for its 'suv' normalisation; {image} is in "
                         f"{vol.units} (SUV needs the patient weight, injected dose and times in the DICOM)",
                         (vol.meta.get("files") or [None])[0])


#: a file that records no units, taken as SUVbw, whose body voxels have a median above this is in activity units
#: (Bq/mL: thousands in soft tissue), not SUV (about 0.5-3 in soft tissue; even lesions and bladder rarely pass 100)
SUV_BODY_MEDIAN_MAX = 50.0


def check_suv_values(vol: Volume, path) -> None:
    """ModelError naming ``path`` when ``vol``, taken as SUVbw because its file records no units, holds values that
    cannot be SUV: the median of its body voxels (above 1% of the maximum) over SUV_BODY_MEDIAN_MAX, as activity
    concentrations (Bq/mL) are. A model would read such values as hugely hot lesions everywhere."""
    values = np.asarray(vol.array, dtype=np.float32)
    top = float(values.max()) if values.size else 0.0
    body = values[values > 0.01 * top] if top > 0 else values[:0]
    median = float(np.median(body)) if body.size else 0.0
    if median > SUV_BODY_MEDIAN_MAX:
        raise ModelError(f"the file records no units and its values cannot be SUVbw (body median {median:.4g}, "
                         f"maximum {top:.4g}; SUV in soft tissue is about 0.5-3): probably activity in Bq/mL. Open "
                         f"the PET DICOM series instead (radview computes SUVbw from its tags) or convert the file to "
                         f"SUVbw", path)


def normalize(array: np.ndarray, spec: dict) -> np.ndarray:
    """Normalise one channel: ``ct_window`` / ``ct_clip`` (clip to [min, max] unless ``clip`` is false, scale
    to [b_min, b_max], default [0, 1]: MONAI's ScaleIntensityRange), ``zscore``, ``percentile_zscore`` (clip
    to [lower, upper] percentiles, then z-score), ``suv`` (clip to [0, max], divide by max), ``none`` (values
    as stored) or one of nnU-Net's schemes (NNUNET_SCHEMES); a MONAI bundle's ``bundle`` normalisation (transforms
    only its own pipeline applies) is refused with a ModelError naming them."""
    x = array.astype(np.float32, copy=True)
    kind = spec.get("kind")
    if kind in NNUNET_SCHEMES:  # an nnU-Net card: its scheme with the foreground properties from plans.json
        return normalize_channel(x, kind, spec, None)
    if kind in ("ct_window", "ct_clip"):  # as MONAI ScaleIntensityRange(a_min, a_max, b_min, b_max, clip)
        lo, hi = float(spec["min"]), float(spec["max"])
        b_lo, b_hi = float(spec.get("b_min", 0.0)), float(spec.get("b_max", 1.0))
        if spec.get("clip", True):
            np.clip(x, lo, hi, out=x)
        x -= lo
        x /= hi - lo
        if (b_lo, b_hi) != (0.0, 1.0):
            x *= b_hi - b_lo
            x += b_lo
    elif kind in ("zscore", "percentile_zscore"):
        if kind == "percentile_zscore":
            lo, hi = np.percentile(x[:: max(1, x.shape[0] // 32)], [spec.get("lower", 0.5), spec.get("upper", 99.5)])
            np.clip(x, lo, hi, out=x)
        x -= x.mean()
        x /= max(float(x.std()), 1e-6)
    elif kind == "none":
        pass
    elif kind == "suv":
        np.clip(x, 0, float(spec.get("max", 20)), out=x)
        x /= float(spec.get("max", 20))
    elif kind == "bundle":
        names = ", ".join(spec.get("transforms", []))
        raise ModelError(f"the MONAI bundle's intensity transform(s) {names} run only in the bundle's own pipeline "
                         "(radview segment), not in radview's preprocessing")
    else:
        raise ModelError(f"unknown normalisation {kind!r}")
    return x
