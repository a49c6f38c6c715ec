"""`radview convert PATH OUT`: write an image as NIfTI/NRRD/MHA with the same voxels and geometry."""

from __future__ import annotations

NAME = "convert"
HELP = "convert a DICOM series or image file to .nii/.nii.gz/.nrrd/.mha (by OUT's extension)"


def add_arguments(parser) -> None:
    parser.add_argument("path", help="DICOM file/folder or image file")
    parser.add_argument("out", help="output file: .nii, .nii.gz, .nrrd, .mha or .mhd")
    parser.add_argument("--series", help="SeriesInstanceUID to convert when PATH holds several series")


def run(args) -> int:
    from viewer.core.io import load_volume, save_volume

    vol = load_volume(args.path, series_uid=args.series)
    out = save_volume(vol, args.out)
    print(f"wrote {out} ({vol.modality}, {vol.units}, size {vol.size})")
    return 0
