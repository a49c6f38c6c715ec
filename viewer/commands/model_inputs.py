"""The images a model command runs on: read, taken as the model's input channels, checked to be registered and
placed on the first image's grid (`radview segment`, `explain` and `detect` alike)."""

from __future__ import annotations

import sys


def with_card_modalities(volumes, paths, card) -> list:
    """``volumes`` (read from ``paths``) with images from files that record no modality (NIfTI, NRRD, MHA: "OT")
    taken as the card's input channels say, in the units its normalisation needs (as in training:
    ai.training.tasks.with_card_inputs); a warning on stderr names each image so taken. One taken as SUVbw must
    hold values SUV can have (ai.normalize.check_suv_values: ModelError naming the file otherwise)."""
    from ai.normalize import check_suv_values
    from ai.training.cases import Case
    from ai.training.tasks import with_card_inputs

    taken = with_card_inputs(Case("", list(volumes), None), card).images
    for vol, new, path in zip(volumes, taken, paths, strict=True):
        if new.modality != vol.modality:
            if new.units == "SUVbw":
                check_suv_values(new, path)
            print(f"radview: warning: {vol.description}: the file records no modality; used as {new.modality} in "
                  f"{new.units}, the model's input", file=sys.stderr)
    return taken


def require_registered(volumes, paths) -> None:
    """RegistrationError naming the files unless inputs given without --transform can be combined as they are: on
    one grid, or in one DICOM frame of reference (a PET/CT scanner's shared world frame)."""
    from viewer.core.errors import RegistrationError

    first, first_path = volumes[0], paths[0]
    frame = first.meta.get("frame_of_reference_uid")
    for vol, path in zip(volumes[1:], paths[1:], strict=True):
        if vol.same_grid(first) or (frame and vol.meta.get("frame_of_reference_uid") == frame):
            continue
        raise RegistrationError(
            f"not on the grid of {first_path} and no DICOM frame of reference is shared with it, so the two may not be "
            f"registered: register them first (radview register {first_path} {path} --out ON_FIRST.nii.gz "
            f"--transform FIRST_TO_IT.tfm) and pass --transform FIRST_TO_IT.tfm", path)


def load_model_inputs(paths, transforms, card) -> list:
    """The Volumes of the image files ``paths`` for a model with ``card``: modalities as with_card_modalities,
    the second, third, ... placed on the first's grid through ``transforms`` (ITK files, one per extra input), or,
    with none, required to be registered already (require_registered)."""
    from viewer.core.io import load_volume
    from viewer.core.registration.placement import place_on_first

    volumes = with_card_modalities([load_volume(p) for p in paths], paths, card)
    if not transforms:
        require_registered(volumes, paths)
    return place_on_first(volumes, transforms)
