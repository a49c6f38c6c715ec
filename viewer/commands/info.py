"""`radview info PATH [--json]`: the series in PATH with geometry, units and warnings."""

from __future__ import annotations

import json

NAME = "info"
HELP = "list the series in a file or folder with geometry, units and warnings"


def add_arguments(parser) -> None:
    parser.add_argument("path", help="DICOM file/folder or NIfTI/NRRD/MHA file")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def run(args) -> int:
    from viewer.core.io.info import describe

    series = describe(args.path)
    if args.json:
        print(json.dumps({"series": series}, indent=2))
        return 0
    print(f"{'modality':8} {'size (x y z)':18} {'spacing mm':22} {'units':8} {'files':>5}  description")
    for s in series:
        size = " ".join(str(v) for v in s["size"])
        spacing = " ".join(f"{v:.3g}" for v in s["spacing"])
        print(f"{s['modality']:8} {size:18} {spacing:22} {s['units']:8} {s['n_files']:>5}  {s['description']}")
        print(f"         uid {s['series_uid']}  origin {' '.join(f'{v:.2f}' for v in s['origin'])}")
        for w in s["warnings"]:
            print(f"         warning: {w}")
    return 0
