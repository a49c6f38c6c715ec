"""`radview models [--json]`: the installed models with task, modalities and labels."""

from __future__ import annotations

import json

NAME = "models"
HELP = "list the installed AI models (built-in and the user's models folder)"
#: the --model option of the commands that run a model (ai.registry.find_model resolves it)
MODEL_HELP = "model id (radview models; ID@VERSION picks one of several installed versions) or model folder"


def add_arguments(parser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON")


def run(args) -> int:
    from ai.registry import list_models

    cards = list_models()
    if args.json:
        print(json.dumps({"models": [{"id": c.id, "version": c.version, "name": c.name, "task": c.task,
                                      "modalities": c.modalities, "labels": {str(k): v for k, v in c.labels.items()},
                                      "format": c.format, **_translation(c)} for c in cards]}, indent=2))
        return 0
    for c in cards:
        labels = ", ".join(v for k, v in sorted(c.labels.items()) if k)
        made = _translation(c)
        what = (f"output: {made['output'].get('modality')} in {made['output'].get('units')}, trained on "
                f"{made['anatomy'] or 'an unstated anatomy'}") if made else f"labels: {labels}"
        print(f"{c.id} {c.version}  {c.task}  inputs: {'+'.join(c.modalities)}  {what}")
    return 0


def _translation(card) -> dict:
    """A translation card's output and anatomy ({} for other tasks)."""
    return {"output": card.output, "anatomy": card.anatomy} if card.task == "translation" else {}
