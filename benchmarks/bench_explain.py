"""Cost of each explanation map against a plain run of the same model, timed as whole commands.

For every model that supports a method: `radview explain IMAGE --model M --method gradcam|attention|uncertainty`
against `radview segment IMAGE --model M` (a detector: `radview detect`) on the same image, each the best of
``--repeats`` runs (wall and child-process CPU seconds: CPU is the fairer number on a loaded machine). Ratio =
explain / plain run; the issue's bound is <= 2. Models: ``ct-abdomen-organs`` when installed, else
``abdomen_ct_unet`` (Grad-CAM, uncertainty), on the CT ``--image`` (../shared/data/ct_abdomen_3mm.nii.gz by
default); ``ct-abdomen-organs-attention`` when installed, else a tiny random-weight MONAI AttentionUnet folder made
here (all three); ``pet-lesion-detector`` when installed (Grad-CAM, uncertainty) on the demo PET (SUVbw NIfTI
written here). Prints JSON (and writes it with --out).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ai.registry import list_models  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"
RADVIEW = [sys.executable, "-m", "viewer"]


def timed_command(args: list[str], repeats: int) -> dict:
    """Best wall and CPU seconds (of the child process) of ``repeats`` runs of ``radview args``."""
    walls, cpus = [], []
    for _ in range(repeats):
        before = os.times()
        wall = time.perf_counter()
        subprocess.run([*RADVIEW, *args], check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
        walls.append(time.perf_counter() - wall)
        after = os.times()
        cpus.append(after.children_user + after.children_system - before.children_user - before.children_system)
    return {"wall_s": round(min(walls), 3), "cpu_s": round(min(cpus), 3)}


def models_to_time(work: Path, ct: str) -> list[tuple[str, str, list[str], str, str]]:
    """(name, id or folder, methods, image, plain command) of the models measured."""
    installed = {c.id for c in list_models()}
    organ = "ct-abdomen-organs" if "ct-abdomen-organs" in installed else "abdomen_ct_unet"
    out = [(organ, organ, ["gradcam", "uncertainty"], ct, "segment")]
    if "ct-abdomen-organs-attention" in installed:
        out.append(("ct-abdomen-organs-attention", "ct-abdomen-organs-attention", ["gradcam", "attention",
                                                                                   "uncertainty"], ct, "segment"))
    else:
        from tests.ai.test_explain import write_attention_model

        folder = write_attention_model(work / "tiny_attention")
        out.append(("tiny AttentionUnet (random weights, made by the benchmark)", str(folder),
                    ["gradcam", "attention", "uncertainty"], ct, "segment"))
    if "pet-lesion-detector" in installed:
        from viewer.core.io import save_volume
        from viewer.core.phantom import make_phantom

        pet = work / "demo_pet.nii.gz"
        save_volume(make_phantom(0).pet, pet)
        out.append(("pet-lesion-detector", "pet-lesion-detector", ["gradcam", "uncertainty"], str(pet), "detect"))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--image", default=str(SHARED / "ct_abdomen_3mm.nii.gz"))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", help="also write the JSON here")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for name, model, methods, image, command in models_to_time(work, args.image):
            out = work / ("found.json" if command == "detect" else "seg.nii.gz")
            plain = timed_command([command, image, "--model", model, "--device", "cpu", "--out", str(out)],
                                  args.repeats)
            row = {"model": name, "image": image, command: plain, "explain": {}}
            for method in methods:
                t = timed_command(["explain", image, "--model", model, "--method", method,
                                   "--out", str(work / f"{method}.nii.gz")], args.repeats)
                t["ratio_wall"] = round(t["wall_s"] / plain["wall_s"], 3)
                t["ratio_cpu"] = round(t["cpu_s"] / plain["cpu_s"], 3)
                row["explain"][method] = t
            results.append(row)
    report = {"image": args.image, "repeats": args.repeats,
              "bound": "explain / segment (or detect) <= 2 (whole commands)",
              "load_average": [round(v, 2) for v in os.getloadavg()], "models": results}
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
