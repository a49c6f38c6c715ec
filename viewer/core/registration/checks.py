"""Checks that a pair can be registered: overlapping fields of view and information in common."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from viewer.core.errors import RegistrationError
from viewer.core.registration.transform import Transform
from viewer.core.volume import Volume

#: Below this final Mattes mutual information (nats) a pair is taken to share no information. Empirical: the
#: demo CT against independent gamma noise stays below it (tests/registration), the benchmark pairs end at
#: 0.58 (CT <- PET), 0.83 (real CT <- synthetic PET) and 1.0 (MR <- CT).
MIN_SHARED_INFORMATION = 0.05

#: At least this fraction of the fixed field of view must map inside the moving one to start.
MIN_OVERLAP = 0.02


def input_name(vol: Volume) -> str:
    """How to name ``vol`` in a message: its file (a DICOM series by its folder), else its description."""
    files = vol.meta.get("files") or []
    if files:
        first = Path(files[0])
        return str(first.parent if vol.meta.get("format") == "dicom" else first)
    return vol.description or f"{vol.modality} image"


def _pair(fixed: Volume, moving: Volume) -> str:
    return f"moving {input_name(moving)} -> fixed {input_name(fixed)}"


def check_information(fixed: Volume, moving: Volume) -> None:
    """RegistrationError if either image is constant (nothing to register on)."""
    for role, vol in (("fixed", fixed), ("moving", moving)):
        if float(vol.array.max()) == float(vol.array.min()):
            raise RegistrationError(f"{_pair(fixed, moving)}: the {role} image is constant "
                                    f"({float(vol.array.min()):g}); there is no information to register on")


def overlap_fraction(fixed: Volume, moving: Volume, transform) -> float:
    """Fraction of a 16^3 lattice over ``fixed``'s field of view that ``transform`` (SimpleITK, fixed ->
    moving) maps inside ``moving``'s field of view."""
    lo, hi = fixed.world_bounds()
    axes = [np.linspace(a, b, 16) for a, b in zip(lo, hi, strict=True)]
    pts = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
    idx = moving.world_to_index(Transform(transform).fixed_to_moving(pts))
    size = np.asarray(moving.size)
    inside = np.all((idx >= -0.5) & (idx <= size - 0.5), axis=1)
    return float(inside.mean())


def check_overlap(fixed: Volume, moving: Volume, transform) -> None:
    """RegistrationError naming both inputs when the fixed field of view, mapped through the starting
    ``transform``, barely meets the moving one (different frames of reference, wrong series)."""
    frac = overlap_fraction(fixed, moving, transform)
    if frac < MIN_OVERLAP:
        raise RegistrationError(
            f"{_pair(fixed, moving)}: the images do not overlap in world space ({frac:.0%} of the fixed field of "
            "view lies in the moving one); if they come from different frames of reference use --init moments "
            "or landmarks")


def check_shared_information(metric: float, fixed: Volume, moving: Volume) -> None:
    """RegistrationError when the final Mattes MI (negative, SimpleITK's sign) shows no shared information."""
    if -metric < MIN_SHARED_INFORMATION:
        raise RegistrationError(
            f"{_pair(fixed, moving)}: the images share no information (mutual information {-metric:.3f} < "
            f"{MIN_SHARED_INFORMATION}); the result would be meaningless - check that both show the same anatomy")


def registration_failed(err: RuntimeError, fixed: Volume, moving: Volume) -> RegistrationError:
    """A SimpleITK registration exception as a RegistrationError naming both inputs."""
    text = str(err)
    if "outside moving image buffer" in text or "samples map outside" in text:
        return RegistrationError(f"{_pair(fixed, moving)}: the images stopped overlapping during registration "
                                 "(too few fixed samples map inside the moving image); check the pair or "
                                 "start from landmarks")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return RegistrationError(f"{_pair(fixed, moving)}: registration failed ({lines[-1] if lines else 'error'})")
