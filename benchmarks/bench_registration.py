"""Co-registration: the whole `radview register` command vs the elastix command line, same pairs, one run.

Pairs (fixed <- moving), each with a known fixed -> moving truth:
- phantom CT <- PET: the demo study's PET has a known rotation + translation (phantom.PET_TO_CT), 4 mm voxels;
- phantom MR <- CT: the coronal MR on its own grid, same world frame (truth: identity);
- real CT <- synthetic PET: ../shared/data/ct_abdomen_3mm.nii.gz and a PET-like image made from its organ labels
  (viewer.core.registration.synthetic), 4 mm, blurred, noisy, moved by a known rigid transform.

Both tools read the same .nii.gz files and write the moving image resampled on the fixed grid and the transform.
elastix runs with a parameter file equal to itk-elastix's GetDefaultParameterMap('rigid'). Times are whole
commands (process start to files written), median of REPEATS interleaved runs, wall clock and CPU (user +
system: steadier than wall clock on a shared machine). TRE: distance between the found
and the true fixed -> moving mapping at the lesion centres and at points every 20 mm inside the body. For the
real CT, the PET resampled by radview is compared with the PET resampled through the truth (correlation inside
the body, lesion SUVmax). Prints JSON; ratio = radview time / elastix time (goal <= 0.5).
"""

from __future__ import annotations

import json
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from viewer.core.io import load_volume, save_volume  # noqa: E402
from viewer.core.phantom import make_phantom  # noqa: E402
from viewer.core.registration import Transform  # noqa: E402
from viewer.core.registration.synthetic import phantom_pet_truth, synthetic_pet  # noqa: E402
from viewer.core.volume import Volume  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
RADVIEW = Path(sys.executable).with_name("radview")
REPEATS = 3

#: itk-elastix 0.25 GetDefaultParameterMap('rigid'), verbatim.
ELASTIX_RIGID = """\
(AutomaticParameterEstimation "true")
(AutomaticScalesEstimation "true")
(CheckNumberOfSamples "true")
(DefaultPixelValue 0)
(FinalBSplineInterpolationOrder 3)
(FixedImagePyramid "FixedSmoothingImagePyramid")
(ImageSampler "RandomCoordinate")
(Interpolator "LinearInterpolator")
(MaximumNumberOfIterations 256)
(MaximumNumberOfSamplingAttempts 8)
(Metric "AdvancedMattesMutualInformation")
(MovingImagePyramid "MovingSmoothingImagePyramid")
(NewSamplesEveryIteration "true")
(NumberOfResolutions 4)
(NumberOfSamplesForExactGradient 4096)
(NumberOfSpatialSamples 2048)
(Optimizer "AdaptiveStochasticGradientDescent")
(Registration "MultiResolutionRegistration")
(ResampleInterpolator "FinalBSplineInterpolator")
(Resampler "DefaultResampler")
(ResultImageFormat "nii")
(Transform "EulerTransform")
(WriteIterationInfo "false")
(WriteResultImage "true")
"""


def body_points(fixed: Volume, threshold: float, step_mm: float = 20.0) -> np.ndarray:
    """World points every ``step_mm`` where ``fixed`` is above ``threshold`` (inside the body)."""
    steps = np.maximum(np.round(step_mm / np.asarray(fixed.spacing)).astype(int), 1)
    sub = fixed.array[::steps[2], ::steps[1], ::steps[0]]
    k, j, i = np.nonzero(sub > threshold)
    return fixed.index_to_world(np.stack([i * steps[0], j * steps[1], k * steps[2]], axis=1))


def tre(found: Transform, truth: Transform, points: np.ndarray) -> np.ndarray:
    """Target registration error (mm) at each point."""
    return np.linalg.norm(found.fixed_to_moving(points) - truth.fixed_to_moving(points), axis=1)


