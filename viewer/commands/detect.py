"""`radview detect IMAGE [IMAGE2 ...] --model ID|PATH --out DETECTIONS.json`: findings in world mm."""

from __future__ import annotations

import json

NAME = "detect"
HELP = "run a model and write its findings (label, score, centre and box in LPS mm) as JSON"


def add_arguments(parser) -> None:
    parser.add_argument("images", nargs="+", help="input images (registered)")
    parser.add_argument("--model", required=True, help="model id or folder")
    parser.add_argument("--out", required=True, help="output JSON")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"])


def run(args) -> int:
    from ai.detection import detections_from_labels
    from ai.engine import run_segmentation
    from ai.registry import load_model
    from viewer.commands.progress_bar import ProgressBar
    from viewer.core.io import load_volume

    model = load_model(args.model)
    volumes = [load_volume(p) for p in args.images]
    result = run_segmentation(model, volumes, device=args.device, progress=ProgressBar(), return_probabilities=True)
    found = detections_from_labels(result)
    doc = {"model": {"id": model.card.id, "version": model.card.version}, "coordinates": "LPS mm",
           "detections": found}
    with open(args.out, "w") as f:
        json.dump(doc, f, indent=2)
    print(f"wrote {args.out}: {len(found)} detection(s)")
    return 0
