"""`radview stats IMAGE LABELS [--json]`: per-label volume and intensity statistics (PET adds SUV)."""

from __future__ import annotations

import json

NAME = "stats"
HELP = "per-label voxel count, volume (mL), mean/std/min/max in the image's units; PET: SUVmax/peak, MTV, TLG"


def add_arguments(parser) -> None:
    parser.add_argument("image", help="image (DICOM folder/file or NIfTI/NRRD/MHA)")
    parser.add_argument("labels", help="label map (any grid; resampled by world geometry onto the image)")
    parser.add_argument("--names", help="label names: JSON {id: name} or a colour table (default: the table "
                        "beside LABELS, e.g. labels.json for labels.nii.gz)")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.add_argument("--csv", help="also write the table as CSV to this file")


def run(args) -> int:
    from viewer.core.io import load_volume
    from viewer.core.io.labelmap import label_table, load_labelmap
    from viewer.core.stats import label_statistics, statistics_csv

    image = load_volume(args.image)
    labels = load_labelmap(args.labels, reference=image)
    names, _ = label_table(args.labels, args.names)
    rows = label_statistics(image, labels, names)
    if args.csv:
        with open(args.csv, "w", newline="") as f:
            f.write(statistics_csv(rows))
    if args.json:
        keys = ("label", "name", "voxels", "volume_ml", "mean", "std", "min", "max", "units", "suv_max", "suv_peak",
                "mtv_ml", "tlg")
        print(json.dumps({"labels": [{k: r[k] for k in keys if k in r} for r in rows]}, indent=2))
        return 0
    print(f"{'label':>5} {'name':24} {'voxels':>9} {'mL':>10} {'mean':>9} {'std':>8} {'min':>8} {'max':>8} units")
    for r in rows:
        print(f"{r['label']:>5} {r['name'][:24]:24} {r['voxels']:>9} {r['volume_ml']:>10.3f} {r['mean']:>9.2f} "
              f"{r['std']:>8.2f} {r['min']:>8.1f} {r['max']:>8.1f} {r['units']}"
              + (f"  SUVmax {r['suv_max']:.2f} SUVpeak {r['suv_peak']:.2f} TLG {r['tlg']:.1f}" if "suv_max" in r
                 else ""))
    return 0
