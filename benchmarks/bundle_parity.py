"""MONAI bundle parity on the shared real CT: `radview segment`'s pipeline vs MONAI's own run of the bundle.

For each inferer setting (mode x overlap x roi) and stored orientation of the CT (RAS as shipped, and the
same image stored LPS), a model-zoo style bundle (LoadImaged, EnsureChannelFirstd, Orientationd, Spacingd,
ScaleIntensityRanged, CropForegroundd, EnsureTyped; Activationsd, Invertd, AsDiscreted, SaveImaged) around a
small random-but-lopsided MONAI UNet is run by MONAI as its evaluator runs it (tests.ai.bundles.monai_run,
from the file) and by radview (run_segmentation on the loaded Volume, what `radview segment` calls). Prints
JSON: Dice per label, times and the ratio MONAI / radview (>= 1: radview as fast). Run alone
(`python benchmarks/bundle_parity.py`) or from bench_inference.py --bundle-parity.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

CT = Path(__file__).resolve().parents[2] / "shared" / "data" / "ct_abdomen_3mm.nii.gz"
NETWORK_DEF = {"_target_": "UNet", "spatial_dims": 3, "in_channels": 1, "out_channels": 3, "channels": [8, 16],
               "strides": [2], "num_res_units": 1}
PREPROCESSING = [
    {"_target_": "LoadImaged", "keys": "image"},
    {"_target_": "EnsureChannelFirstd", "keys": "image"},
    {"_target_": "Orientationd", "keys": "image", "axcodes": "RAS"},
    {"_target_": "Spacingd", "keys": "image", "pixdim": [2.0, 2.0, 3.0], "mode": "bilinear"},
    {"_target_": "ScaleIntensityRanged", "keys": "image", "a_min": -175, "a_max": 250, "b_min": 0.0,
     "b_max": 1.0, "clip": True},
    {"_target_": "CropForegroundd", "keys": "image", "source_key": "image", "allow_smaller": True},
    {"_target_": "EnsureTyped", "keys": "image"}]


def _images(tmp: Path) -> dict[str, Path]:
    """The shared CT as shipped (stored RAS) and the same image stored LPS (x and y flipped, same world)."""
    import SimpleITK as sitk

    lps = tmp / "ct_lps.nii.gz"
    sitk.WriteImage(sitk.Flip(sitk.ReadImage(str(CT)), [True, True, False]), str(lps))
    return {"RAS": CT, "LPS": lps}


def best(fn, repeats: int):
    """(shortest wall time of ``repeats`` calls, the last result)."""
    out, times = None, []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def compare(modes=("constant", "gaussian"), overlaps=(0.0, 0.25, 0.5), rois=((64, 64, 32), (48, 40, 24)),
            repeats: int = 2) -> dict:
    """Dice per label and times (best of ``repeats``) for every setting, MONAI and radview, in this process.
    Each side starts from the bundle folder and the image file: MONAI builds the bundle's objects, loads the
    weights and reads the file with LoadImaged; radview loads the model and the Volume, then segments."""
    import numpy as np
    import torch

    from ai.engine import run_segmentation
    from ai.registry import load_model
    from tests.ai.bundles import POSTPROCESSING, lopsided_unet, monai_run, write_bundle
    from viewer.core.io import load_volume

    torch.set_num_threads(2)
    net = lopsided_unet(NETWORK_DEF, bias=(-0.3, 0.1, 0.0))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        images = _images(tmp)
        for n, (mode, overlap, roi, orientation) in enumerate(
                (m, o, r, s) for m in modes for o in overlaps for r in rois for s in images):
            inferer = {"_target_": "SlidingWindowInferer", "roi_size": list(roi), "sw_batch_size": 4,
                       "overlap": overlap, "mode": mode}
            bundle = write_bundle(tmp / f"bundle{n}", net, NETWORK_DEF, transforms=PREPROCESSING, roi_size=roi,
                                  labels=["background", "a", "b"], name=f"parity {n}", inferer=inferer,
                                  postprocessing=POSTPROCESSING)
            t_monai, reference = best(lambda b=bundle, o=orientation: monai_run(b, images[o])[0], repeats)
            t_ours, ours = best(lambda b=bundle, o=orientation: run_segmentation(
                load_model(str(b)), [load_volume(images[o])], device="cpu").labels.array, repeats)
            dice = {}
            for k in (0, 1, 2):
                a, b = ours == k, reference == k
                dice[k] = round(float(2 * (a & b).sum() / (a.sum() + b.sum())), 5) if (a | b).any() else 1.0
            rows.append({"mode": mode, "overlap": overlap, "roi": list(roi), "stored": orientation,
                         "dice": dice, "label_fractions": [round(float((reference == k).mean()), 3) for k in (1, 2)],
                         "monai_s": round(t_monai, 3), "radview_s": round(t_ours, 3),
                         "ratio_monai_over_radview": round(t_monai / t_ours, 3)})
    return {"benchmark": "bundle_parity", "image": CT.name, "network": "random lopsided MONAI UNet [8, 16]",
            "peer": "MONAI's own run of the bundle (evaluator steps, LoadImaged from the file)",
            "min_dice": min(min(r["dice"].values()) for r in rows),
            "median_ratio_monai_over_radview": float(np.median([r["ratio_monai_over_radview"] for r in rows])),
            "settings": rows,
            "note": "each side's time starts from the bundle folder and the image file (see compare)"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2, help="best of N runs per side and setting")
    print(json.dumps(compare(repeats=parser.parse_args().repeats), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
