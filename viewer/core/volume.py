"""Volume: voxels + LPS geometry + modality/units, with world <-> index maps (SimpleITK conventions)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

#: Units a Volume may carry.
UNITS = ("HU", "SUVbw", "Bq/mL", "counts", "Gy", "arbitrary", "label")
#: How a synthetic volume's statement begins, in files (NIfTI descrip, DICOM DerivationDescription) and views.
SYNTHETIC_PREFIX = "SYNTHETIC"


def box_corners(lo, hi) -> np.ndarray:
    """The 8 corners (8, 3) of the box spanned by ``lo`` and ``hi``."""
    return np.array([[a, b, c] for a in (lo[0], hi[0]) for b in (lo[1], hi[1]) for c in (lo[2], hi[2])], float)


@dataclass(eq=False)
class Volume:
    """A 3D image on a regular grid in LPS world coordinates.

    Attributes:
        array: voxels, numpy, index order (z, y, x). Stored types are kept (int16 HU, ...);
            never float64. A colour image (``is_rgb``) holds (z, y, x, 3) RGB samples, channels last.
        spacing: voxel size (x, y, z) in mm.
        origin: world position (x, y, z) in mm (LPS) of the centre of voxel index (0, 0, 0).
        direction: 3x3 direction cosines, row-major as SimpleITK: column ``j`` is the world
            direction of index axis ``j`` (x, y, z).
        modality: DICOM modality code: 'CT', 'MR', 'PT', 'SEG', 'OT', ...
        units: 'HU', 'SUVbw', 'Bq/mL', 'counts' (PET CNTS), 'Gy' (RT dose), 'arbitrary' or 'label'.
        description: human-readable name (series description or file name).
        meta: free metadata (patient/study/series identifiers, source files, ...); DICOM images
            record ``photometric`` (e.g. 'MONOCHROME1': higher values shown darker).
        warnings: problems found while reading that did not prevent it (uneven spacing, ...).
        synthetic: empty for acquired data; for voxels a model made (e.g. a CT synthesised from an MR) the
            statement every file and view repeats, beginning SYNTHETIC_PREFIX (e.g. "SYNTHETIC CT from MR by
            mr-to-ct-synth 0.1", see ai.translation).
    """

    array: np.ndarray
    spacing: tuple[float, float, float] = (1.0, 1.0, 1.0)
    origin: tuple[float, float, float] = (0.0, 0.0, 0.0)
    direction: np.ndarray = field(default_factory=lambda: np.eye(3))
    modality: str = "OT"
    units: str = "arbitrary"
    description: str = ""
    meta: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    synthetic: str = ""

    def __post_init__(self) -> None:
        if not (self.array.ndim == 3 or (self.array.ndim == 4 and self.array.shape[-1] == 3)):
            raise ValueError(f"Volume.array must be 3D (z, y, x) or RGB (z, y, x, 3), got shape {self.array.shape}")
        if self.array.dtype == np.float64:
            self.array = self.array.astype(np.float32)
        self.spacing = tuple(float(s) for s in self.spacing)
        self.origin = tuple(float(o) for o in self.origin)
        self.direction = np.asarray(self.direction, dtype=float).reshape(3, 3)
        if any(s <= 0 for s in self.spacing):
            raise ValueError(f"Volume.spacing must be positive, got {self.spacing}")

    @property
    def is_synthetic(self) -> bool:
        """True when a model made these voxels (``synthetic`` says which); never shown as acquired data."""
        return bool(self.synthetic)

    # ----------------------------------------------------------------- samples
    @property
    def is_rgb(self) -> bool:
        """True for a colour image: ``array`` is (z, y, x, 3) RGB, shown as is (no window/level)."""
        return self.array.ndim == 4

    @property
    def channel_axis(self) -> int | None:
        """The axis of ``array`` holding the RGB samples (3, channels last), None for a scalar image."""
        return 3 if self.is_rgb else None

    @property
    def inverted_grey(self) -> bool:
        """True for MONOCHROME1 images (radiographs): the lowest value is white, so grey maps run inverted."""
        return self.meta.get("photometric") == "MONOCHROME1"

    def require_scalar(self, what: str) -> None:
        """Raise ColourImageError naming ``what`` (an operation) when this is a colour image."""
        if self.is_rgb:
            from viewer.core.errors import ColourImageError

            raise ColourImageError(
                f"{what} needs a greyscale image; '{self.description or 'this image'}' is colour (RGB)",
                (self.meta.get("files") or [None])[0],
            )

    # ----------------------------------------------------------------- geometry
    @property
    def size(self) -> tuple[int, int, int]:
        """Grid size (x, y, z), as SimpleITK's GetSize()."""
        z, y, x = self.array.shape[:3]
        return (x, y, z)

    @property
    def index_to_world_matrix(self) -> np.ndarray:
        """4x4 affine mapping continuous index (x, y, z, 1) to LPS mm."""
        m = np.eye(4)
        m[:3, :3] = self.direction @ np.diag(self.spacing)
        m[:3, 3] = self.origin
        return m

    def index_to_world(self, ijk) -> np.ndarray:
        """Continuous index (x, y, z) -> world LPS mm. Accepts shape (3,) or (n, 3)."""
        ijk = np.asarray(ijk, dtype=float)
        m = self.index_to_world_matrix
        return ijk @ m[:3, :3].T + m[:3, 3]

    def world_to_index(self, xyz) -> np.ndarray:
        """World LPS mm -> continuous index (x, y, z). Accepts shape (3,) or (n, 3)."""
        xyz = np.asarray(xyz, dtype=float)
        m = self.index_to_world_matrix
        return (xyz - m[:3, 3]) @ np.linalg.inv(m[:3, :3]).T

    def world_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Axis-aligned (min, max) world corners of the voxel centres."""
        w = self.index_to_world(self.corner_indices())
        return w.min(axis=0), w.max(axis=0)

    def corner_indices(self) -> np.ndarray:
        """The 8 corner voxel centres (8, 3) as (x, y, z) indices."""
        x, y, z = self.size
        return box_corners((0, 0, 0), (x - 1, y - 1, z - 1))

    def centres_within(self, index_to, lo, hi) -> np.ndarray:
        """Boolean (z, y, x) mask of the voxel centres that the 4x4 affine ``index_to`` (index (x, y, z, 1) -> a
        space: world mm, another volume's index, ...) maps inside the box ``lo``..``hi`` of that space (bounds
        included). Computed one axis at a time: no (n, 3) array of all centres."""
        step, offset = np.asarray(index_to, float)[:3, :3], np.asarray(index_to, float)[:3, 3]
        mask = np.ones(tuple(self.size[::-1]), bool)
        for a in range(3):  # coordinate a of every voxel centre
            i, j, k = (step[a, d] * np.arange(n) for d, n in enumerate(self.size))
            c = (offset[a] + k)[:, None, None] + j[None, :, None] + i[None, None, :]
            mask &= (c >= lo[a]) & (c <= hi[a])
        return mask

    def value_at(self, xyz) -> float | None:
        """Voxel value nearest to world point ``xyz`` or None outside the grid (colour: see :meth:`rgb_at`)."""
        self.require_scalar("a voxel value")
        index = self._nearest_index(xyz)
        return None if index is None else float(self.array[index])

    def rgb_at(self, xyz) -> tuple[int, int, int] | None:
        """The (R, G, B) samples nearest to world point ``xyz`` of a colour image, or None outside the grid."""
        if not self.is_rgb:
            raise ValueError("rgb_at is for colour images; use value_at")
        index = self._nearest_index(xyz)
        return None if index is None else tuple(int(v) for v in self.array[index])

    def _nearest_index(self, xyz) -> tuple[int, int, int] | None:
        """The (z, y, x) array index of the voxel nearest to ``xyz``, None outside the grid."""
        i, j, k = np.rint(self.world_to_index(xyz)).astype(int)
        xs, ys, zs = self.size
        return (k, j, i) if 0 <= i < xs and 0 <= j < ys and 0 <= k < zs else None

    def same_grid(self, other: Volume, tol: float = 1e-4) -> bool:
        """True if ``other`` has the same size, spacing, origin and direction."""
        return (
            self.size == other.size
            and np.allclose(self.spacing, other.spacing, atol=tol)
            and np.allclose(self.origin, other.origin, atol=tol)
            and np.allclose(self.direction, other.direction, atol=tol)
        )

    def with_array(self, array: np.ndarray, **changes: Any) -> Volume:
        """A new Volume on the same grid holding ``array`` (other fields changeable by keyword)."""
        if array.shape != self.array.shape:
            raise ValueError(f"array shape {array.shape} does not match grid {self.array.shape}")
        return replace(self, array=array, meta=dict(self.meta), warnings=list(self.warnings), **changes)

    # ----------------------------------------------------------------- SimpleITK
    def to_sitk(self):
        """A SimpleITK image sharing geometry (the voxels are copied)."""
        import SimpleITK as sitk

        img = sitk.GetImageFromArray(self.array, isVector=self.is_rgb)
        img.SetSpacing(self.spacing)
        img.SetOrigin(self.origin)
        img.SetDirection(tuple(self.direction.ravel()))
        return img

    @classmethod
    def from_sitk(cls, img, **fields: Any) -> Volume:
        """A Volume from a 3D SimpleITK image (geometry kept exactly)."""
        import SimpleITK as sitk

        if img.GetDimension() != 3:
            raise ValueError(f"expected a 3D image, got {img.GetDimension()}D")
        return cls(
            array=sitk.GetArrayFromImage(img),
            spacing=img.GetSpacing(),
            origin=img.GetOrigin(),
            direction=np.array(img.GetDirection()).reshape(3, 3),
            **fields,
        )

    def __repr__(self) -> str:
        return (
            f"Volume({self.modality}, {self.units}, size={self.size}, spacing="
            f"{tuple(round(s, 4) for s in self.spacing)}, dtype={self.array.dtype}, '{self.description}')"
        )
