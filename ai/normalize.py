"""Per-channel intensity normalisation as a model card prescribes (float32 in, float32 out)."""

from __future__ import annotations

import numpy as np

from viewer.core.errors import ModelError


def normalize(array: np.ndarray, spec: dict) -> np.ndarray:
    """Normalise one channel: ``ct_window`` / ``ct_clip`` (clip to [min, max], scale to [0, 1]), ``zscore``,
    ``percentile_zscore`` (clip to [lower, upper] percentiles, then z-score) or ``suv`` (divide by max)."""
    x = array.astype(np.float32, copy=True)
    kind = spec.get("kind")
    if kind in ("ct_window", "ct_clip"):
        lo, hi = float(spec["min"]), float(spec["max"])
        np.clip(x, lo, hi, out=x)
        x -= lo
        x /= hi - lo
    elif kind in ("zscore", "percentile_zscore"):
        if kind == "percentile_zscore":
            lo, hi = np.percentile(x[:: max(1, x.shape[0] // 32)], [spec.get("lower", 0.5), spec.get("upper", 99.5)])
            np.clip(x, lo, hi, out=x)
        x -= x.mean()
        x /= max(float(x.std()), 1e-6)
    elif kind == "suv":
        np.clip(x, 0, float(spec.get("max", 20)), out=x)
        x /= float(spec.get("max", 20))
    else:
        raise ModelError(f"unknown normalisation {kind!r}")
    return x
