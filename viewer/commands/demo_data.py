"""`radview demo-data OUT_DIR`: write the generated demo study (CT/PET DICOM, MR, labels, truth)."""

from __future__ import annotations

NAME = "demo-data"
HELP = "write the built-in demo study (CT and PET DICOM, MR NIfTI, label map, truth.json)"


def add_arguments(parser) -> None:
    parser.add_argument("out_dir", help="folder to write the study into")


def run(args) -> int:
    from viewer.core.phantom import write_demo_study

    study = write_demo_study(args.out_dir)
    for field in ("ct_dir", "pet_dir", "mr", "labels", "label_names", "truth"):
        print(f"{field:12} {getattr(study, field)}")
    return 0
