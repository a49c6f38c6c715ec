"""Place the extra inputs of a multi-input model on the first input's grid through their transforms."""

from __future__ import annotations

from collections.abc import Sequence
from os import PathLike

from viewer.core.errors import RegistrationError
from viewer.core.registration.transform import Transform
from viewer.core.volume import Volume


def place_on_first(volumes: Sequence[Volume], transforms: Sequence[str | PathLike | Transform]) -> list[Volume]:
    """``volumes`` with the second, third, ... resampled on the first's grid, each through its transform (one
    per extra input, in order, ITK files or Transforms mapping first-image points to that input's points), in
    its own units (a PET stays SUVbw). No transforms: the volumes unchanged (already registered)."""
    if not transforms:
        return list(volumes)
    if len(transforms) != len(volumes) - 1:
        raise RegistrationError(f"{len(transforms)} transform(s) for {len(volumes) - 1} extra input(s): give one "
                                "--transform per input after the first, in order")
    first = volumes[0]
    placed = [first]
    for vol, t in zip(volumes[1:], transforms, strict=True):
        transform = t if isinstance(t, Transform) else Transform.load(t)
        placed.append(transform.resample(vol, first))
    return placed
