"""`radview explain IMAGE [IMAGE2 ...] --model ID|PATH --method gradcam|attention|uncertainty --out MAP.nii.gz`."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from viewer.commands.models import MODEL_HELP

NAME = "explain"
HELP = "explain a model's output as a float map on the first image's grid (Grad-CAM, attention gates, uncertainty)"
METHODS = ("gradcam", "attention", "uncertainty")  # ai.explain.METHODS (not imported here: --help stays fast)


def add_arguments(parser) -> None:
    parser.add_argument("images", nargs="+", help="input images (registered), in the model's channel order")
    parser.add_argument("--model", required=True, help=MODEL_HELP)
    parser.add_argument("--method", required=True, choices=METHODS,
                        help="gradcam: HiResCAM evidence (0..1) for --label where the model predicts it (a "
                             "detection model: at its detections' peaks); attention: an Attention U-Net's gate "
                             "coefficients (0..1); uncertainty: predictive entropy (0..1) of 2 test-time runs")
    parser.add_argument("--label", help="gradcam: label name from the model card (default: the first label after "
                                        "background, e.g. liver); attention and uncertainty maps are the same for "
                                        "every label (the name is checked, then set aside)")
    parser.add_argument("--layer", help="gradcam: the layer whose activations are weighed (default: the decoder's "
                                        "last feature layer); attention: the gate (default: the finest)")
    parser.add_argument("--out", required=True, help="output float32 map (.nii.gz, .nii, .nrrd, .mha) on the first "
                                                     "image's grid; its header description says what it is")
    parser.add_argument("--transform", action="append", default=[], metavar="T.tfm",
                        help="ITK transform (radview register's output: first-image point -> that input's point), "
                             "one per input after the first, in order: that input is placed on the first's grid")


def write_map(heat, out: Path) -> None:
    """Write the float map with its description in the header (NIfTI descrip, 79 bytes; a NRRD / MetaImage
    field), under a temporary name renamed into place: present means complete."""
    from viewer.commands.outputs import partial_path
    from viewer.core.io.image_files import write_image_file

    partial = partial_path(out)
    try:
        write_image_file(heat, partial, notes=heat.description)
        os.replace(partial, out)
    finally:
        partial.unlink(missing_ok=True)


def run(args) -> int:
    from ai.explain import check_request, explain
    from ai.registry import load_model
    from viewer.commands.model_inputs import load_model_inputs
    from viewer.commands.progress_bar import terminal_job
    from viewer.core.errors import UnsupportedFormatError
    from viewer.core.io.image_files import WRITE_EXTENSIONS, image_extension

    if image_extension(Path(args.out)) not in WRITE_EXTENSIONS:  # before the work, not after it
        raise UnsupportedFormatError(f"unknown output format; use one of {', '.join(WRITE_EXTENSIONS)}", args.out)
    model = load_model(args.model, device="cpu")
    check_request(model, args.method, label=args.label, layer=args.layer)  # before the images are read
    label = args.label
    if args.method != "gradcam" and label:  # one map for every label: the name was checked, now set aside
        print(f"radview: warning: --label {label}: the {args.method} map is the same for every label", file=sys.stderr)
        label = None
    volumes = load_model_inputs(args.images, args.transform, model.card)
    with terminal_job() as (bar, cancel):
        heat = explain(model, volumes, args.method, label=label, layer=args.layer, progress=bar, cancel=cancel)
    write_map(heat, Path(args.out))
    print(f"wrote {args.out}: {heat.description}; max {float(heat.array.max()):.3g}")
    return 0
