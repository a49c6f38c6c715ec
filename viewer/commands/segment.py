"""`radview segment IMAGE [IMAGE2 ...] --model ID|PATH --out LABELS.nii.gz`: run a segmentation model."""

from __future__ import annotations

NAME = "segment"
HELP = "segment images with an AI model; writes the label map on the first image's grid"


def add_arguments(parser) -> None:
    parser.add_argument("images", nargs="+", help="input images (registered), in the model's channel order")
    parser.add_argument("--model", required=True, help="model id (radview models) or model folder")
    parser.add_argument("--out", required=True, help="output label map (.nii.gz, .nrrd, .mha)")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"])
    parser.add_argument("--tta", action="store_true", help="mirroring test-time augmentation")
    parser.add_argument("--probabilities", help="also write the probability of the chosen label here")


def run(args) -> int:
    from ai.engine import run_segmentation, select_device
    from ai.registry import load_model
    from viewer.commands.progress_bar import ProgressBar
    from viewer.core.io import load_volume, save_volume
    from viewer.core.progress import CancelToken

    device = select_device(args.device)
    model = load_model(args.model, device="cpu")
    volumes = [load_volume(p) for p in args.images]
    cancel = CancelToken()
    try:
        result = run_segmentation(model, volumes, device=device, tta=args.tta, progress=ProgressBar(),
                                  cancel=cancel, return_probabilities=bool(args.probabilities))
    except KeyboardInterrupt:
        cancel.cancel()
        raise
    save_volume(result.labels, args.out)
    if args.probabilities:
        save_volume(result.probabilities, args.probabilities)
    counts = {name: int((result.labels.array == k).sum()) for k, name in result.names.items()}
    print(f"wrote {args.out} ({model.card.id} {model.card.version} on {device}); voxels per label: {counts}")
    return 0
