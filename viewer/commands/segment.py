"""`radview segment IMAGE [IMAGE2 ...] --model ID|PATH --out LABELS.nii.gz`: run a segmentation model."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from viewer.commands.models import MODEL_HELP

NAME = "segment"
HELP = "segment images with an AI model; writes the label map on the first image's grid"


def add_arguments(parser) -> None:
    parser.add_argument("images", nargs="+", help="input images (registered), in the model's channel order")
    parser.add_argument("--model", required=True, help=MODEL_HELP)
    parser.add_argument("--out", required=True,
                        help="output label map (.nii.gz, .nii, .nrrd, .mha); its {id: name} table is written beside "
                             "it (labels.nii.gz -> labels.json)")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"])
    parser.add_argument("--tta", action="store_true", help="mirroring test-time augmentation")
    parser.add_argument("--transform", action="append", default=[], metavar="T.tfm",
                        help="ITK transform (radview register's output: first-image point -> that input's point), "
                             "one per input after the first, in order: that input is placed on the first's grid")
    parser.add_argument("--probabilities", help="also write the probability of the chosen label here")
    parser.add_argument("--folds", help="nnU-Net folders: comma-separated folds to average, e.g. 0,1 (default: all)")
    parser.add_argument("--no-mirroring", action="store_true",
                        help="nnU-Net folders: turn off the mirroring the checkpoint allows (faster)")


def write_outputs(result, out: Path, probabilities: Path | None) -> None:
    """Write the label map, its names table beside it (names_path_for) and the probabilities, each to a
    temporary file renamed into place once everything is written: an interrupted run leaves no file."""
    from viewer.commands.outputs import partial_path
    from viewer.core.io import save_volume
    from viewer.core.io.labelmap import names_path_for, save_labelmap

    planned = [(partial_path(out), out), (names_path_for(partial_path(out)), names_path_for(out))]
    if probabilities is not None:
        planned.append((partial_path(probabilities), probabilities))
    try:
        save_labelmap(result.labels, planned[0][0], result.names)
        if probabilities is not None:
            save_volume(result.probabilities, planned[2][0])
        for tmp, final in reversed(planned):  # the label map last: present means complete
            os.replace(tmp, final)
    finally:
        for tmp, _ in planned:
            tmp.unlink(missing_ok=True)


def segment_to_file(model, volumes, out: Path, *, device, tta: bool = False, probabilities: Path | None = None,
                    progress=None, cancel=None):
    """Segment registered ``volumes`` with a loaded ``model`` and write the outputs as `radview segment` does
    (write_outputs); returns the SegmentationResult. `radview batch` runs every case through this too."""
    from ai.engine import run_segmentation

    result = run_segmentation(model, volumes, device=device, tta=tta, progress=progress, cancel=cancel,
                              return_probabilities=probabilities is not None)
    write_outputs(result, out, probabilities)
    return result


def run(args) -> int:
    from ai.engine import NO_MIRRORING, select_device
    from ai.registry import load_model
    from viewer.commands.model_inputs import load_model_inputs
    from viewer.commands.progress_bar import terminal_job
    from viewer.core.errors import ModelError

    if args.tta and args.no_mirroring:
        raise ModelError("--tta and --no-mirroring contradict each other")
    folds = [f.strip() for f in args.folds.split(",") if f.strip()] if args.folds else None
    device = select_device(args.device)
    model = load_model(args.model, device="cpu", folds=folds, use_mirroring=not args.no_mirroring)
    if args.tta and not model.mirror_axes:
        print(f"radview: warning: {model.card.id}: {NO_MIRRORING}", file=sys.stderr)
    volumes = load_model_inputs(args.images, args.transform, model.card)
    with terminal_job() as (bar, cancel):
        result = segment_to_file(model, volumes, Path(args.out), device=device, tta=args.tta,
                                 probabilities=Path(args.probabilities) if args.probabilities else None,
                                 progress=bar, cancel=cancel)
    counts = {name: int((result.labels.array == k).sum()) for k, name in result.names.items()}
    print(f"wrote {args.out} ({model.card.id} {model.card.version} on {device}); voxels per label: {counts}")
    return 0
