"""Landmark registration: a rigid / similarity / affine transform from >= 3 point pairs, with its FRE."""

from __future__ import annotations

import json
from dataclasses import dataclass
from os import PathLike
from pathlib import Path

import numpy as np

from viewer.core.errors import RegistrationError
from viewer.core.registration.transform import Transform

KINDS = ("rigid", "similarity", "affine")


@dataclass
class LandmarkResult:
    """A landmark transform (fixed -> moving) and its fiducial registration error.

    Attributes:
        transform: maps each fixed landmark onto (close to) its moving landmark.
        errors_mm: per pair, distance between the mapped fixed landmark and the moving landmark.
        fre_mm: root-mean-square of ``errors_mm`` (the fiducial registration error).
    """

    transform: Transform
    errors_mm: np.ndarray
    fre_mm: float


def read_landmarks(path: str | PathLike) -> np.ndarray:
    """A JSON list of [x, y, z] world LPS mm points as an (n, 3) array; RegistrationError naming the file."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise RegistrationError("no such landmark file", path) from None
    except (OSError, ValueError) as err:
        raise RegistrationError(f"not a JSON landmark list ({err})", path) from None
    try:
        pts = np.asarray(data, dtype=float)
    except (TypeError, ValueError):
        pts = np.empty(0)
    if pts.ndim != 2 or pts.shape[1] != 3 or not np.all(np.isfinite(pts)):
        raise RegistrationError("landmarks must be a JSON list of [x, y, z] points in world LPS mm", path)
    return pts


def register_landmarks(fixed_points, moving_points, kind: str = "rigid") -> LandmarkResult:
    """The ``kind`` transform mapping ``fixed_points`` onto ``moving_points`` (least squares, (n, 3) world
    LPS mm each, pairs in the same order, n >= 3 not all on one line; affine needs n >= 4 not coplanar).

    Raises RegistrationError when the points cannot determine the transform.
    """
    import SimpleITK as sitk

    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    fixed = np.asarray(fixed_points, dtype=float).reshape(-1, 3)
    moving = np.asarray(moving_points, dtype=float).reshape(-1, 3)
    if len(fixed) != len(moving):
        raise RegistrationError(f"{len(fixed)} fixed landmarks but {len(moving)} moving landmarks; pairs must match")
    need = 4 if kind == "affine" else 3
    if len(fixed) < need:
        raise RegistrationError(f"{kind} landmark registration needs at least {need} point pairs, got {len(fixed)}")
    for name, pts in (("fixed", fixed), ("moving", moving)):
        rank = np.linalg.matrix_rank(pts - pts.mean(axis=0), tol=1e-3)
        if rank < (3 if kind == "affine" else 2):
            raise RegistrationError(f"the {name} landmarks are {'collinear' if rank < 2 else 'coplanar'}; "
                                    f"they cannot determine a {kind} transform")
    start = {"rigid": sitk.VersorRigid3DTransform, "similarity": sitk.Similarity3DTransform,
             "affine": lambda: sitk.AffineTransform(3)}[kind]()
    tfm = sitk.LandmarkBasedTransformInitializer(start, fixed.ravel().tolist(), moving.ravel().tolist())
    transform = Transform(tfm.Downcast(), f"landmarks {kind} ({len(fixed)} pairs)")
    errors = np.linalg.norm(transform.fixed_to_moving(fixed) - moving, axis=1)
    return LandmarkResult(transform, errors, float(np.sqrt(np.mean(errors**2))))
