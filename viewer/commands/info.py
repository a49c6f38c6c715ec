"""`radview info PATH [--json]`: the series in PATH with geometry, units and warnings."""

from __future__ import annotations

import json

NAME = "info"
HELP = "list the series in a file or folder with geometry, units and warnings"


def add_arguments(parser) -> None:
    parser.add_argument("path", help="DICOM file/folder or NIfTI/NRRD/MHA file")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def run(args) -> int:
    from viewer.core.io.info import report

    found = report(args.path)
    series = found["series"]
    if args.json:
        print(json.dumps(found, indent=2))
        return 0
    print(f"{'modality':8} {'size (x y z)':18} {'spacing mm':22} {'units':8} {'files':>5}  description")
    for s in series:
        size = " ".join(str(v) for v in s["size"])
        spacing = " ".join(f"{v:.3g}" for v in s["spacing"])
        print(f"{s['modality']:8} {size:18} {spacing:22} {s['units']:8} {s['n_files']:>5}  {s['description']}")
        print(f"         uid {s['series_uid']}  origin {' '.join(f'{v:.2f}' for v in s['origin'])}")
        if s["colour"] == "RGB" or s["photometric"] == "MONOCHROME1":
            print(f"         {s['photometric']}: " + ("colour, shown as RGB (no window/level)" if s["colour"] == "RGB"
                                                      else "shown inverted (lowest values white)"))
        if s["spacing_source"] != "PixelSpacing":
            print(f"         in-plane spacing from {s['spacing_source']}")
        for w in s["warnings"]:
            print(f"         warning: {w}")
    for d in found["damaged"]:
        print(f"damaged  {d['file']}: {d['problem']} (left out)")
    for d in found["not_shown"]:
        print(f"not shown {d['file']}: {d['problem']}")
    return 0
