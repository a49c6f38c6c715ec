"""Builds a small REAL nnU-Net v2 trained-model folder with nnunetv2's own planning, preprocessing and trainer.

Four training cases are crops of the shared real abdominal CT (``ct_abdomen_3mm.nii.gz``), resampled
in-plane to 3.6 mm so that a 3 mm image needs nnU-Net's resampling at inference; labels are reduced to
liver, spleen and kidney. nnunetv2 then extracts the fingerprint, plans (3d_fullres), preprocesses, and
its ``nnUNetTrainer`` trains two folds for a few iterations on the CPU, writing the usual
``Dataset901_RadviewTiny/nnUNetTrainer__nnUNetPlans__3d_fullres/{dataset.json, plans.json,
fold_{0,1}/checkpoint_final.pth}``.

nnunetv2 fixes its folders from environment variables at import time, so the build runs in a
subprocess (``python -m tests.ai.nnunet_fixture ROOT SHARED_DATA``) with its own ``nnUNet_*`` variables.
``cached_build`` keeps the result in pytest's cache folder, keyed by this file and the nnunetv2/torch versions,
so only the first test session pays the ~45 s build.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

DATASET_ID = 901
DATASET_NAME = f"Dataset{DATASET_ID}_RadviewTiny"
TRAINED = "nnUNetTrainer__nnUNetPlans__3d_fullres"
LABELS = {"background": 0, "liver": 1, "spleen": 2, "kidney": 3}
#: our label -> TotalSegmentator ids in ct_abdomen_3mm_labels.nii.gz (1 spleen, 2/3 kidneys, 5 liver)
SOURCE_IDS = {1: (5,), 2: (1,), 3: (2, 3)}
#: crops (x0, y0, z0) of 64 x 64 x 24 voxels of the 3 mm CT
CROPS = [(10, 20, 0), (40, 22, 6), (25, 30, 3), (50, 12, 2)]
CROP_SIZE = (64, 64, 24)
TRAIN_SPACING = (3.6, 3.6, 3.0)
FOLDS = (0, 1)
ITERATIONS = 6
REPO = Path(__file__).resolve().parents[2]


def result_folder(root: Path) -> Path:
    """The Trainer__Plans__Configuration folder ``build`` writes under ``root``."""
    return Path(root) / "results" / DATASET_NAME / TRAINED


def cache_key() -> str:
    """Changes whenever this builder or the nnunetv2 / torch versions change."""
    import hashlib
    from importlib.metadata import version

    text = Path(__file__).read_bytes() + version("nnunetv2").encode() + version("torch").encode()
    return hashlib.sha256(text).hexdigest()[:16]


def cached_build(cache_root: Path, shared_data: Path) -> Path:
    """The model folder under ``cache_root/<cache_key>``, built there first if it is not complete."""
    root = Path(cache_root) / cache_key()
    folder = result_folder(root)
    if not all((folder / f"fold_{f}" / "checkpoint_final.pth").is_file() for f in FOLDS):
        import shutil

        shutil.rmtree(root, ignore_errors=True)
        build(root, shared_data)
        for scratch in ("raw", "preprocessed"):  # only the trained-model folder is kept
            shutil.rmtree(root / scratch, ignore_errors=True)
        for best in folder.glob("fold_*/checkpoint_best.pth"):
            best.unlink()
    return folder


def build(root: Path, shared_data: Path, timeout: float = 600) -> Path:
    """Build the trained-model folder under ``root`` (in a subprocess) and return it."""
    root = Path(root)
    env = dict(os.environ, nnUNet_raw=str(root / "raw"), nnUNet_preprocessed=str(root / "preprocessed"),
               nnUNet_results=str(root / "results"), nnUNet_n_proc_DA="1", nnUNet_def_n_proc="1",
               OMP_NUM_THREADS="2")
    subprocess.run([sys.executable, "-m", "tests.ai.nnunet_fixture", str(root), str(shared_data)],
                   cwd=REPO, env=env, check=True, timeout=timeout, capture_output=True)
    return result_folder(root)


def write_raw_dataset(raw: Path, shared_data: Path) -> Path:
    """nnU-Net raw dataset: imagesTr/case_XXX_0000.nii.gz, labelsTr/case_XXX.nii.gz, dataset.json."""
    import numpy as np
    import SimpleITK as sitk

    folder = raw / DATASET_NAME
    (folder / "imagesTr").mkdir(parents=True, exist_ok=True)
    (folder / "labelsTr").mkdir(exist_ok=True)
    ct = sitk.ReadImage(str(shared_data / "ct_abdomen_3mm.nii.gz"))
    source = sitk.GetArrayFromImage(sitk.ReadImage(str(shared_data / "ct_abdomen_3mm_labels.nii.gz")))
    reduced = np.zeros(source.shape, np.uint8)
    for ours, ids in SOURCE_IDS.items():
        reduced[np.isin(source, ids)] = ours
    seg = sitk.GetImageFromArray(reduced)
    seg.CopyInformation(ct)
    for i, corner in enumerate(CROPS):
        crop = [sitk.RegionOfInterest(img, CROP_SIZE, corner) for img in (ct, seg)]
        size = [int(round(n * s / t)) for n, s, t in zip(CROP_SIZE, crop[0].GetSpacing(), TRAIN_SPACING, strict=True)]
        image, label = (sitk.Resample(img, size, sitk.Transform(), interp, img.GetOrigin(), TRAIN_SPACING,
                                      img.GetDirection(), default, img.GetPixelID())
                        for img, interp, default in ((crop[0], sitk.sitkBSpline, -1024),
                                                     (crop[1], sitk.sitkNearestNeighbor, 0)))
        sitk.WriteImage(image, str(folder / "imagesTr" / f"case_{i:03d}_0000.nii.gz"))
        sitk.WriteImage(label, str(folder / "labelsTr" / f"case_{i:03d}.nii.gz"))
    dataset = {"channel_names": {"0": "CT"}, "labels": LABELS, "numTraining": len(CROPS),
               "file_ending": ".nii.gz", "name": "RadviewTiny",
               "description": "crops of the shared real abdominal CT, TotalSegmentator reference labels reduced"}
    (folder / "dataset.json").write_text(json.dumps(dataset, indent=2))
    return folder


def _plan_preprocess_train(root: Path, shared_data: Path) -> None:
    """Runs in the subprocess, with the nnUNet_* environment set."""
    import torch
    from batchgenerators.utilities.file_and_folder_operations import load_json
    from nnunetv2.experiment_planning.plan_and_preprocess_api import extract_fingerprints, plan_experiments, preprocess
    from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

    torch.set_num_threads(2)
    write_raw_dataset(root / "raw", shared_data)
    extract_fingerprints([DATASET_ID], num_processes=1)
    plans_name = plan_experiments([DATASET_ID])
    preprocess([DATASET_ID], plans_name, configurations=("3d_fullres",), num_processes=(1,))
    pre = root / "preprocessed" / DATASET_NAME
    cases = [f"case_{i:03d}" for i in range(len(CROPS))]
    splits = [{"train": cases[:3], "val": cases[3:]}, {"train": cases[1:], "val": cases[:1]}]
    (pre / "splits_final.json").write_text(json.dumps(splits))
    plans = load_json(str(pre / f"{plans_name}.json"))
    dataset_json = load_json(str(pre / "dataset.json"))
    os.environ["nnUNet_n_proc_DA"] = "0"  # train with the single-threaded data loader (planning needs >= 1)
    for fold in FOLDS:
        torch.manual_seed(fold)
        trainer = nnUNetTrainer(dict(plans, continue_training=False), "3d_fullres", fold, dataset_json,
                                device=torch.device("cpu"))
        trainer.num_epochs = 1
        trainer.num_iterations_per_epoch = ITERATIONS
        trainer.num_val_iterations_per_epoch = 1
        trainer.run_training()


if __name__ == "__main__":
    _plan_preprocess_train(Path(sys.argv[1]), Path(sys.argv[2]))
