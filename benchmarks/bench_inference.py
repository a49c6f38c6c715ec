"""Inference: radview's engine vs MONAI's SlidingWindowInferer, and radview's nnU-Net path vs nnUNetPredictor.

MONAI: the built-in abdominal CT model on the demo phantom CT. The peer is the plain MONAI recipe on the
already-resampled, normalised input (so the peer does strictly less work than the engine, which also
resamples in and out). nnU-Net: nnunet_comparison.py (a real nnunetv2-built folder on the shared real CT, each
run in its own process). Prints JSON with times, the ratios (peer / engine: >= 1 means the engine is as
fast; the nnU-Net goal is >= 1.5), agreement of the label maps (Dice per label for nnU-Net), and peak RSS.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ai.engine import OVERLAP, export, predict, preprocess, run_segmentation  # noqa: E402
from ai.registry import load_model  # noqa: E402
from viewer.core.phantom import make_phantom  # noqa: E402


def best(fn, n=3):
    out, times = None, []
    for _ in range(n):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return min(times), out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nnunet-repeats", type=int, default=2, help="best of N nnU-Net runs (0: skip them)")
    parser.add_argument("--bundle-parity", action="store_true",
                        help="also run bundle_parity.py: MONAI bundles vs MONAI's own run on the real CT (~5 min)")
    args = parser.parse_args()
    report = monai_comparison()
    if args.bundle_parity:
        from bundle_parity import compare as bundle_compare  # beside this file

        report["bundle_parity"] = bundle_compare()
    if args.nnunet_repeats > 0:
        from nnunet_comparison import compare  # beside this file

        report["nnunet"] = compare(repeats=args.nnunet_repeats)
    print(json.dumps(report, indent=2))
    return 0


def monai_comparison() -> dict:
    """The engine and MONAI's SlidingWindowInferer on the demo CT, best of 3 each, in this process."""
    import torch
    from monai.inferers import SlidingWindowInferer

    torch.set_num_threads(2)
    model = load_model("abdomen_ct_unet")
    ct = make_phantom().ct
    x, grid = preprocess(model, [ct])
    roi = tuple(model.card.patch_size[::-1])
    inferer = SlidingWindowInferer(roi_size=roi, sw_batch_size=2, overlap=OVERLAP, mode="gaussian")

    def peer():
        with torch.inference_mode():
            return torch.softmax(inferer(torch.from_numpy(x[None]), model.network.eval()), 1)[0].numpy()

    def engine_predict():
        return predict(model, x, device="cpu")

    run_segmentation(model, [ct], device="cpu")  # warm-up
    t_peer, p_peer = best(peer)
    t_pred, p_ours = best(engine_predict)
    t_full, result = best(lambda: run_segmentation(model, [ct], device="cpu"))
    peer_labels = export(p_peer, grid, ct)[0].array
    agree = float((peer_labels == result.labels.array).mean())
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    input_f32_mb = ct.array.size * 4 / 2**20
    return {
        "benchmark": "inference",
        "model": model.card.id,
        "input": {"size": list(ct.size), "spacing": list(ct.spacing), "model_grid": list(grid.size)},
        "peer": "MONAI SlidingWindowInferer (same network, roi, overlap, gaussian) on the preprocessed input",
        "peer_predict_s": round(t_peer, 3),
        "engine_predict_s": round(t_pred, 3),
        "ratio_predict_peer_over_engine": round(t_peer / t_pred, 3),
        "engine_end_to_end_s": round(t_full, 3),
        "max_probability_difference": float(np.abs(p_peer - p_ours).max()),
        "label_agreement_on_image_grid": round(agree, 6),
        "peak_rss_mb": round(peak_mb, 1),
        "input_float32_mb": round(input_f32_mb, 1),
        "note": "peak RSS is the whole process (python, torch, MONAI libraries included)",
    }


if __name__ == "__main__":
    sys.exit(main())
