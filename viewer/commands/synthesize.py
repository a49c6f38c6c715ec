"""`radview synthesize IMAGE --model ID|PATH --out OUT`: a translation model's synthetic image on IMAGE's grid."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from viewer.commands.models import MODEL_HELP

NAME = "synthesize"
HELP = ("make a synthetic image (e.g. CT from MR) with a translation model, on IMAGE's grid, flagged SYNTHETIC "
        "in the file")


def add_arguments(parser) -> None:
    parser.add_argument("image", help="input image (DICOM folder/file, NIfTI, NRRD, MHA) of the model's modality")
    parser.add_argument("--model", required=True, help=f"translation {MODEL_HELP}")
    parser.add_argument("--out", required=True,
                        help="output: .nii.gz, .nii, .nrrd or .mha (the header's description begins 'SYNTHETIC'), "
                             "or a folder for a DICOM series (ImageType DERIVED\\SECONDARY, DerivationDescription "
                             "and SeriesDescription saying synthetic)")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"])


def write_output(vol, out: Path) -> Path:
    """Write ``vol`` to ``out`` (an image file by extension, else a new or empty folder for a DICOM series)
    under a temporary name renamed into place once complete: present means complete."""
    from viewer.commands.outputs import partial_path
    from viewer.core.errors import InputError
    from viewer.core.io import save_volume
    from viewer.core.io.image_files import image_extension

    dicom = image_extension(out) is None
    if dicom and out.is_dir() and any(out.iterdir()):
        raise InputError("output folder is not empty (the DICOM series is written into a new or empty folder)", out)
    partial = partial_path(out)
    try:
        if dicom:
            _write_dicom(vol, partial)
        else:
            save_volume(vol, partial)
        os.replace(partial, out)  # a folder replaces an empty folder too
    finally:
        if partial.is_dir():
            shutil.rmtree(partial)
        else:
            partial.unlink(missing_ok=True)
    return out


def _write_dicom(vol, folder: Path) -> None:
    """The synthetic volume as a DICOM series (the patient of its input when it was DICOM)."""
    from viewer.core.io.dicom_writer import DicomStudy, write_dicom_series

    study = DicomStudy(key=f"{vol.synthetic} {vol.meta.get('derived_from')}",
                       patient_name=vol.meta.get("patient_name") or "SYNTHETIC^IMAGE",
                       patient_id=vol.meta.get("patient_id") or "SYNTHETIC",
                       study_description=vol.meta.get("study_description") or "")
    write_dicom_series(vol, folder, study=study, series_description=vol.synthetic)


def run(args) -> int:
    from ai.engine import select_device
    from ai.registry import load_model
    from ai.translation import run_translation
    from viewer.commands.progress_bar import terminal_job
    from viewer.core.io import load_volume

    device = select_device(args.device)
    model = load_model(args.model)
    volume = load_volume(args.image)
    with terminal_job() as (bar, cancel):
        result = run_translation(model, [volume], device=device, progress=bar, cancel=cancel)
    for warning in result.warnings:
        print(f"radview: warning: {warning}", file=sys.stderr)
    out = write_output(result.volume, Path(args.out))
    print(f"wrote {out}: {result.volume.synthetic} on {device} ({result.volume.modality}, {result.volume.units}, "
          f"size {result.volume.size})")
    return 0
