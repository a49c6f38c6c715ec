"""A paired brain MR / CT for translation training (mr-to-ct-synth): the MNI152 T1 template shipped inside nilearn
and the CT brain atlas shipped inside the TotalSegmentator wheel, registered with radview's own registration.

Where the data comes from (docs/translation.md):

- MR: ``nilearn.datasets.load_mni152_template(resolution)`` (ICBM 2009a nonlinear symmetric T1, in the nilearn
  package: no download), values 0-1, written as MR.
- CT: ``totalsegmentator/resources/ct_brain_atlas_1mm.nii.gz`` of the ``totalsegmentator`` wheel (Apache-2.0),
  fetched at TRAINING time only by ``pip download --no-deps totalsegmentator==TOTALSEG_VERSION`` into a temporary
  folder and unpacked (the package is never installed or run), checked against ATLAS_SHA256 and cached. Values
  -30..385 HU inside the head; outside the head the atlas stores 0, not air.

``prepare_brain_pair(out_dir)`` registers the CT atlas to the T1 (Mattes mutual information: centres of mass,
rigid from several head pitches, then affine), writes both on the T1 grid with the transform, a report
(brain-outline Dice and mutual information before and after, pair_scores) and a checkerboard PNG to look at.
``python -m ai.training.brain_mr_ct OUT_DIR`` does the same.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from viewer.core.errors import InputError
from viewer.core.progress import ProgressCallback, no_progress
from viewer.core.volume import Volume

log = logging.getLogger(__name__)

TOTALSEG_VERSION = "2.18.0"
ATLAS_MEMBER = "totalsegmentator/resources/ct_brain_atlas_1mm.nii.gz"
ATLAS_SHA256 = "e6964149f62ae88b9973cec43ed80974368a24c922ff8b62d946e7c855eae265"
#: Files prepare_brain_pair writes into its output folder.
OUTPUTS = {"mr": "mni152_t1.nii.gz", "ct": "ct_atlas_on_t1.nii.gz", "transform": "t1_to_ct_atlas.tfm",
           "report": "registration_report.json", "check": "registration_check.png"}
#: Head pitches (degrees about the left-right axis) the rigid registration starts from (register_atlas).
PITCH_STARTS_DEG = (-24.0, -12.0, 0.0, 12.0, 24.0)
#: T1 template value (0-1) above which a voxel is brain (the template is skull-stripped).
BRAIN_T1 = 0.05
#: Checkerboard tile side (pixels) of the check PNG.
TILE = 12
#: Pixels per voxel of the check PNG.
ZOOM = 3


def default_cache() -> Path:
    """Where the unpacked atlas is kept between runs: ``$RADVIEW_HOME/data`` or the user data folder."""
    from ai.registry import user_models_dir

    return user_models_dir().parent / "data"


def mni_t1(resolution: int = 2) -> Volume:
    """The MNI152 T1 template at ``resolution`` mm (1 or 2) as an MR Volume (LPS; values 0-1 as nilearn gives)."""
    try:
        from nilearn.datasets import load_mni152_template
    except ImportError as err:
        raise InputError("the MNI152 template comes with nilearn: pip install nilearn (radview's [dev] extra)") from err
    from viewer.core.io import load_volume

    if resolution not in (1, 2):
        raise ValueError(f"resolution must be 1 or 2 mm, got {resolution}")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "mni152_t1.nii.gz"
        load_mni152_template(resolution=resolution).to_filename(path)
        vol = load_volume(path)
    vol.array = vol.array.astype(np.float32, copy=False)
    vol.modality, vol.units, vol.description = "MR", "arbitrary", f"MNI152 T1 template {resolution} mm (nilearn)"
    vol.meta = {"source": f"nilearn.datasets.load_mni152_template(resolution={resolution})"}
    return vol


def fetch_ct_atlas(cache_dir: str | Path | None = None) -> Path:
    """The CT brain atlas file, unpacked from the TotalSegmentator wheel into ``cache_dir`` (default_cache) on first
    use: ``pip download --no-deps`` of the pinned wheel into a temporary folder (never installed, never run), the
    one member extracted and its SHA-256 checked. InputError naming the step when that fails (e.g. no network)."""
    cache = Path(cache_dir) if cache_dir else default_cache()
    target = cache / f"totalsegmentator-{TOTALSEG_VERSION}-ct_brain_atlas_1mm.nii.gz"
    if target.is_file() and _sha256(target) == ATLAS_SHA256:
        return target
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:", "--dest", tmp,
                   f"totalsegmentator=={TOTALSEG_VERSION}"]
        done = subprocess.run(command, capture_output=True, text=True)
        wheels = list(Path(tmp).glob("totalsegmentator-*.whl"))
        if done.returncode != 0 or not wheels:
            last = (done.stderr.strip().splitlines() or ["no wheel downloaded"])[-1]
            raise InputError(f"could not download the totalsegmentator {TOTALSEG_VERSION} wheel ({last})")
        with zipfile.ZipFile(wheels[0]) as wheel, wheel.open(ATLAS_MEMBER) as src, open(target, "wb") as dst:
            shutil.copyfileobj(src, dst)
    if _sha256(target) != ATLAS_SHA256:
        target.unlink()
        raise InputError(f"{ATLAS_MEMBER} of totalsegmentator {TOTALSEG_VERSION} has an unexpected SHA-256", wheels[0])
    return target


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def ct_atlas(path: str | Path) -> Volume:
    """The CT brain atlas file as a CT Volume in HU (int16, as stored)."""
    from viewer.core.io import load_volume

    vol = load_volume(path)
    vol.modality, vol.units = "CT", "HU"
    vol.description = f"CT brain atlas (totalsegmentator {TOTALSEG_VERSION} wheel)"
    vol.warnings = []  # the 'looks like HU' guess does not apply: the file is known
    return vol


def mutual_information(a: np.ndarray, b: np.ndarray, bins: int = 32) -> float:
    """Mutual information (nats) of two same-shape intensity arrays from their joint histogram."""
    joint, _, _ = np.histogram2d(a.ravel(), b.ravel(), bins=bins)
    p = joint / joint.sum()
    pa, pb = p.sum(axis=1, keepdims=True), p.sum(axis=0, keepdims=True)
    nz = p > 0
    return float((p[nz] * np.log(p[nz] / (pa @ pb)[nz])).sum())


def centre_of_mass(vol: Volume) -> np.ndarray:
    """World LPS mm of the intensity centre of mass (values below 0 count as 0)."""
    weights = np.clip(vol.array.astype(np.float32), 0, None)
    index = [float((weights.sum(axis=tuple(a for a in range(3) if a != axis)) * np.arange(n)).sum() / weights.sum())
             for axis, n in enumerate(vol.array.shape)]  # (z, y, x)
    return vol.index_to_world(index[::-1])


def centres_aligned(moving: Volume, fixed: Volume, pitch_deg: float = 0.0):
    """The rigid transform (fixed -> moving) putting the centres of mass together, turned by ``pitch_deg`` about
    the left-right axis through the fixed centre: a registration start; with 0, the 'before' of the report."""
    from viewer.core.registration import Transform

    a = np.radians(pitch_deg)
    rotation = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    matrix = np.eye(4)
    matrix[:3, :3] = rotation
    matrix[:3, 3] = centre_of_mass(moving) - rotation @ centre_of_mass(fixed)
    return Transform.from_matrix(matrix)


def register_atlas(mr: Volume, ct: Volume, method: str = "affine", progress: ProgressCallback | None = None):
    """(RegistrationResult, pitch start in degrees): a rigid registration from each PITCH_STARTS_DEG start (head
    pitch differs most between a scanner's frame and MNI's; radview's rigid registration captures about +-10
    degrees), the best Mattes MI kept, then refined by ``method`` ('affine', 'bspline'; 'rigid': none)."""
    from viewer.core.registration import register

    progress = progress or no_progress
    runs = []
    for n, pitch in enumerate(PITCH_STARTS_DEG):
        progress(0.6 * n / len(PITCH_STARTS_DEG), f"rigid registration from a {pitch:+g} degree pitch")
        runs.append((register(mr, ct, method="rigid", initial=centres_aligned(ct, mr, pitch)), pitch))
    best, pitch = min(runs, key=lambda run: run[0].metric)
    if method != "rigid":
        best = register(mr, ct, method=method, initial=best.transform,
                        progress=lambda f, m: progress(0.6 + 0.4 * f, m))
    return best, pitch


def ct_on_t1(transform, ct: Volume, mr: Volume) -> Volume:
    """The CT atlas resampled on the T1 grid through ``transform`` (T1 -> CT), 0 outside its field of view as
    outside its brain (the atlas's own background value)."""
    return transform.resample(ct, mr, default=0.0)


def pair_scores(mr: Volume, ct_on_mr: Volume) -> dict:
    """How well the CT on the T1 grid matches the T1: Dice of the two brain outlines (T1 > BRAIN_T1, CT != 0: both
    are skull-stripped), mutual information (nats, 32 bins) inside both outlines (internal structure: ventricles,
    grey / white matter) and over the whole grid (outlines included, what the registration optimises)."""
    a, b = mr.array > BRAIN_T1, ct_on_mr.array != 0  # brain in the atlas: any value but its background 0
    both = a & b
    ct_values = ct_on_mr.array.astype(np.float32)
    return {"brain_dice": round(float(2 * both.sum() / max(a.sum() + b.sum(), 1)), 4),
            "mi_inside_brain": round(mutual_information(mr.array[both], ct_values[both]), 4),
            "mi_whole_grid": round(mutual_information(mr.array, ct_values), 4)}


def check_image(mr: Volume, before: Volume, after: Volume) -> np.ndarray:
    """(rows, cols, 3) uint8: T1 / CT checkerboards of the central axial, coronal and sagittal slices, before
    registration (top row: centres of mass aligned) and after (bottom row). CT in a brain window (0-80 HU)."""

    def grey(a, lo, hi):
        return np.clip((a.astype(np.float32) - lo) / (hi - lo), 0, 1)

    z, y, x = (s // 2 for s in mr.array.shape)
    rows = []
    for ct in (before, after):
        panels = []
        for cut in (np.s_[z, ::-1, ::-1], np.s_[::-1, y, ::-1], np.s_[::-1, :, x]):  # radiological views
            t1, c = grey(mr.array[cut], 0, float(np.percentile(mr.array, 99.5))), grey(ct.array[cut], 0, 80)
            jj, ii = np.indices(t1.shape)
            panels.append(np.where((jj // TILE + ii // TILE) % 2 == 0, t1, c))
        height = max(p.shape[0] for p in panels)
        panels = [np.pad(p, ((0, height - p.shape[0]), (0, 4))) for p in panels]
        rows.append(np.concatenate(panels, axis=1))
    image = np.concatenate([rows[0], np.zeros((4, rows[0].shape[1])), rows[1]], axis=0)
    image = np.kron(image, np.ones((ZOOM, ZOOM)))  # big enough to judge by eye
    return np.repeat((image * 255).astype(np.uint8)[..., None], 3, axis=2)


def write_png(rgb: np.ndarray, path: Path) -> Path:
    """Write an (rows, cols, 3) uint8 image as PNG (SimpleITK)."""
    import SimpleITK as sitk

    sitk.WriteImage(sitk.GetImageFromArray(rgb, isVector=True), str(path))
    return path


def prepare_brain_pair(out_dir: str | Path, *, resolution: int = 2, cache_dir: str | Path | None = None,
                       atlas: str | Path | None = None, method: str = "affine",
                       progress: ProgressCallback | None = None) -> dict:
    """Register the CT brain atlas to the MNI152 T1 and write the pair on the T1 grid (OUTPUTS in ``out_dir``).

    ``atlas``: the atlas file (default: fetch_ct_atlas(cache_dir)). Returns the report also written as JSON:
    the files, sources, registration (method, Mattes MI, iterations, seconds) and its quality (pair_scores) with
    only the centres of mass aligned and after registration.
    """
    from viewer.core.io import save_volume

    progress = progress or no_progress
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    progress(0.0, "loading the MNI152 T1 and the CT brain atlas")
    mr = mni_t1(resolution)
    ct = ct_atlas(atlas or fetch_ct_atlas(cache_dir))
    result, pitch = register_atlas(mr, ct, method, lambda f, m: progress(0.05 + 0.85 * f, m))
    before, after = (ct_on_t1(t, ct, mr) for t in (centres_aligned(ct, mr), result.transform))
    progress(0.92, "writing the pair")
    paths = {k: out / v for k, v in OUTPUTS.items()}
    save_volume(mr, paths["mr"])
    save_volume(after, paths["ct"])
    result.transform.save(paths["transform"])
    write_png(check_image(mr, before, after), paths["check"])
    report = {
        "files": {k: str(p) for k, p in paths.items()},
        "sources": {"mr": mr.meta["source"], "ct": f"{ATLAS_MEMBER} of the totalsegmentator {TOTALSEG_VERSION} "
                                                      f"wheel (sha256 {ATLAS_SHA256})"},
        "registration": {"method": method, "start": f"centres of mass, pitch {pitch:+g} deg (best of "
                                                    f"{', '.join(f'{p:+g}' for p in PITCH_STARTS_DEG)})",
                         "mattes_mi": result.metric,
                         "iterations": result.iterations, "seconds": round(result.seconds, 2)},
        "quality": {"centres_aligned": pair_scores(mr, before), "registered": pair_scores(mr, after)},
        "grid": {"size": list(mr.size), "spacing_mm": list(mr.spacing)},
    }
    paths["report"].write_text(json.dumps(report, indent=1))
    progress(1.0, "done")
    return report


def main(argv: list[str] | None = None) -> int:
    """``python -m ai.training.brain_mr_ct OUT_DIR [--resolution 1|2] [--atlas FILE] [--cache DIR]``."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m ai.training.brain_mr_ct", description=__doc__.splitlines()[0])
    parser.add_argument("out_dir")
    parser.add_argument("--resolution", type=int, choices=[1, 2], default=2)
    parser.add_argument("--atlas", help="the CT atlas file (default: unpacked from the totalsegmentator wheel)")
    parser.add_argument("--cache", help="folder keeping the unpacked atlas")
    parser.add_argument("--method", choices=["rigid", "affine", "bspline"], default="affine")
    args = parser.parse_args(argv)
    report = prepare_brain_pair(args.out_dir, resolution=args.resolution, cache_dir=args.cache, atlas=args.atlas,
                                method=args.method)
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
