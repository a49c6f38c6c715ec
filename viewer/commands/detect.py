"""`radview detect IMAGE [IMAGE2 ...] --model ID|PATH --out DETECTIONS.json`: findings in world mm."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from viewer.commands.models import MODEL_HELP

NAME = "detect"
HELP = "run a detection (or segmentation) model and write its findings (label, score, centre and box in LPS mm)"


def add_arguments(parser) -> None:
    parser.add_argument("images", nargs="+", help="input images (registered), in the model's channel order")
    parser.add_argument("--model", required=True, help=MODEL_HELP)
    parser.add_argument("--out", required=True, help="output JSON: {model, coordinates, detections}")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"])
    parser.add_argument("--tta", action="store_true", help="mirroring test-time augmentation")
    parser.add_argument("--transform", action="append", default=[], metavar="T.tfm",
                        help="ITK transform (radview register's output: first-image point -> that input's point), "
                             "one per input after the first, in order: that input is placed on the first's grid")


def run(args) -> int:
    from ai.detection import run_detection
    from ai.engine import select_device
    from ai.registry import load_model
    from viewer.commands.model_inputs import load_model_inputs
    from viewer.commands.outputs import partial_path
    from viewer.commands.progress_bar import terminal_job

    device = select_device(args.device)
    model = load_model(args.model)
    volumes = load_model_inputs(args.images, args.transform, model.card)
    with terminal_job() as (bar, cancel):
        result = run_detection(model, volumes, device=device, tta=args.tta, progress=bar, cancel=cancel)
    for warning in result.warnings:
        print(f"radview: warning: {model.card.id}: {warning}", file=sys.stderr)
    out = Path(args.out)
    partial = partial_path(out)
    partial.write_text(json.dumps(result.to_json(), indent=2))
    os.replace(partial, out)  # present means complete
    print(f"wrote {out}: {len(result.detections)} detection(s) by {model.card.id} {model.card.version} on {device}")
    return 0
