"""Train the built-in PET lesion detector (MONAI 3D U-Net, lesion vs background) on generated phantoms.

Reproducible (fixed seed and iteration count) and CPU-sized:
``python -m ai.training.train_lesions --out resources/models/pet_lesion_unet``. Trains on phantom seeds
1..N (each with its own lesions, viewer.core.phantom.phantom_lesions), then measures detection sensitivity,
false positives per scan and centre error end to end through ai.detection on held-out seeds and on the
demo study (seed 0), and writes fp16 weights and the card with those numbers.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import numpy as np

from ai.model import ModelCard
from ai.training.common import finish_card, fit, reproducible, save_model, to_model_grid
from viewer.core.volume import Volume

log = logging.getLogger(__name__)
LABELS = {0: "background", 1: "lesion"}
NETWORK = {"class": "UNet", "args": {"spatial_dims": 3, "in_channels": 1, "out_channels": 2,
                                     "channels": [16, 32, 64, 128], "strides": [2, 2, 2], "num_res_units": 1}}
VALIDATION_SEEDS = tuple(range(100, 110))
DEMO_SEED = 0


def base_card() -> ModelCard:
    return ModelCard(
        id="pet_lesion_unet", version="0.2.0", name="PET hot-lesion detector (demo U-Net)", task="detection",
        inputs=[{"modality": "PT", "name": "pet"}], normalization=[{"kind": "suv", "max": 20}],
        labels=dict(LABELS), spacing=[4.0, 4.0, 4.0], patch_size=[32, 32, 32], network=NETWORK,
        mirror_axes=[0, 1, 2],  # trained with flips along every axis
        detection={"min_voxels": 5},  # the threshold the card's metrics were measured with
        network_data_format={
            "inputs": {"image": {"type": "image", "modality": "PT", "num_channels": 1, "spatial_shape": [32, 32, 32],
                                 "dtype": "float32", "value_range": [0, 1], "units": "SUVbw / 20, clipped"}},
            "outputs": {"pred": {"type": "probabilities", "num_channels": 2, "dtype": "float32",
                                 "channel_def": {str(k): v for k, v in LABELS.items()},
                                 "postprocessing": "connected components of the lesion label (ai.detection)"}}},
    )


def lesion_mask(pet: Volume, lesions: list[dict]) -> Volume:
    """Label volume on ``pet``'s grid: 1 where a voxel centre lies within a truth lesion's radius."""
    k, j, i = np.indices(pet.array.shape)
    world = pet.index_to_world(np.stack([i.ravel(), j.ravel(), k.ravel()], axis=1)).reshape(*pet.array.shape, 3)
    mask = np.zeros(pet.array.shape, np.uint8)
    for lesion in lesions:
        mask[np.linalg.norm(world - np.asarray(lesion["center_pet_mm"]), axis=-1) <= lesion["radius_mm"]] = 1
    return pet.with_array(mask, modality="SEG", units="label")


def flips_and_gain(xp: np.ndarray, yp: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Random flips along each axis, an uptake gain (x0.8-1.25) and noise (sd 0.1 SUV) on a PET patch."""
    for axis in range(3):
        if rng.random() < 0.5:
            xp, yp = np.flip(xp, axis + 1), np.flip(yp, axis)
    return xp * rng.uniform(0.8, 1.25) + rng.normal(0, 0.005, xp.shape), np.ascontiguousarray(yp)


def train(out: Path, iterations: int, train_seeds: int, seed: int = 0) -> dict:
    from ai.formats.builtin import build_network
    from viewer.core.phantom import make_phantom

    start, cpu = time.monotonic(), time.process_time()
    rng = reproducible(seed)
    card = base_card()
    data = []
    for s in range(1, train_seeds + 1):
        ph = make_phantom(s)
        data.append(to_model_grid(card, [ph.pet], lesion_mask(ph.pet, ph.truth["lesions"])))
    data_seconds, data_cpu = round(time.monotonic() - start, 1), round(time.process_time() - cpu, 1)
    log.info("%d training phantoms in %.1f s", train_seeds, data_seconds)
    net = build_network(card.network)
    run = fit(net, data, tuple(card.patch_size[::-1]), rng, iterations=iterations,
              augment=flips_and_gain, foreground_fraction=0.5)
    save_model(net, card, out)  # evaluate needs the card
    return {**run, "data_seconds": data_seconds, "data_cpu_seconds": data_cpu}


