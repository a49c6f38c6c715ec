"""Slice geometry of a DICOM series: order by position along the normal, spacing, sanity checks."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from viewer.core.errors import GeometryError
from viewer.core.io.dicom_headers import DicomHeader, number, numbers, numbers_or_none, uint

#: Relative spread of slice gaps tolerated before warning about uneven spacing.
UNEVEN_TOLERANCE = 0.01
#: Angle (degrees) between the slice normal and the stacking direction reported as gantry tilt.
TILT_TOLERANCE_DEG = 0.5


@dataclass
class SliceRef:
    """One 2D image of the series: a file and a frame in it, with its plane geometry."""

    header: DicomHeader
    frame: int
    position: np.ndarray  # ImagePositionPatient (mm, LPS)
    orientation: np.ndarray  # 6 direction cosines (row x,y,z, column x,y,z)
    pixel_spacing: tuple[float, float]  # (row spacing = y, column spacing = x)
    instance: int = 0


@dataclass
class SeriesGeometry:
    """The grid the sorted slices form."""

    slices: list[SliceRef]
    spacing: tuple[float, float, float]
    origin: tuple[float, float, float]
    direction: np.ndarray
    rows: int
    columns: int
    warnings: list[str]
    #: the element the in-plane spacing came from: 'PixelSpacing', 'ImagerPixelSpacing' or 'none (1 mm assumed)'
    spacing_source: str = "PixelSpacing"
    #: the grid slice of each of ``slices`` (default: one after the other); a missing slice is a grid slice
    #: that none of them fills
    grid_index: list[int] | None = None

    def __post_init__(self):
        if self.grid_index is None:
            self.grid_index = list(range(len(self.slices)))

    @property
    def depth(self) -> int:
        """Slices of the grid, the missing ones included."""
        return self.grid_index[-1] + 1 if self.grid_index else 0

    @property
    def missing(self) -> list[int]:
        """Grid slices no image of the series fills (gaps that are whole multiples of the spacing)."""
        return _unfilled(self.grid_index)


def _unfilled(grid_index: list[int]) -> list[int]:
    """The grid slices up to the last of ``grid_index`` that it does not hold."""
    return sorted(set(range(grid_index[-1] + 1)) - set(grid_index)) if grid_index else []


def _floats(seq, n: int, what: str, path) -> np.ndarray:
    try:
        arr = np.array([float(v) for v in seq], dtype=float)
    except (TypeError, ValueError) as err:
        raise GeometryError(f"unreadable {what}", path) from err
    if arr.shape != (n,):
        raise GeometryError(f"{what} must have {n} values, has {arr.size}", path)
    return arr


def _frame_item(ds, frame: int, sequence: str):
    """The functional group item holding ``sequence`` for ``frame`` (per-frame first, then shared)."""
    per = ds.get("PerFrameFunctionalGroupsSequence")
    if per is not None and frame < len(per) and sequence in per[frame]:
        return per[frame][sequence][0]
    shared = ds.get("SharedFunctionalGroupsSequence")
    if shared and sequence in shared[0]:
        return shared[0][sequence][0]
    return None


#: Warning for a projection image measured with ImagerPixelSpacing (no PixelSpacing in the patient plane).
IMAGER_SPACING_WARNING = (
    "no PixelSpacing: spacing from ImagerPixelSpacing, measured at the detector (distances in the patient "
    "are smaller by the radiographic magnification)"
)


def pixel_spacing(h: DicomHeader, warnings: list[str]) -> tuple[list[float], str]:
    """(row, column) spacing in mm and the element it came from.

    PixelSpacing (in the patient) when given and non-zero, else ImagerPixelSpacing (projection images:
    at the detector, with a warning), else 1 mm with a warning. A PixelSpacing of 0 means "not known".
    """
    ds = h.dataset
    for keyword in ("PixelSpacing", "ImagerPixelSpacing"):
        values = numbers(ds, keyword)
        if values is not None and len(values) == 2 and min(values) > 0:
            if keyword == "ImagerPixelSpacing":
                warnings.append(IMAGER_SPACING_WARNING)
            return values, keyword
    warnings.append(f"{h.path.name}: no PixelSpacing; 1 mm assumed")
    return [1.0, 1.0], "none (1 mm assumed)"


def _frame_step(ds) -> float:
    """Distance between frames/slices of an object without positions: SpacingBetweenSlices, SliceThickness, 1."""
    return abs(number(ds, "SpacingBetweenSlices", 0.0)) or abs(number(ds, "SliceThickness", 0.0)) or 1.0


def slices_of(h: DicomHeader, warnings: list[str], sources: set[str] | None = None) -> list[SliceRef]:
    """The 2D slices in one file: one for classic images, one per frame for multi-frame objects.

    ``sources`` collects where the in-plane spacing came from (see :func:`pixel_spacing`).
    """
    ds = h.dataset
    instance = int((numbers_or_none(ds, "InstanceNumber", warnings) or [0])[0])
    n = h.n_frames
    if n > 1 and "PerFrameFunctionalGroupsSequence" in ds:
        out = []
        for f in range(n):
            pos = _frame_item(ds, f, "PlanePositionSequence")
            ori = _frame_item(ds, f, "PlaneOrientationSequence")
            meas = _frame_item(ds, f, "PixelMeasuresSequence")
            if pos is None or ori is None or meas is None:
                break
            out.append(
                SliceRef(
                    h, f,
                    _floats(pos.ImagePositionPatient, 3, "ImagePositionPatient", h.path),
                    _floats(ori.ImageOrientationPatient, 6, "ImageOrientationPatient", h.path),
                    tuple(_floats(meas.PixelSpacing, 2, "PixelSpacing", h.path)),
                    instance,
                )
            )
        if len(out) == n:
            return out
    ipp = numbers(ds, "ImagePositionPatient")
    iop = numbers(ds, "ImageOrientationPatient")
    ps, source = pixel_spacing(h, warnings)
    if sources is not None:
        sources.add(source)
    if ipp is None or iop is None:
        warnings.append(f"{h.path.name}: no ImagePositionPatient/ImageOrientationPatient; identity geometry assumed")
        ipp, iop = (0.0, 0.0, 0.0), (1, 0, 0, 0, 1, 0)
    position = _floats(ipp, 3, "ImagePositionPatient", h.path)
    orientation = _floats(iop, 6, "ImageOrientationPatient", h.path)
    spacing = tuple(_floats(ps, 2, "PixelSpacing", h.path))
    if n == 1:
        return [SliceRef(h, 0, position, orientation, spacing, instance)]
    normal = np.cross(orientation[:3], orientation[3:])
    offsets = numbers(ds, "GridFrameOffsetVector")  # RT Dose: frame offsets along the normal
    if offsets is not None and len(offsets) == n:
        return [SliceRef(h, f, position + offsets[f] * normal, orientation, spacing, instance)
                for f in range(n)]
    # a multi-frame object without per-frame positions: frames stacked along the normal
    step = _frame_step(ds)
    warnings.append(
        f"{h.path.name}: multi-frame without per-frame positions; frames stacked {step:g} mm apart"
    )
    return [SliceRef(h, f, position + f * step * normal, orientation, spacing, instance) for f in range(n)]


def series_geometry(headers: list[DicomHeader]) -> SeriesGeometry:
    """Sort the series' slices by position along the slice normal and derive a regular grid.

    Never sorts by file name or instance number. Spacing comes from positions, not SliceThickness.
    Mixed orientations or matrix sizes raise GeometryError; duplicate positions, uneven spacing,
    missing slices and gantry tilt are reported in ``warnings``. Gaps that are whole multiples of the
    spacing are missing slices: the grid keeps them (``grid_index``), so the slices after a gap stay
    where they were acquired.
    """
    warnings: list[str] = []
    sources: set[str] = set()
    slices = [s for h in headers for s in slices_of(h, warnings, sources)]
    first = slices[0]
    sizes = np.array([(uint(h.dataset, "Rows", 0), uint(h.dataset, "Columns", 0)) for h in headers])
    odd = np.flatnonzero((sizes != sizes[0]).any(axis=1))
    if odd.size:
        (rows, cols), other = sizes[0], headers[odd[0]]
        raise GeometryError(
            f"slices of different size in one series ({rows}x{cols} and {'x'.join(map(str, sizes[odd[0]]))})",
            other.path,
        )
    rows, cols = (int(v) for v in sizes[0])
    for what, values, atol in (
        ("orientations", np.array([s.orientation for s in slices]), 1e-3),
        ("pixel spacings", np.array([s.pixel_spacing for s in slices]), 1e-4),
    ):
        odd = np.flatnonzero((np.abs(values - values[0]) > atol).any(axis=1))
        if odd.size:
            raise GeometryError(f"mixed slice {what} in one series", slices[odd[0]].header.path)
    row, col = first.orientation[:3], first.orientation[3:]
    normal = np.cross(row, col)
    slices.sort(key=lambda s: (float(s.position @ normal), s.instance))

    dist = np.array([float(s.position @ normal) for s in slices])
    keep = np.concatenate([[True], np.diff(dist) > 1e-3])
    if not keep.all():
        warnings.append(f"{int((~keep).sum())} slice(s) at duplicate positions ignored")
        slices = [s for s, k in zip(slices, keep, strict=True) if k]
        dist = dist[keep]

    grid_index = None
    if len(slices) > 1:
        gaps = np.diff(dist)
        dz = float(np.median(gaps))
        tolerance = max(UNEVEN_TOLERANCE * dz, 1e-3)
        steps = np.rint(gaps / dz)
        if gaps.max() - gaps.min() > tolerance:
            if steps.min() >= 1 and np.abs(gaps - steps * dz).max() <= tolerance:  # whole slices missing
                grid_index = [0, *np.cumsum(steps).astype(int).tolist()]
                warnings.append(_missing_warning(_unfilled(grid_index), dist[0], dz))
            else:
                off = float(np.abs(dist - (dist[0] + np.arange(len(dist)) * dz)).max())
                warnings.append(
                    f"uneven slice spacing (gaps {gaps.min():.3f}-{gaps.max():.3f} mm); the slices are shown on a "
                    f"{dz:.3f} mm grid (the median gap), up to {off:.1f} mm from where they were acquired"
                )
        stack = slices[-1].position - slices[0].position
        cos = abs(float(stack @ normal)) / max(np.linalg.norm(stack), 1e-9)
        tilt = float(np.degrees(np.arccos(min(1.0, cos))))
        if tilt > TILT_TOLERANCE_DEG:
            warnings.append(f"gantry tilt of {tilt:.1f} degrees: slices are sheared, shown untilted")
    else:
        dz = _frame_step(first.header.dataset)
    direction = np.column_stack([row, col, normal])
    spacing = (float(first.pixel_spacing[1]), float(first.pixel_spacing[0]), dz)
    if not all(np.isfinite(spacing)) or min(spacing) <= 0:
        raise GeometryError(f"voxel spacing {spacing} mm is not positive", first.header.path)
    return SeriesGeometry(slices, spacing, tuple(slices[0].position), direction, rows, cols,
                          list(dict.fromkeys(warnings)), " + ".join(sorted(sources)) or "PixelSpacing", grid_index)


def _missing_warning(missing: list[int], first_mm: float, dz: float) -> str:
    """What a clinician needs to know of the ``missing`` grid slices: how many, where (mm along the slice normal,
    as the views show a slice's position) and that they are blank, not acquired."""
    where = ", ".join(f"{first_mm + k * dz:.1f}" for k in missing[:5]) + (", ..." if len(missing) > 5 else "")
    return (f"{len(missing)} missing slice(s) at {where} mm: the gap is kept on the {dz:.3f} mm grid and shown "
            f"blank (the series' lowest value), never acquired")
