"""`radview render PATH --out PNG ...`: offscreen render with the viewer's own VTK pipeline."""

from __future__ import annotations

NAME = "render"
HELP = ("render one view of an image (optionally with a label overlay and a fused second volume) to a PNG, "
        "without a window")


def add_arguments(parser) -> None:
    from viewer.core.fusion import BLEND_MODES, FUSION_COLORMAPS

    parser.add_argument("path", help="DICOM file/folder or image file (the fixed image)")
    parser.add_argument("--out", required=True, help="output PNG")
    parser.add_argument("--view", default="axial", choices=["axial", "coronal", "sagittal", "3d"])
    parser.add_argument("--slice", type=int, help="slice index in the view (default: the middle)")
    parser.add_argument("--preset", help="W/L preset (ct_abdomen, ct_lung, ...) or 3D preset (ct_bone, ...)")
    parser.add_argument("--window", type=float, help="window width")
    parser.add_argument("--level", type=float, help="window centre")
    parser.add_argument("--labels", help="label map to overlay (any grid; aligned in world space)")
    parser.add_argument("--size", type=int, default=512, help="image size in pixels (square)")
    parser.add_argument("--series", help="SeriesInstanceUID when PATH holds several series")
    fusion = parser.add_argument_group("fused overlay (a second volume, e.g. PET over CT or MR over CT)")
    fusion.add_argument("--overlay", metavar="MOVING", help="image to fuse over PATH")
    fusion.add_argument("--overlay-transform", metavar="T.tfm",
                        help="ITK transform file mapping PATH (fixed) points to MOVING points, as saved by radview "
                             "register or Slicer (default: both in the same world frame)")
    fusion.add_argument("--overlay-colormap", choices=FUSION_COLORMAPS, help="default: hot for PET, gray otherwise")
    fusion.add_argument("--overlay-opacity", type=float, help="0-1 (default 0.5)")
    fusion.add_argument("--overlay-window", type=float, nargs=2, metavar=("LOW", "HIGH"),
                        help="MOVING values spanning the colour map (PET: SUV; default: the image's own window)")
    fusion.add_argument("--overlay-threshold", type=float,
                        help="MOVING values below it are transparent (default: 10%% into the window)")
    fusion.add_argument("--overlay-blend", choices=BLEND_MODES, help="default: alpha")


def overlay_style(args, moving):
    """The FusionDisplay of the --overlay-* options: ``moving``'s default style with the given fields changed."""
    from viewer.core.fusion import FusionDisplay

    fields = {"colormap": args.overlay_colormap, "opacity": args.overlay_opacity, "threshold": args.overlay_threshold,
              "blend": args.overlay_blend,
              "window": tuple(args.overlay_window) if args.overlay_window else None}
    return FusionDisplay.for_volume(moving, **{k: v for k, v in fields.items() if v is not None})


def run(args) -> int:
    from viewer.core.io import load_volume
    from viewer.core.registration import Transform
    from viewer.render.offscreen import render_png

    vol = load_volume(args.path, series_uid=args.series)
    labels = load_volume(args.labels) if args.labels else None
    overlay = load_volume(args.overlay) if args.overlay else None
    given = [k for k in ("overlay_transform", "overlay_colormap", "overlay_opacity", "overlay_window",
                         "overlay_threshold", "overlay_blend") if getattr(args, k) is not None]
    if overlay is None and given:
        raise ValueError(f"--{given[0].replace('_', '-')} needs --overlay MOVING")
    transform = Transform.load(args.overlay_transform) if args.overlay_transform else None
    out = render_png(vol, args.out, view=args.view, slice_index=args.slice, window=args.window,
                     level=args.level, preset=args.preset, labels=labels, size=args.size, overlay=overlay,
                     overlay_transform=transform, overlay_style=overlay_style(args, overlay) if overlay else None)
    print(f"wrote {out}")
    return 0