def match(detections: list[dict], lesions: list[dict]) -> tuple[list[float], int]:
    """(centre errors mm of the truth lesions found, false positives): each lesion takes the nearest unused
    detection whose centre lies inside the lesion (distance <= its radius); detections left are false."""
    used: set[int] = set()
    errors = []
    for lesion in lesions:
        centre = np.asarray(lesion["center_pet_mm"])
        dist = [(float(np.linalg.norm(np.asarray(d["center_mm"]) - centre)), i) for i, d in enumerate(detections)
                if i not in used]
        hits = [(e, i) for e, i in dist if e <= lesion["radius_mm"]]
        if hits:
            e, i = min(hits)
            used.add(i)
            errors.append(e)
    return errors, len(detections) - len(used)


def evaluate(out: Path) -> list[dict]:
    """Sensitivity, false positives per scan and centre error through ai.detection on held-out phantoms
    and on the demo study."""
    from ai.detection import run_detection
    from ai.registry import load_model
    from viewer.core.phantom import make_phantom

    model = load_model(str(out))
    metrics = []
    for seeds, data in ((VALIDATION_SEEDS, f"held-out phantom seeds {VALIDATION_SEEDS[0]}-{VALIDATION_SEEDS[-1]}"),
                        ((DEMO_SEED,), "demo study PET (phantom seed 0: the 3 documented lesions; not trained on)")):
        errors, false, total = [], 0, 0
        for s in seeds:
            ph = make_phantom(s)
            e, f = match(run_detection(model, [ph.pet], device="cpu").detections, ph.truth["lesions"])
            errors += e
            false += f
            total += len(ph.truth["lesions"])
        data = f"{data}, {total} lesions, lesion found = a detection centre inside it"
        metrics += [
            {"name": "sensitivity", "value": round(len(errors) / total, 4), "data": data},
            {"name": "false_positives_per_scan", "value": round(false / len(seeds), 3), "data": data},
            {"name": "centre_error_mm_mean", "value": round(float(np.mean(errors)), 2) if errors else None,
             "data": data},
            {"name": "centre_error_mm_max", "value": round(float(np.max(errors)), 2) if errors else None,
             "data": data},
        ]
    return metrics


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default="resources/models/pet_lesion_unet")
    parser.add_argument("--iterations", type=int, default=500, help="Adam iterations of 4 patches")
    parser.add_argument("--train-seeds", type=int, default=30, help="train on phantom seeds 1..N")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    out = Path(args.out)
    card = base_card()
    start, cpu = time.monotonic(), time.process_time()
    run = train(out, args.iterations, args.train_seeds)
    card.metrics = evaluate(out)
    run["with_evaluation_seconds"] = round(time.monotonic() - start, 1)
    run["with_evaluation_cpu_seconds"] = round(time.process_time() - cpu, 1)
    return finish_card(
        card, out, run,
        training_data=(
            "generated only: PET (SUVbw, 4 mm) of the radview phantom (viewer.core.phantom) "
            f"seeds 1-{args.train_seeds}, each with its own 1-5 spherical lesions (liver, lungs, spleen, spine; "
            "radius 6-14 mm, SUV organ + 2.5 to 10); targets = spheres of the known lesions; "
            f"{run['iterations']} Adam iterations of 4 patches ({run['data_seconds'] + run['seconds']:.0f} s wall, "
            f"{run['data_cpu_seconds'] + run['cpu_seconds']:.0f} s CPU "
            "on 2 threads of a shared machine; python -m ai.training.train_lesions)"
        ),
        intended_use="Demonstration of the detection path (engine, detections list and boxes). Not for clinical use.",
        limitations=(
            "Trained on a synthetic phantom with one fixed anatomy and spherical lesions: it has not seen real PET "
            "(physiological uptake in brain, heart, bladder, bowel; irregular or confluent lesions; other scanners), "
            "so expect false positives and misses on patient data. Needs PET in SUVbw. Lesions under about 6 mm radius "
            "or under about SUV 2.5 above their organ were not in the training data."
        ),
        license="Apache-2.0 (weights and training code).",
        changelog={"0.1.0": "first built-in detection model",
                   "0.2.0": "retrained on phantom version 2 (visceral fat and back muscles: lower background SUV; "
                            "spleen against the body wall)"},
    )


if __name__ == "__main__":
    raise SystemExit(main())
