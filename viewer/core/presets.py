"""Window/level presets (resources/presets/window_level.json) and automatic W/L per modality."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache

import numpy as np

from viewer.core.resources import resource_path
from viewer.core.volume import Volume

PRESET_FILE = resource_path("presets", "window_level.json")


@dataclass(frozen=True)
class WindowPreset:
    """A named display window: values ``level - window/2 .. level + window/2`` span the colour map."""

    name: str
    label: str
    window: float
    level: float
    colormap: str
    modality: str


@cache
def window_presets() -> dict[str, WindowPreset]:
    """All presets by name, in file order."""
    data = json.loads(PRESET_FILE.read_text())
    return {name: WindowPreset(name=name, **fields) for name, fields in data.items()}


def presets_for(modality: str) -> list[WindowPreset]:
    """Presets that apply to ``modality`` ('CT', 'PT', ...)."""
    return [p for p in window_presets().values() if p.modality == modality]


def get_preset(name: str) -> WindowPreset:
    """The preset ``name``; ValueError listing the known names otherwise."""
    presets = window_presets()
    if name not in presets:
        raise ValueError(f"unknown preset {name!r}; known: {', '.join(presets)}")
    return presets[name]


def _subsample(vol: Volume) -> np.ndarray:
    """About 32 slices at every 4th row and column: enough for percentiles, fast on any volume."""
    return vol.array[:: max(1, vol.array.shape[0] // 32), ::4, ::4]


def looks_like_hu(vol: Volume) -> bool:
    """True for integer images without a known modality whose darkest values sit at air (-1000 HU).

    NIfTI/NRRD files do not record the modality; a CT in HU shows air around the body.
    """
    if vol.units == "HU":
        return True
    if vol.modality not in ("OT", "") or not np.issubdtype(vol.array.dtype, np.integer):
        return False
    sample = _subsample(vol)
    return bool(sample.size) and -1100 <= float(np.percentile(sample, 0.5)) <= -900


def auto_window_level(vol: Volume) -> tuple[float, float]:
    """Default (window, level): CT abdomen (also for files whose values look like HU), PET SUV 0-6,
    otherwise the 1st-99th percentile range of a subsample. A colour image gets the identity window of its
    sample type (colour is shown as stored, never windowed)."""
    if vol.is_rgb:
        top = float(np.iinfo(vol.array.dtype).max) if vol.array.dtype.kind in "iu" else 1.0
        return top, top / 2
    if vol.units == "SUVbw":
        p = get_preset("pet_suv_inverse")
        return p.window, p.level
    if looks_like_hu(vol):
        p = get_preset("ct_abdomen")
        return p.window, p.level
    sample = _subsample(vol)
    lo, hi = np.percentile(sample, [1, 99]) if sample.size else (0.0, 1.0)
    if hi <= lo:
        lo, hi = float(vol.array.min()), float(vol.array.max()) + 1
    return float(hi - lo), float((hi + lo) / 2)


def default_colormap(vol: Volume) -> str:
    """'gray_inverse' for PET and MONOCHROME1 images (radiographs stored with white as the lowest value),
    'gray' otherwise."""
    return "gray_inverse" if vol.modality == "PT" or vol.inverted_grey else "gray"
