"""`radview models [--json]`: the installed models with task, modalities and labels."""

from __future__ import annotations

import json

NAME = "models"
HELP = "list the installed AI models (built-in and the user's models folder)"


def add_arguments(parser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON")


def run(args) -> int:
    from ai.registry import list_models

    cards = list_models()
    if args.json:
        print(json.dumps({"models": [{"id": c.id, "version": c.version, "name": c.name, "task": c.task,
                                      "modalities": c.modalities, "labels": {str(k): v for k, v in c.labels.items()},
                                      "format": c.format} for c in cards]}, indent=2))
        return 0
    for c in cards:
        labels = ", ".join(v for k, v in sorted(c.labels.items()) if k)
        print(f"{c.id} {c.version}  {c.task}  inputs: {'+'.join(c.modalities)}  labels: {labels}")
    return 0
