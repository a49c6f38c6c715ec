"""nnU-Net v2 folder inference: radview's loader + engine vs nnunetv2's own nnUNetPredictor, same folder and case.

Part of bench_inference.py (its "nnunet" entry, what `make bench` runs); runnable alone for more repeats or
another folder: `.venv/bin/python benchmarks/nnunet_comparison.py --repeats 3 [--model FOLDER]`.

The model is the small real nnU-Net folder the tests build with nnunetv2 (planning, preprocessing,
nnUNetTrainer; two folds, mirroring on), or any folder given with --model. Cases: the shared real abdominal
CT (3 mm, resampled by both to the model's 3.6 mm and back) and the same CT resampled to 1.5 mm (more
resampling and export work). Each run is a fresh subprocess (peak RSS of that process alone); radview and
nnU-Net alternate, best of --repeats. The peer is ``predict_single_npy_array`` (nnU-Net's in-process path for
one case, no export worker pool). Prints one JSON object: times, ratio peer / radview (>= 1.5 is the goal),
Dice per label between the two label maps, peak RSS of each.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SHARED = REPO.parent / "shared" / "data"
MARK = "BENCH_JSON "
#: radview in nnU-Net's float32 arithmetic, radview with the network under bfloat16 autocast, the peer
ENGINES = ("radview", "radview:bfloat16", "nnunet")


def _child(args) -> None:
    """One timed run in this process: load the model, segment the image, save the labels."""
    import torch

    torch.set_num_threads(args.threads)
    folds = [int(f) if f.isdigit() else f for f in args.folds.split(",")]
    t0 = time.perf_counter()
    if args.child == "radview":
        from ai.engine import run_segmentation
        from ai.formats.nnunet import load_nnunet_folder
        from viewer.core.io import load_volume

        model = load_nnunet_folder(args.model, folds=folds, precision=args.precision)
        t1 = time.perf_counter()
        labels = run_segmentation(model, [load_volume(args.image)], device="cpu").labels.array
    else:
        from nnunetv2.imageio.simpleitk_reader_writer import SimpleITKIO
        from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor

        predictor = nnUNetPredictor(device=torch.device("cpu"), allow_tqdm=False)
        predictor.initialize_from_trained_model_folder(args.model, folds)
        t1 = time.perf_counter()
        image, properties = SimpleITKIO().read_images([args.image])
        labels = predictor.predict_single_npy_array(image, properties)
    t2 = time.perf_counter()
    np.save(args.out, labels)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(MARK + json.dumps({"load_s": t1 - t0, "segment_s": t2 - t1, "peak_rss_mb": rss}))


def _run(which: str, model: Path, image: Path, folds: str, out: Path, threads: int) -> dict:
    impl, _, precision = which.partition(":")
    cmd = [sys.executable, __file__, "--child", impl, "--model", str(model), "--image", str(image),
           "--folds", folds, "--out", str(out), "--threads", str(threads), "--precision", precision or "float32"]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, check=True)
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith(MARK)][-1]
    return json.loads(line[len(MARK):])


def dice_per_label(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    out = {}
    for k in sorted((set(np.unique(a)) | set(np.unique(b))) - {0}):
        total = int((a == k).sum() + (b == k).sum())
        out[str(int(k))] = round(2.0 * int(((a == k) & (b == k)).sum()) / total, 6)
    return out


def _cases(tmp: Path) -> dict[str, Path]:
    import SimpleITK as sitk

    ct = SHARED / "ct_abdomen_3mm.nii.gz"
    image = sitk.ReadImage(str(ct))
    size = [int(round(n * 2)) for n in image.GetSize()]
    fine = sitk.Resample(image, size, sitk.Transform(), sitk.sitkBSpline, image.GetOrigin(), (1.5, 1.5, 1.5),
                         image.GetDirection(), -1024, image.GetPixelID())
    sitk.WriteImage(fine, str(tmp / "ct_1.5mm_0000.nii.gz"))
    return {"ct_3mm": ct, "ct_1.5mm": tmp / "ct_1.5mm_0000.nii.gz"}


def compare(model: Path | None = None, folds: str = "0,1", repeats: int = 2, threads: int = 2) -> dict:
    """Both engines on every case, alternating, best of ``repeats``: the report (times, ratios, Dice, RSS)."""
    if model is None:
        from tests.ai.nnunet_fixture import cached_build

        model = cached_build(REPO / ".pytest_cache" / "d" / "nnunet_v2_model", SHARED)
    report = {"benchmark": "nnunet", "model": str(model), "folds": folds, "threads": threads,
              "peer": "nnunetv2 nnUNetPredictor.predict_single_npy_array (tile_step 0.5, gaussian, mirroring "
                      "as the checkpoint allows), read with its SimpleITKIO",
              "engine": "radview load_nnunet_folder + ai.engine.run_segmentation on viewer.core.io.load_volume "
                        "(precision float32 = nnU-Net's arithmetic; radview:bfloat16 = network under bf16 autocast)",
              "cases": {}}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for name, image in _cases(tmp).items():
            runs = {w: [] for w in ENGINES}
            for r in range(repeats):
                for which in (ENGINES if r % 2 == 0 else ENGINES[::-1]):
                    runs[which].append(_run(which, model, image, folds, tmp / f"{which}.npy", threads))
            report["cases"][name] = _case_entry(runs, tmp)
    report["note"] = ("segment_s: image file -> label array (read, preprocess, sliding window, export); "
                      "load_s: model folder -> ready network; peak RSS is each whole process (torch included)")
    return report


def _case_entry(runs: dict, tmp: Path) -> dict:
    """One case's entry: the best runs of each engine, their ratio to nnU-Net and agreement with its labels."""
    best = {w: min(v, key=lambda d: d["segment_s"]) for w, v in runs.items()}
    theirs = np.load(tmp / "nnunet.npy")
    entry = {"shape_zyx": list(theirs.shape), "nnunet_segment_s": round(best["nnunet"]["segment_s"], 3),
             "nnunet_load_s": round(best["nnunet"]["load_s"], 3),
             "nnunet_peak_rss_mb": round(max(d["peak_rss_mb"] for d in runs["nnunet"]), 1)}
    for which in ENGINES[:-1]:
        ours = np.load(tmp / f"{which}.npy")
        entry[which] = {
            "segment_s": round(best[which]["segment_s"], 3),
            "ratio_nnunet_over_radview": round(best["nnunet"]["segment_s"] / best[which]["segment_s"], 3),
            "load_s": round(best[which]["load_s"], 3),
            "dice_per_label": dice_per_label(ours, theirs),
            "voxels_differing": int((ours != theirs).sum()),
            "peak_rss_mb": round(max(d["peak_rss_mb"] for d in runs[which]), 1)}
    entry["all_segment_s"] = {w: [round(d["segment_s"], 3) for d in v] for w, v in runs.items()}
    return entry


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="nnU-Net trained-model folder (default: the tests' fixture, built if needed)")
    parser.add_argument("--folds", default="0,1")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--child", choices=["radview", "nnunet"], help=argparse.SUPPRESS)
    parser.add_argument("--image", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--precision", default="float32", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args)
        return 0
    model = Path(args.model) if args.model else None
    print(json.dumps(compare(model, args.folds, args.repeats, args.threads), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
