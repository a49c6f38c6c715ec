"""Transform: a registration result kept beside the moving volume (fixed -> moving, ITK's convention)."""

from __future__ import annotations

from os import PathLike
from pathlib import Path

import numpy as np

from viewer.core.errors import RegistrationError
from viewer.core.volume import Volume

#: File suffixes SimpleITK reads and writes as ITK transform files (Slicer, elastix, ANTs read them too).
TRANSFORM_SUFFIXES = (".tfm", ".txt", ".h5", ".hdf5", ".mat")


class Transform:
    """A spatial transform mapping FIXED-space world points (LPS mm) to MOVING-space world points.

    This is ITK's convention (the one of ``.tfm``/``.h5`` files, Slicer, elastix and ANTs): the moving
    image shown on the fixed grid has, at fixed point ``p``, the moving value at ``fixed_to_moving(p)``.
    The moving voxels are never changed; :meth:`resample` makes a new Volume on demand.

    Attributes:
        sitk: the SimpleITK transform (read-only use; :meth:`compose_nudge` returns a new Transform).
        description: how it was made ('rigid Mattes MI', 'landmarks rigid', 'file T.tfm', ...).
    """

    def __init__(self, sitk_transform, description: str = ""):
        import SimpleITK as sitk

        if sitk_transform.GetDimension() != 3:
            raise RegistrationError(f"expected a 3D transform, got {sitk_transform.GetDimension()}D")
        self.sitk = sitk_transform.Downcast() if type(sitk_transform) is sitk.Transform else sitk_transform
        self.description = description

    # ----------------------------------------------------------------- constructors
    @classmethod
    def identity(cls) -> Transform:
        """The identity (the two images already share a world frame)."""
        import SimpleITK as sitk

        return cls(sitk.Euler3DTransform(), "identity")

    @classmethod
    def from_matrix(cls, matrix, description: str = "") -> Transform:
        """A linear transform from a 4x4 homogeneous fixed -> moving matrix (LPS mm)."""
        import SimpleITK as sitk

        m = np.asarray(matrix, dtype=float).reshape(4, 4)
        aff = sitk.AffineTransform(3)
        aff.SetMatrix(tuple(m[:3, :3].ravel()))
        aff.SetTranslation(tuple(m[:3, 3]))
        return cls(aff, description)

    @classmethod
    def load(cls, path: str | PathLike) -> Transform:
        """Read an ITK transform file (.tfm/.txt text, .h5 HDF5, .mat); raises RegistrationError naming it."""
        import SimpleITK as sitk

        path = Path(path)
        if not path.is_file():
            raise RegistrationError("no such transform file", path)
        try:
            tfm = sitk.ReadTransform(str(path))
        except RuntimeError as err:
            raise RegistrationError(f"not a readable ITK transform file ({_first_line(err)})", path) from None
        if tfm.GetDimension() != 3:
            raise RegistrationError(f"expected a 3D transform, got {tfm.GetDimension()}D", path)
        return cls(_flatten(tfm.Downcast()), f"file {path.name}")

    # ----------------------------------------------------------------- mapping
    def fixed_to_moving(self, points_lps) -> np.ndarray:
        """Map fixed-space world points (LPS mm, shape (3,) or (n, 3)) to moving-space world points."""
        pts = np.asarray(points_lps, dtype=float)
        flat = pts.reshape(-1, 3)
        m = self.matrix if len(flat) > 4 else None  # linear: one matrix product instead of a call per point
        if m is not None:
            return (flat @ m[:3, :3].T + m[:3, 3]).reshape(pts.shape)
        return np.array([self.sitk.TransformPoint(tuple(p)) for p in flat]).reshape(pts.shape)

    def moving_to_fixed(self, points_lps) -> np.ndarray:
        """Map moving-space world points to fixed space (the inverse; RegistrationError if there is none)."""
        return self.inverse().fixed_to_moving(points_lps)

    @property
    def is_linear(self) -> bool:
        """True for rigid / similarity / affine transforms (a 4x4 matrix); False for B-spline."""
        return bool(self.sitk.IsLinear())

    @property
    def matrix(self) -> np.ndarray | None:
        """4x4 homogeneous fixed -> moving matrix (``moving = M @ [x, y, z, 1]``), or None if not linear."""
        if not self.is_linear:
            return None
        o = np.asarray(self.sitk.TransformPoint((0.0, 0.0, 0.0)))
        m = np.eye(4)
        for j in range(3):
            e = [0.0, 0.0, 0.0]
            e[j] = 1.0
            m[:3, j] = np.asarray(self.sitk.TransformPoint(tuple(e))) - o
        m[:3, 3] = o
        return m

    @property
    def offset(self) -> np.ndarray | None:
        """The translation part (mm) of :attr:`matrix`: where the fixed origin maps; None if not linear."""
        m = self.matrix
        return None if m is None else m[:3, 3].copy()

    def inverse(self) -> Transform:
        """The moving -> fixed transform; RegistrationError for a B-spline (no closed-form inverse)."""
        if not self.is_linear:
            raise RegistrationError("a B-spline transform has no exact inverse; resample the moving image instead")
        inv = self.sitk.GetInverse() if hasattr(self.sitk, "GetInverse") else None
        if inv is None:
            return Transform.from_matrix(np.linalg.inv(self.matrix), f"inverse of {self.description}")
        return Transform(inv, f"inverse of {self.description}")

    # ----------------------------------------------------------------- editing
    def compose_nudge(self, translation_mm=(0.0, 0.0, 0.0), rotation_deg=(0.0, 0.0, 0.0),
                      center_lps=(0.0, 0.0, 0.0)) -> Transform:
        """This transform after moving the moving image, as seen on the fixed grid, by a small rigid motion.

        The motion rotates by ``rotation_deg`` (about LPS x, y, z, ITK Euler3D order) around the fixed-space
        point ``center_lps`` (the GUI passes the view's centre), then translates by ``translation_mm``
        (fixed-space LPS mm): content shown at fixed point ``p`` is shown at ``motion(p)`` afterwards. Linear
        transforms stay one matrix; a B-spline gets the motion composed in front of it.
        """
        import SimpleITK as sitk

        motion = sitk.Euler3DTransform(tuple(map(float, center_lps)), *np.deg2rad(rotation_deg).tolist(),
                                       tuple(map(float, translation_mm)))
        undo = motion.GetInverse()  # new(p) = old(motion^-1(p))
        desc = f"{self.description} + nudge".strip()
        if self.is_linear:
            m = self.matrix @ Transform(undo).matrix
            if _is_rigid(m):
                rigid = sitk.Euler3DTransform()
                rigid.SetMatrix(tuple(m[:3, :3].ravel()))
                rigid.SetTranslation(tuple(m[:3, 3]))
                return Transform(rigid, desc)
            return Transform.from_matrix(m, desc)
        return Transform(sitk.CompositeTransform([self.sitk, undo]), desc)

    # ----------------------------------------------------------------- files and images
    def save(self, path: str | PathLike) -> Path:
        """Write an ITK transform file (.tfm/.txt text or .h5) readable by Slicer, elastix and ANTs."""
        import SimpleITK as sitk

        path = Path(path)
        if not path.name.lower().endswith(TRANSFORM_SUFFIXES):
            raise RegistrationError(f"transform files end with one of {', '.join(TRANSFORM_SUFFIXES)}", path)
        try:
            sitk.WriteTransform(self.sitk, str(path))
        except RuntimeError as err:
            raise RegistrationError(f"cannot write the transform ({_first_line(err)})", path) from None
        return path

    def resample(self, moving: Volume, fixed: Volume, interpolator: str = "linear",
                 default: float | None = None) -> Volume:
        """``moving`` on ``fixed``'s grid through this transform, in the moving image's own dtype, modality and
        units (a PET stays float SUVbw, a CT int16 HU; integers rounded and clipped, never overflowing).

        ``interpolator``: 'linear', 'nearest' (label maps) or 'bspline'; ``default``: value outside the moving
        field of view (air for HU, 0 otherwise when None).
        """
        from viewer.core.resample import background_value, resample_to

        fill = background_value(moving) if default is None else default
        out = resample_to(moving, fixed, transform=self.sitk, interpolator=interpolator, default=fill)
        out.meta["registration"] = self.description
        return out

    def __repr__(self) -> str:
        return f"Transform({self.sitk.GetName()}, linear={self.is_linear}, '{self.description}')"


def _is_rigid(m: np.ndarray, tol: float = 1e-6) -> bool:
    """True if the 3x3 part of ``m`` is a proper rotation."""
    r = m[:3, :3]
    return bool(np.allclose(r @ r.T, np.eye(3), atol=tol) and np.linalg.det(r) > 0)


def _flatten(tfm):
    """A composite read from a file holding one transform is that transform (simpler to inspect)."""
    import SimpleITK as sitk

    if isinstance(tfm, sitk.CompositeTransform) and tfm.GetNumberOfTransforms() == 1:
        return tfm.GetNthTransform(0).Downcast()
    return tfm


def _first_line(err: Exception) -> str:
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return lines[-1] if lines else type(err).__name__
