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


def test_suv_peak_is_the_hottest_1_ml_sphere_centred_in_the_lesion_not_on_its_hottest_voxel():
    """PERCIST: a uniform SUV 6 lesion (radius 15 mm, 2 mm voxels) in SUV 1 background with one SUV 20 voxel on
    its edge. The 1 mL sphere (radius 6.2 mm: 123 voxels of 8 uL) centred on that voxel is partly background;
    the hottest one centred in the lesion holds the spike and lesion only: 6 + 14 / 123."""
    from viewer.core.volume import Volume

    offsets = np.mgrid[:40, :40, :40] - 20
    inside = (offsets**2).sum(0) * 4.0 <= 15.0**2
    suv = np.where(inside, 6.0, 1.0).astype(np.float32)
    suv[20, 20, 27] = 20.0  # 14 mm from the centre: on the lesion's edge
    pet = Volume(suv, spacing=(2.0, 2.0, 2.0), modality="PT", units="SUVbw")
    (row,) = label_statistics(pet, inside.astype(np.uint8))
    assert row["suv_max"] == 20.0
    on_the_spike = ((offsets - np.array([0, 0, 7])[:, None, None, None]) ** 2).sum(0) * 4.0 <= 6.2**2
    assert on_the_spike.sum() == 123 and suv[on_the_spike].mean() < 5.0  # where the hottest voxel puts it
    assert row["suv_peak"] == pytest.approx(6.0 + 14.0 / 123, rel=1e-6)


@pytest.mark.parametrize("seed", range(4))
def test_suv_peak_equals_the_best_sphere_over_every_centre_in_the_label(seed):
    """The pruned search (only centres whose sphere holds a voxel as hot as the sphere on the hottest voxel) gives
    the maximum over every label voxel, also with anisotropic voxels and a label at the image's edge."""
    from scipy import ndimage

    from viewer.core.stats import SUV_PEAK_RADIUS_MM
    from viewer.core.volume import Volume

    rng = np.random.default_rng(seed)
    suv = ndimage.gaussian_filter(rng.gamma(2.0, 1.0, (30, 40, 50)), 1.5).astype(np.float32) * 3
    spacing = (2.0, 2.5, 3.0)  # x, y, z
    label = np.zeros(suv.shape, np.uint8)
    label[:12, 5:30, 30:50] = 1  # touches the first slice and the last column
    (row,) = label_statistics(Volume(suv, spacing=spacing, modality="PT", units="SUVbw"), label)
    dz, dy, dx = np.mgrid[-2:3, -2:3, -3:4]
    sphere = ((dz * 3.0) ** 2 + (dy * 2.5) ** 2 + (dx * 2.0) ** 2 <= SUV_PEAK_RADIUS_MM**2).astype(float)
    means = (ndimage.correlate(suv.astype(float), sphere, mode="constant")
             / ndimage.correlate(np.ones(suv.shape), sphere, mode="constant"))
    assert row["suv_peak"] == pytest.approx(float(means[label > 0].max()), rel=1e-9)


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
