"""`radview finetune --model ID --images IMG [IMG ...] --labels LAB [LAB ...] --out DIR`: a new model version
from corrected masks (label ids mapped to the model's labels by name)."""

from __future__ import annotations

import sys

from viewer.commands.models import MODEL_HELP

NAME = "finetune"
HELP = "fine-tune a built-in segmentation model on corrected masks; writes a new model version (parent untouched)"


def add_arguments(parser) -> None:
    parser.add_argument("--model", required=True, help=f"{MODEL_HELP} to start from")
    parser.add_argument("--images", nargs="+", required=True,
                        help="images; IMAGE i pairs with LABELS i (a model of k input channels takes k images per "
                             "label map, in its channel order)")
    parser.add_argument("--labels", nargs="+", required=True, help="corrected label maps, one per case")
    parser.add_argument("--names", help="label names for every label map: JSON {id: name} or a colour table "
                        "(default: the table beside each label file, as radview stats reads it)")
    parser.add_argument("--epochs", type=int, default=10, help="training epochs (default 10)")
    parser.add_argument("--out", required=True, help="new model folder (never the parent's)")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: every core, at most 4)")


def run(args) -> int:
    from ai.training.finetune import fine_tuning_parent, finetune
    from viewer.commands.progress_bar import training_job
    from viewer.core.errors import ModelError
    from viewer.core.io import load_volume

    _, card = fine_tuning_parent(args.model)  # before reading any image: a model that cannot be fine-tuned fails first
    k = len(card.inputs)
    if args.epochs < 1:
        raise ModelError(f"--epochs must be >= 1, got {args.epochs}")
    if len(args.images) != k * len(args.labels):
        raise ModelError(f"{card.id} takes {k} image(s) per case ({' + '.join(card.modalities)}): {len(args.labels)} "
                         f"label map(s) need {k * len(args.labels)} image(s), got {len(args.images)}")
    volumes = [load_volume(p) for p in args.images]
    images = [volumes[i * k:(i + 1) * k] for i in range(len(args.labels))]
    labels = [labels_by_name(path, args.names, imgs[0], card.labels) for path, imgs in zip(args.labels, images,
                                                                                            strict=True)]
    with training_job() as (bar, cancel):
        out = finetune(args.model, images, labels, args.out, epochs=args.epochs, names=list(args.labels),
                       device=args.device, threads=args.threads, progress=bar, cancel=cancel)
    from ai.model import ModelCard

    new = ModelCard.from_file(out / "model.json")
    before, after = (run_["metrics"] for run_ in new.comparisons[0]["runs"])
    print(f"wrote {out} ({new.id} {new.version}, parent {card.id} {card.version}); on the fine-tuning data "
          f"(not held out): " + ", ".join(f"{b['name']} {b['value']} -> {a['value']}"
                                          for b, a in zip(before, after, strict=False) if b["name"] == a["name"]))
    return 0


def labels_by_name(path, names_path, reference, model_labels: dict[int, str]):
    """The label map at ``path`` on ``reference``'s grid with its ids mapped BY NAME to ``model_labels`` (names from
    ``names_path`` or the table beside the file, as ``radview stats`` reads them); names the model lacks become
    background (said on stderr). LabelMapError when it holds none of the model's labels, or when the ones it holds
    lie outside ``reference`` (the label map of another image)."""
    import numpy as np

    from ai.training.datasets import relabel
    from viewer.core.errors import LabelMapError
    from viewer.core.io.labelmap import label_table, load_labelmap

    names, _ = label_table(path, names_path)
    if not names:
        raise LabelMapError("no label names: give --names (JSON {id: name} or a colour table) or store them beside "
                            "the label file", path)
    known = {n.lower() for n in model_labels.values()}
    unknown = sorted(n for n in names.values() if n.lower() not in known)
    if unknown:
        print(f"radview: warning: {path}: label(s) {', '.join(unknown)} are not the model's; trained as background",
              file=sys.stderr)
    mapped = relabel(load_labelmap(path, reference=reference), names, model_labels)
    if not mapped.array.any():
        on_own_grid = np.unique(load_labelmap(path).array).tolist()
        held = sorted(names[i] for i in on_own_grid if i and i in names and names[i].lower() in known)
        if held:
            raise LabelMapError(f"its {', '.join(held)} lie outside the image {reference.description!r} (is it the "
                                "label map of another image?)", path)
        raise LabelMapError(f"none of the model's labels ({', '.join(n for i, n in model_labels.items() if i)}) is in "
                            "this label map", path)
    return mapped
