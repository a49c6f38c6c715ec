"""`radview export-seg DICOM_SERIES LABELS --out SEG.dcm`: a label map as a DICOM SEG on its series."""

from __future__ import annotations

NAME = "export-seg"
HELP = "write a NIfTI/NRRD/MHA label map as a DICOM Segmentation referencing a DICOM series"


def add_arguments(parser) -> None:
    parser.add_argument("series", help="DICOM folder (or file) of the series the labels belong to")
    parser.add_argument(
        "labels", help="label map (.nii/.nii.gz/.nrrd/.mha), resampled onto the series by world position"
    )
    parser.add_argument("--out", required=True, help="output SEG file (.dcm)")
    parser.add_argument("--names", help="label names: JSON {id: name} or a Slicer/ITK-SNAP colour table "
                        "(default: the table beside LABELS, e.g. labels.json for labels.nii.gz)")
    parser.add_argument(
        "--algorithm-type",
        choices=("MANUAL", "SEMIAUTOMATIC", "AUTOMATIC"),
        help="segment algorithm type (default AUTOMATIC with --algorithm-name, else MANUAL)",
    )
    parser.add_argument("--algorithm-name", help="name of the algorithm/model that made the labels")
    parser.add_argument("--algorithm-version", help="version of that algorithm/model")
    parser.add_argument("--description", default="Segmentation", help="series description of the SEG")
    parser.add_argument("--creator", help="content creator's name (Family^Given)")
    parser.add_argument("--series-uid", help="SeriesInstanceUID to use when the folder holds several series")


def run(args) -> int:
    import numpy as np

    from viewer.core.io import open_series
    from viewer.core.io.labelmap import label_table, load_labelmap
    from viewer.core.io.seg import write_dicom_seg

    loader = open_series(args.series, series_uid=args.series_uid)
    labels = load_labelmap(args.labels, reference=loader.volume)
    names, colors = label_table(args.labels, args.names)
    algorithm = args.algorithm_type or ("AUTOMATIC" if args.algorithm_name else "MANUAL")
    out = write_dicom_seg(
        labels.array,
        loader.series.files,
        args.out,
        names=names,
        colors=colors,
        algorithm=algorithm,
        algorithm_name=args.algorithm_name,
        algorithm_version=args.algorithm_version,
        series_description=args.description,
        content_creator=args.creator,
    )
    present = [int(v) for v in np.unique(labels.array) if v]
    print(
        f"wrote {out}: {len(present)} labels present ({algorithm}) on {loader.volume.size} voxels of "
        f"'{loader.series.description}'"
    )
    return 0