def elastix_transform(path: Path) -> Transform:
    """An elastix EulerTransform parameter file as a Transform (elastix maps fixed -> moving too)."""
    import SimpleITK as sitk

    text = path.read_text()
    params = [float(v) for v in re.search(r"\(TransformParameters ([^)]*)\)", text).group(1).split()]
    centre = [float(v) for v in re.search(r"\(CenterOfRotationPoint ([^)]*)\)", text).group(1).split()]
    if "ComputeZYX" in text and re.search(r'\(ComputeZYX "true"\)', text):
        raise SystemExit("elastix used ComputeZYX; not handled")
    return Transform(sitk.Euler3DTransform(centre, *params[:3], params[3:6]), "elastix")


def timed(cmd: list[str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds user + system) of one whole command."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    seconds = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"{cmd[0]} failed ({proc.returncode}): {proc.stderr[-2000:] or proc.stdout[-2000:]}")
    return seconds, after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime


def run_pair(work: Path, name: str, fixed: Path, moving: Path) -> dict:
    """Interleaved runs of both commands; returns median times and the paths of their last outputs."""
    params = work / "elastix_rigid.txt"
    params.write_text(ELASTIX_RIGID)
    rv_out, el_out = work / f"{name}_radview", work / f"{name}_elastix"
    rv_out.mkdir(exist_ok=True)
    rv_times, el_times = [], []
    for _ in range(REPEATS):
        shutil.rmtree(el_out, ignore_errors=True)
        el_out.mkdir()
        el_times.append(timed(["elastix", "-f", str(fixed), "-m", str(moving), "-p", str(params),
                               "-out", str(el_out)]))
        rv_times.append(timed([str(RADVIEW), "register", str(fixed), str(moving), "--out",
                               str(rv_out / "moving_on_fixed.nii.gz"), "--transform", str(rv_out / "t.tfm")]))
    return {
        "radview_s": statistics.median(t for t, _ in rv_times), "elastix_s": statistics.median(t for t, _ in el_times),
        "radview_cpu_s": statistics.median(c for _, c in rv_times),
        "elastix_cpu_s": statistics.median(c for _, c in el_times),
        "radview_times": [round(t, 3) for t, _ in rv_times], "elastix_times": [round(t, 3) for t, _ in el_times],
        "radview_tfm": rv_out / "t.tfm", "elastix_tfm": el_out / "TransformParameters.0.txt",
        "radview_image": rv_out / "moving_on_fixed.nii.gz",
    }


def compare(name: str, runs: dict, truth: Transform, points: np.ndarray, lesions: np.ndarray) -> dict:
    rv, el = Transform.load(runs["radview_tfm"]), elastix_transform(runs["elastix_tfm"])
    e_rv, e_el = tre(rv, truth, points), tre(el, truth, points)
    l_rv, l_el = tre(rv, truth, lesions), tre(el, truth, lesions)
    ratio = runs["radview_s"] / runs["elastix_s"]
    return {
        "pair": name, "points": len(points),
        "radview_s": round(runs["radview_s"], 3), "elastix_s": round(runs["elastix_s"], 3),
        "ratio_radview_over_elastix": round(ratio, 3),
        "radview_cpu_s": round(runs["radview_cpu_s"], 3), "elastix_cpu_s": round(runs["elastix_cpu_s"], 3),
        "cpu_ratio_radview_over_elastix": round(runs["radview_cpu_s"] / runs["elastix_cpu_s"], 3),
        "radview_times": runs["radview_times"], "elastix_times": runs["elastix_times"],
        "radview_tre_mean_mm": round(float(e_rv.mean()), 3), "radview_tre_max_mm": round(float(e_rv.max()), 3),
        "elastix_tre_mean_mm": round(float(e_el.mean()), 3), "elastix_tre_max_mm": round(float(e_el.max()), 3),
        "radview_lesion_tre_mm": [round(float(v), 3) for v in l_rv],
        "elastix_lesion_tre_mm": [round(float(v), 3) for v in l_el],
        "goal_time_ratio_le_0.5": bool(ratio <= 0.5),
        "goal_tre_le_2mm": bool(e_rv.max() <= 2.0),
        "goal_tre_le_elastix_plus_0.25": bool(e_rv.mean() <= e_el.mean() + 0.25),
    }


def lesion_mask(grid: Volume, centre, radius: float) -> np.ndarray:
    idx = np.stack(np.indices(grid.array.shape)[::-1], axis=-1).reshape(-1, 3)
    return (np.linalg.norm(grid.index_to_world(idx) - np.asarray(centre), axis=1) <= radius).reshape(
        grid.array.shape)


def phantom_pairs(work: Path) -> list[dict]:
    ph = make_phantom()
    for vol, name in ((ph.ct, "ct"), (ph.pet, "pet"), (ph.mr, "mr")):
        save_volume(vol, work / f"phantom_{name}.nii.gz")
    lesions = np.array([les["center_mm"] for les in ph.truth["lesions"]])
    out = []
    runs = run_pair(work, "phantom_ct_pet", work / "phantom_ct.nii.gz", work / "phantom_pet.nii.gz")
    out.append(compare("phantom CT <- PET", runs, phantom_pet_truth(ph.truth), body_points(ph.ct, -500), lesions))
    runs = run_pair(work, "phantom_mr_ct", work / "phantom_mr.nii.gz", work / "phantom_ct.nii.gz")
    out.append(compare("phantom MR <- CT", runs, Transform.identity(), body_points(ph.mr, 100), lesions))
    return out


def real_ct_pair(work: Path) -> dict:
    ct = load_volume(SHARED / "ct_abdomen_3mm.nii.gz")
    labels = load_volume(SHARED / "ct_abdomen_3mm_labels.nii.gz")
    names = {int(k): v for k, v in json.loads((SHARED / "totalsegmentator_total_labels.json").read_text()).items()}
    syn = synthetic_pet(ct, labels, names)
    save_volume(ct, work / "real_ct.nii.gz")
    save_volume(syn.pet, work / "real_synthetic_pet.nii.gz")
    lesions = np.array([les["centre_mm"] for les in syn.lesions])
    runs = run_pair(work, "real_ct_pet", work / "real_ct.nii.gz", work / "real_synthetic_pet.nii.gz")
    row = compare("real CT <- synthetic PET", runs, syn.truth, body_points(ct, -500, 9.0), lesions)
    on_ct = load_volume(runs["radview_image"])
    truth_on_ct = syn.truth.resample(syn.pet, ct)
    body = ct.array > -500
    row["radview_correlation_in_body"] = round(float(np.corrcoef(on_ct.array[body], truth_on_ct.array[body])[0, 1]),
                                               4)
    suv = []
    for les in syn.lesions:
        m = lesion_mask(ct, les["centre_mm"], les["radius_mm"] + 3)
        suv.append(round(float(on_ct.array[m].max() / truth_on_ct.array[m].max()), 4))
    row["radview_lesion_suvmax_ratio"] = suv
    row["goal_correlation_ge_0.95"] = bool(row["radview_correlation_in_body"] >= 0.95)
    row["goal_lesion_suv_within_15pct"] = bool(all(abs(s - 1) <= 0.15 for s in suv))
    return row


def main() -> int:
    if shutil.which("elastix") is None:
        raise SystemExit("elastix not on PATH: apt-get install elastix (make system-deps)")
    version = subprocess.run(["elastix", "--version"], capture_output=True, text=True).stdout.strip()
    with tempfile.TemporaryDirectory(prefix="bench_registration_") as tmp:
        work = Path(tmp)
        rows = phantom_pairs(work) + [real_ct_pair(work)]
    print(json.dumps({"benchmark": "registration", "peer": f"elastix CLI ({version}), default rigid map",
                      "repeats": REPEATS, "results": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
