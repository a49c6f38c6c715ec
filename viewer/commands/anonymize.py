"""`radview anonymize IN OUT`: de-identify DICOM files (PS3.15 Basic Application Confidentiality Profile)."""

from __future__ import annotations

import sys

NAME = "anonymize"
HELP = "de-identify DICOM files (PS3.15 Annex E basic profile) from a file or folder into a folder"


def add_arguments(parser) -> None:
    parser.add_argument("input", help="DICOM file or folder (searched recursively)")
    parser.add_argument("out", help="output folder (one sub-folder per series)")
    parser.add_argument("--patient-name", default="ANON", help="replacement Patient's Name (default ANON)")
    parser.add_argument("--patient-id", help="replacement Patient ID (default: a per-run pseudonym)")


def run(args) -> int:
    from viewer.core.io.anonymize import anonymize

    report = anonymize(args.input, args.out, patient_name=args.patient_name, patient_id=args.patient_id)
    print(f"wrote {len(report.files_written)} files to {report.out_dir} ({report.uid_map_size} UIDs replaced)")
    for path, why in report.skipped:
        print(f"skipped {path}: {why}")
    counts = ", ".join(f"{n} {flag}" for flag, n in sorted(report.burned_in_counts.items()))
    print(f"BurnedInAnnotation: {counts or 'no files'}")
    for path in report.burned_in:
        print(f"warning: {path}: BurnedInAnnotation YES, text in the pixels is not removed", file=sys.stderr)
    return 0
