"""Train the built-in abdominal CT organ model (MONAI 3D U-Net) on the shared labelled CT and the phantom.

Reproducible (fixed seed, fixed iteration count) and CPU-sized:
``python -m ai.training.train_abdomen --out resources/models/abdomen_ct_unet``.
Writes fp16 weights and a model card whose metrics are measured here, end to end through the engine,
on the original image grids.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np

from ai.engine import run_segmentation
from ai.model import ModelCard
from ai.training.common import finish_card, fit, reproducible, save_model, to_model_grid

log = logging.getLogger(__name__)
SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"
#: source label id (TotalSegmentator ids, also used by the phantom) -> model label id
LABEL_MAP = {5: 1, 1: 2, 3: 3, 2: 4}
LABELS = {0: "background", 1: "liver", 2: "spleen", 3: "kidney_left", 4: "kidney_right"}
NETWORK = {"class": "UNet", "args": {"spatial_dims": 3, "in_channels": 1, "out_channels": 5,
                                     "channels": [16, 32, 64, 128], "strides": [2, 2, 2], "num_res_units": 1}}
PHANTOM_TRAIN_SEEDS = (0, 1)
PHANTOM_VALIDATION_SEED = 7


def base_card() -> ModelCard:
    return ModelCard(
        id="abdomen_ct_unet", version="0.2.0", name="Abdominal CT organs (demo U-Net)", task="segmentation",
        inputs=[{"modality": "CT", "name": "ct"}], normalization=[{"kind": "ct_window", "min": -250, "max": 350}],
        labels=dict(LABELS), spacing=[3.0, 3.0, 3.0], patch_size=[64, 64, 32], network=NETWORK,
        mirror_axes=[],  # trained without flips (left/right organs): mirroring TTA would not apply
    )


def remap(labels: np.ndarray) -> np.ndarray:
    out = np.zeros(labels.shape, np.uint8)
    for src, dst in LABEL_MAP.items():
        out[labels == src] = dst
    return out


def cases() -> list[tuple[str, object, object]]:
    """(name, CT Volume, model-label Volume on the CT grid) for every training case."""
    from viewer.core.io import load_volume
    from viewer.core.phantom import make_phantom

    out = []
    ct = load_volume(SHARED / "ct_abdomen_3mm.nii.gz")
    ct.units, ct.modality = "HU", "CT"
    lab = load_volume(SHARED / "ct_abdomen_3mm_labels.nii.gz")
    out.append(("shared ct_abdomen_3mm", ct, lab.with_array(remap(lab.array))))
    for seed in PHANTOM_TRAIN_SEEDS:
        ph = make_phantom(seed)
        out.append((f"phantom seed {seed}", ph.ct, ph.labels.with_array(remap(ph.labels.array))))
    return out


def intensity_jitter(xp: np.ndarray, yp: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Random contrast (x0.9-1.1), offset (+-0.05) and noise (sd 0.02) on a normalised CT patch."""
    return xp * rng.uniform(0.9, 1.1) + rng.uniform(-0.05, 0.05) + rng.normal(0, 0.02, xp.shape), yp


def train(out: Path, iterations: int, seed: int = 0) -> dict:
    from ai.formats.builtin import build_network

    rng = reproducible(seed)
    card = base_card()
    data = [to_model_grid(card, [ct], lab) for _, ct, lab in cases()]
    net = build_network(card.network)
    run = fit(net, data, tuple(card.patch_size[::-1]), rng, iterations=iterations,
              augment=intensity_jitter)
    save_model(net, card, out)  # evaluate needs the card
    return run


def dice(a: np.ndarray, b: np.ndarray) -> float:
    s = a.sum() + b.sum()
    return float(2 * (a & b).sum() / s) if s else 1.0


def evaluate(out: Path) -> list[dict]:
    """Dice per organ, end to end through the engine on the original grids."""
    from ai.registry import load_model
    from viewer.core.io import load_volume
    from viewer.core.phantom import make_phantom

    model = load_model(str(out))
    metrics = []
    ct = load_volume(SHARED / "ct_abdomen_3mm.nii.gz")
    ct.units, ct.modality = "HU", "CT"
    ref = remap(load_volume(SHARED / "ct_abdomen_3mm_labels.nii.gz").array)
    ph = make_phantom(PHANTOM_VALIDATION_SEED)
    for data, truth, ds in (
        (ct, ref, "shared ct_abdomen_3mm (TRAINING case; TotalSegmentator reference labels)"),
        (ph.ct, remap(ph.labels.array), f"phantom seed {PHANTOM_VALIDATION_SEED} (held-out noise; same anatomy as "
                                        "the training phantoms)"),
    ):
        pred = run_segmentation(model, [data]).labels.array
        for k, name in LABELS.items():
            if k:
                metrics.append({"name": f"dice_{name}", "value": round(dice(pred == k, truth == k), 4), "data": ds})
    return metrics


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default="resources/models/abdomen_ct_unet")
    parser.add_argument("--iterations", type=int, default=1299,
                        help="Adam iterations of 4 patches (1299 made the shipped weights)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    out = Path(args.out)
    card = base_card()
    run = train(out, args.iterations)
    card.metrics = evaluate(out)
    return finish_card(
        card, out, run,
        training_data=(
            "radview's own data only: ../shared/data/ct_abdomen_3mm.nii.gz with its TotalSegmentator reference labels "
            "(1 real CT, 3 mm) and the generated demo phantom "
            f"(viewer.core.phantom, seeds {list(PHANTOM_TRAIN_SEEDS)}); "
            f"{run['iterations']} Adam iterations of 4 patches, {run['seconds']} s on CPU "
            "(python -m ai.training.train_abdomen)"
        ),
        intended_use="Demonstration of the AI path (engine, hand correction, provenance). Not for clinical use.",
        limitations=(
            "Trained on one real CT and a synthetic phantom: it has not seen real anatomical variation, so expect "
            "poor results on other scanners and patients. The real-CT Dice is measured on its own training case. "
            "Resamples to 3 mm; small structures are lost. Trained without mirroring augmentation, so mirroring "
            "TTA does not apply (mirror_axes is empty)."
        ),
        license="Apache-2.0 (weights and training code); training CT from the TotalSegmentator test files.",
        changelog={"0.1.0": "first built-in model",
                   "0.2.0": "retrained on phantom version 2 (visceral fat, back muscles, portal-venous contrast, "
                            "spleen against the body wall)"},
    )


if __name__ == "__main__":
    raise SystemExit(main())
