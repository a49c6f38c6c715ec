"""`radview render PATH --out PNG ...`: offscreen render with the viewer's own VTK pipeline."""

from __future__ import annotations

NAME = "render"
HELP = "render one view of an image (optionally with a label overlay) to a PNG, without a window"


def add_arguments(parser) -> None:
    parser.add_argument("path", help="DICOM file/folder or image file")
    parser.add_argument("--out", required=True, help="output PNG")
    parser.add_argument("--view", default="axial", choices=["axial", "coronal", "sagittal", "3d"])
    parser.add_argument("--slice", type=int, help="slice index in the view (default: the middle)")
    parser.add_argument("--preset", help="W/L preset (ct_abdomen, ct_lung, ...) or 3D preset (ct_bone, ...)")
    parser.add_argument("--window", type=float, help="window width")
    parser.add_argument("--level", type=float, help="window centre")
    parser.add_argument("--labels", help="label map to overlay (any grid; aligned in world space)")
    parser.add_argument("--size", type=int, default=512, help="image size in pixels (square)")
    parser.add_argument("--series", help="SeriesInstanceUID when PATH holds several series")


def run(args) -> int:
    from viewer.core.io import load_volume
    from viewer.render.offscreen import render_png

    vol = load_volume(args.path, series_uid=args.series)
    labels = load_volume(args.labels) if args.labels else None
    out = render_png(vol, args.out, view=args.view, slice_index=args.slice, window=args.window,
                     level=args.level, preset=args.preset, labels=labels, size=args.size)
    print(f"wrote {out}")
    return 0
