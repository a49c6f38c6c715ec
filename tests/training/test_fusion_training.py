"""PET/CT fusion training: the pet_ct_lesions data kind, two training steps per fusion network, the comparison."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import ndimage

from ai.training.datasets import load_dataset
from ai.training.fusion_comparison import STRATEGIES, fusion_configs, main
from viewer.core.resample import resample_to

LABELS = {0: "background", 1: "lesion"}


@pytest.fixture(scope="module")
def cases(tmp_path_factory):
    base = tmp_path_factory.mktemp("pet_ct")
    return load_dataset([{"kind": "pet_ct_lesions", "seeds": [3, 4]},
                         {"kind": "pet_ct_lesions", "source": "real", "seeds": [2, 3]}], LABELS, base)


def test_pet_ct_lesion_cases_are_a_ct_and_a_coarser_pet_of_one_anatomy_with_lesion_masks_on_the_ct_grid(cases):
    assert [c.name for c in cases] == ["pet_ct_lesions synthetic seed 3",
                                       "pet_ct_lesions real from ct_abdomen_3mm.nii.gz seed 2"]
    for case in cases:
        ct, pet = case.images
        assert (ct.modality, ct.units, ct.array.dtype) == ("CT", "HU", np.int16)
        assert (pet.modality, pet.units) == ("PT", "SUVbw")
        assert ct.array.min() <= -900 and np.percentile(ct.array[ct.array > -500], 50) > -150  # air and body in HU
        assert case.labels.same_grid(ct) and set(np.unique(case.labels.array)) == {0, 1}
        assert not pet.same_grid(ct) and min(pet.spacing) >= 2 and pet.spacing[0] > ct.spacing[0]  # its own grid
        assert case.lesions and all(8 * 0.7 <= le["diameter_mm"] <= 35 * 1.3 for le in case.lesions)
        pet_on_ct = resample_to(pet, ct).array
        inside = case.labels.array == 1
        ring = np.zeros_like(inside)
        for le in case.lesions:  # every lesion centre lies in its mask, and the lesions are hotter than around them
            k, j, i = np.rint(ct.world_to_index(le["center_mm"])[::-1]).astype(int)
            assert inside[k, j, i]
            ring[max(k - 8, 0):k + 9, max(j - 12, 0):j + 13, max(i - 12, 0):i + 13] = True
        assert pet_on_ct[inside].mean() > 1.3 * pet_on_ct[ring & ~inside].mean()


def test_pet_ct_lesion_cases_are_deterministic(cases):
    again = load_dataset([{"kind": "pet_ct_lesions", "seeds": [3, 4]}], LABELS, ".")[0]
    assert np.array_equal(again.images[0].array, cases[0].images[0].array)
    assert np.array_equal(again.images[1].array, cases[0].images[1].array)
    assert again.lesions == cases[0].lesions


def test_the_three_fusion_configs_share_data_budget_and_seed_and_differ_in_the_network():
    configs = fusion_configs()
    assert [c.id for c in configs] == [f"pet-ct-lesions-{s}" for s in STRATEGIES]
    assert [c.network["class"] for c in configs] == ["UNet", "FeatureFusionUNet", "DecisionFusionUNet"]
    for c in configs:
        assert c.inputs == [{"modality": "CT", "name": "ct"}, {"modality": "PT", "name": "pet"}]
        assert [n["kind"] for n in c.normalization] == ["ct_window", "suv"] and c.labels == LABELS


def test_each_fusion_network_trains_two_steps_and_the_comparison_table_is_written(tmp_path, capsys):
    """Smoke mode: every config trains two steps (tiny networks, one small phantom) and is compared."""
    assert main(["--out", str(tmp_path), "--smoke", "--threads", "1"]) == 0
    table = (tmp_path / "fusion_comparison.md").read_text()
    record = json.loads((tmp_path / "fusion_comparison.json").read_text())
    (data_set,) = record["sets"]
    assert [r["network"] for r in data_set["runs"]] == ["UNet", "FeatureFusionUNet", "DecisionFusionUNet"]
    versions = [c.version for c in fusion_configs()]
    for run, strategy, version in zip(data_set["runs"], STRATEGIES, versions, strict=True):
        assert run["train_iterations"] == 2 and run["parameters"] > 0 and run["cpu_s"] >= 0
        assert {"dice_lesion", "lesion_sensitivity", "lesion_false_positives_per_study"} <= set(run["metrics"])
        card = json.loads((tmp_path / f"pet-ct-lesions-{strategy}" / "model.json").read_text())
        assert card["comparisons"][-1]["name"] == record["name"]
        assert card["training"]["history"][0]["epoch"] == 1
        assert f"pet-ct-lesions-{strategy} {version}" in table
    assert "pet_ct_lesions synthetic seed 3" in data_set["data"]


@pytest.mark.parametrize("kind", ["pet_ct_lesions", "pet_ct_phantom"])
def test_a_phantom_entry_with_an_unknown_source_names_its_kind_and_the_source(kind, tmp_path):
    from viewer.core.errors import InputError

    with pytest.raises(InputError, match=f"a {kind} data entry's source must be 'synthetic' or 'real', got 'mri'"):
        load_dataset([{"kind": kind, "source": "mri", "seeds": [0, 1]}], LABELS, tmp_path)


def test_a_real_anatomy_case_with_the_scans_own_ct_keeps_the_scan_outside_the_lesions(cases, tmp_path):
    """ct: scan: the same anatomy, lesions and PET as the rendered case of that seed; the CT is the real scan's HU
    (here not deformed: exactly the scan on its grid, resampled) with only the lesion voxels and their rim changed."""
    from ai.training.pet_phantom import REAL_CT
    from viewer.core.io import load_volume

    entry = {"kind": "pet_ct_lesions", "source": "real", "deform": False, "seeds": [2, 3]}
    rendered, = load_dataset([entry], LABELS, tmp_path)
    scanned, = load_dataset([{**entry, "ct": "scan"}], LABELS, tmp_path)
    assert scanned.name == "pet_ct_lesions real from ct_abdomen_3mm.nii.gz (not deformed) with the scan's own CT seed 2"
    assert np.array_equal(scanned.images[1].array, rendered.images[1].array)  # the same PET
    assert [{k: v for k, v in le.items() if k != "ct_visible"} for le in scanned.lesions] == \
        [{k: v for k, v in le.items() if k != "ct_visible"} for le in rendered.lesions]
    ct = scanned.images[0]
    assert (ct.modality, ct.units, ct.array.dtype) == ("CT", "HU", np.int16) and scanned.labels.same_grid(ct)
    scan = resample_to(load_volume(REAL_CT), ct).array.astype(np.float32)
    inside = scanned.labels.array == 1
    assert inside.any()
    far = ~ndimage.binary_dilation(inside, iterations=4)
    assert np.abs(ct.array[far] - np.clip(np.round(scan[far]), -1024, 3071)).max() <= 1
    for le in scanned.lesions:  # each visible lesion's mean differs from its surroundings
        if le["ct_visible"]:
            k, j, i = np.rint(ct.world_to_index(le["center_mm"])[::-1]).astype(int)
            assert abs(float(ct.array[k, j, i]) - float(scan[k, j, i])) > 5


def test_a_rendered_only_source_refuses_the_scans_own_ct(tmp_path):
    from viewer.core.errors import InputError

    with pytest.raises(InputError, match="ct must be 'rendered' or, with source 'real', 'scan'"):
        load_dataset([{"kind": "pet_ct_lesions", "ct": "scan", "seeds": [0, 1]}], LABELS, tmp_path)
