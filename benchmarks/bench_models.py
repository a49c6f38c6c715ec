"""CPU inference time of every shipped model, whole runs through the engine, against the old demo organ model.

Models: ct-abdomen-organs, ct-abdomen-organs-attention, pet-lesion-detector (each when installed). Inputs: the
shared real CT series (../shared/data/ct_abdomen_dicom, 512 x 512 x 20) and a 512 x 512 x 100 CT (the demo
phantom resampled to 0.75 mm in-plane, 384 x 384 x 300 mm); the detector runs on the demo PET (and CT).
Each time is the best of ``--repeats`` runs of ai.engine.run_segmentation / ai.detection.run_detection after
one warm-up, with wall and process CPU seconds (CPU time is the fairer number on a loaded machine). The peer is
``abdomen_ct_unet`` (the organ model these replace) on the same CT inputs: ratio = peer / model (>= 1: as fast).
Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from ai.registry import list_models, load_model  # noqa: E402
from viewer.core.volume import Volume  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
ORGAN_MODELS = ("ct-abdomen-organs", "ct-abdomen-organs-attention")
DETECTOR = "pet-lesion-detector"
PEER = "abdomen_ct_unet"


def timed(fn, repeats: int) -> dict:
    """Best wall and CPU seconds of ``repeats`` calls of ``fn`` after one warm-up call."""
    fn()
    walls, cpus = [], []
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return {"wall_s": round(min(walls), 3), "cpu_s": round(min(cpus), 3)}


def ct_inputs() -> dict[str, Volume]:
    """The CT inputs by name: the shared real series and a 512 x 512 x 100 CT."""
    from viewer.core.io import load_volume
    from viewer.core.phantom import make_phantom
    from viewer.core.resample import resample_to

    demo = make_phantom(0).ct  # 256 x 256 x 100 at 1.5 x 1.5 x 3 mm -> 512 x 512 x 100 at 0.75 mm, same extent
    spacing = (demo.spacing[0] / 2, demo.spacing[1] / 2, demo.spacing[2])
    origin = demo.index_to_world([-0.25, -0.25, 0])  # voxel edges on the demo's edges
    grid = Volume(np.zeros((demo.size[2], 512, 512), np.int16), spacing, tuple(origin), demo.direction)
    big = resample_to(demo, grid)
    return {"shared ct_abdomen_dicom (512x512x20)": load_volume(SHARED / "ct_abdomen_dicom"),
            "demo phantom CT resampled to 512x512x100": big}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2, help="timed runs per model and input (best kept)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    args = parser.parse_args()
    import torch

    from ai.detection import run_detection
    from ai.engine import run_segmentation

    torch.set_num_threads(args.threads)
    installed = {card.id for card in list_models()}
    report = {"benchmark": "models", "threads": args.threads, "peer": PEER, "device": "cpu", "models": {}}
    inputs = ct_inputs()
    peer = load_model(PEER) if PEER in installed else None
    for model_id in [m for m in ORGAN_MODELS if m in installed]:
        model = load_model(model_id)
        rows = {}
        for name, ct in inputs.items():
            row = timed(lambda m=model, v=ct: run_segmentation(m, [v], device="cpu"), args.repeats)
            if peer is not None:
                row["peer"] = timed(lambda v=ct: run_segmentation(peer, [v], device="cpu"), args.repeats)
                row["ratio_wall_peer_over_model"] = round(row["peer"]["wall_s"] / row["wall_s"], 3)
                row["ratio_cpu_peer_over_model"] = round(row["peer"]["cpu_s"] / row["cpu_s"], 3)
            rows[name] = row
        report["models"][model_id] = rows
    if DETECTOR in installed:
        from viewer.core.phantom import make_phantom

        model = load_model(DETECTOR)
        demo = make_phantom(0)
        by_modality = {"PT": demo.pet, "CT": demo.ct}
        volumes = [by_modality[spec.get("modality", "PT")] for spec in model.card.inputs]
        report["models"][DETECTOR] = {"demo PET (96x76x76, 4 mm)" + (" + CT" if len(volumes) > 1 else ""): timed(
            lambda: run_detection(model, volumes, device="cpu"), args.repeats)}
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
