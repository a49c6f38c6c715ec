"""Statistics on the real CT and its 41-structure reference labels, and the PET SUV measures."""

import json

import numpy as np
import pytest

from viewer.cli import main
from viewer.core.io import load_volume
from viewer.core.stats import label_statistics, statistics_csv


def test_volumes_and_hu_match_numpy_on_real_labels(shared_data):
    ct = load_volume(shared_data / "ct_abdomen_3mm.nii.gz")
    labels = load_volume(shared_data / "ct_abdomen_3mm_labels.nii.gz")
    names = {int(k): v for k, v in json.loads((shared_data / "totalsegmentator_total_labels.json").read_text()).items()}
    rows = label_statistics(ct, labels, names)
    assert len(rows) == len(np.unique(labels.array)) - 1
    liver = next(r for r in rows if r["name"] == "liver")
    mask = labels.array == liver["label"]
    assert liver["voxels"] == mask.sum()
    assert liver["volume_ml"] == pytest.approx(mask.sum() * 27 / 1000)
    assert liver["mean"] == pytest.approx(ct.array[mask].astype(np.float64).mean())
    assert liver["std"] == pytest.approx(ct.array[mask].astype(np.float64).std(), rel=1e-6)
    assert liver["min"] == ct.array[mask].min() and liver["max"] == ct.array[mask].max()
    k, j, i = np.argwhere(mask).mean(axis=0)
    assert np.allclose(liver["centroid_mm"], ct.index_to_world((i, j, k)))
    assert liver["centroid_mm"][0] < 0 or ct.direction[0, 0] < 0  # LPS world coordinates
    assert "liver" in statistics_csv(rows)


def test_pet_suv_measures_on_the_demo_phantom(demo_study):
    pet = load_volume(demo_study.pet_dir)
    lesion = np.zeros(pet.array.shape, np.uint8)
    truth = json.loads(demo_study.truth.read_text())
    hot = truth["lesions"][2]  # the bone lesion, SUVmax known after blur
    centre = np.rint(pet.world_to_index(hot["center_pet_mm"])).astype(int)
    lesion[centre[2] - 3: centre[2] + 4, centre[1] - 3: centre[1] + 4, centre[0] - 3: centre[0] + 4] = 1
    (row,) = label_statistics(pet, lesion)
    assert row["units"] == "SUVbw"
    assert row["suv_max"] == pytest.approx(hot["suv_max"], rel=0.01)
    assert row["suv_peak"] <= row["suv_max"]
    assert row["tlg"] == pytest.approx(row["mtv_ml"] * row["mean"])


def test_stats_command_json_shape(shared_data, capsys):
    assert main(["stats", str(shared_data / "ct_abdomen_3mm.nii.gz"), str(shared_data / "ct_abdomen_3mm_labels.nii.gz"),
                 "--names", str(shared_data / "totalsegmentator_total_labels.json"), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    first = data["labels"][0]
    assert set(first) == {"label", "name", "voxels", "volume_ml", "mean", "std", "min", "max", "units"}
    assert first["label"] == 1 and first["name"] == "spleen"


def test_stats_command_reports_hu_on_a_nifti_ct(shared_data, capsys):
    assert main(["stats", str(shared_data / "ct_abdomen_3mm.nii.gz"),
                 str(shared_data / "ct_abdomen_3mm_labels.nii.gz"), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["labels"]
    assert rows and all(r["units"] == "HU" for r in rows)


def test_stats_command_reads_the_names_beside_the_labels(demo_study, capsys):
    """labels.nii.gz finds labels.json beside it (as the viewer does), without --names."""
    names = json.loads((demo_study.labels.parent / "labels.json").read_text())
    assert main(["stats", str(demo_study.ct_dir), str(demo_study.labels), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["labels"]
    assert rows and all(r["name"] == names[str(r["label"])] for r in rows)
