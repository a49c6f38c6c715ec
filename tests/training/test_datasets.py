"""Training data entries: labelled files mapped to the config's labels by name, typed errors naming the entry."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ai.training.datasets import load_dataset
from viewer.core.errors import InputError, LabelMapError

LABELS = {0: "background", 1: "liver", 2: "spleen", 3: "kidney_left", 4: "kidney_right", 5: "stomach", 6: "aorta"}


def shared_entry(**changes) -> dict:
    return {"kind": "files", "images": ["ct_abdomen_3mm.nii.gz"], "labels": "ct_abdomen_3mm_labels.nii.gz",
            "names": "totalsegmentator_total_labels.json", **changes}


def test_files_entry_maps_label_ids_by_name(shared_data):
    from viewer.core.io import load_volume

    (case,) = load_dataset([shared_entry()], LABELS, shared_data)
    source = load_volume(shared_data / "ct_abdomen_3mm_labels.nii.gz").array
    assert case.labels.array.dtype == np.uint8 and case.labels.same_grid(case.images[0])
    # TotalSegmentator ids 5 liver, 1 spleen, 3 kidney_left, 2 kidney_right, 6 stomach, 52 aorta
    for src, dst in ((5, 1), (1, 2), (3, 3), (2, 4), (6, 5), (52, 6)):
        assert np.array_equal(case.labels.array == dst, source == src), LABELS[dst]
    assert set(np.unique(case.labels.array)) == set(LABELS)  # everything else (lungs, bones, ...) -> background
    assert case.images[0].units == "HU"


def test_files_entry_reads_the_names_stored_beside_the_labels(shared_data, tmp_path):
    import shutil

    shutil.copy(shared_data / "ct_abdomen_3mm.nii.gz", tmp_path / "ct.nii.gz")
    shutil.copy(shared_data / "ct_abdomen_3mm_labels.nii.gz", tmp_path / "lab.nii.gz")
    (tmp_path / "lab.json").write_text(json.dumps({"5": "liver", "1": "SPLEEN"}))
    (case,) = load_dataset([{"kind": "files", "images": ["ct.nii.gz"], "labels": "lab.nii.gz"}], LABELS, tmp_path)
    assert set(np.unique(case.labels.array)) == {0, 1, 2}


def test_bad_entries_name_the_problem(shared_data):
    with pytest.raises(InputError, match="unknown kind 'nope'"):
        load_dataset([{"kind": "nope"}], LABELS, shared_data)
    with pytest.raises(InputError, match="data entry 2 needs a 'kind'"):
        load_dataset([shared_entry(), {"images": []}], LABELS, shared_data)
    with pytest.raises(InputError, match="does not exist") as err:
        load_dataset([shared_entry(labels="missing.nii.gz")], LABELS, shared_data)
    assert "missing.nii.gz" in str(err.value)
    with pytest.raises(LabelMapError, match="no label names"):
        load_dataset([{"kind": "files", "images": ["ct_abdomen_3mm.nii.gz"], "labels": "ct_abdomen_3mm_labels.nii.gz"}],
                     LABELS, shared_data)
    with pytest.raises(LabelMapError, match="none of the config's labels"):
        load_dataset([shared_entry()], {0: "background", 1: "brain"}, shared_data)


SYNTH = {"kind": "real_ct_synth", "image": "ct_abdomen_3mm.nii.gz", "labels": "ct_abdomen_3mm_labels.nii.gz",
         "names": "totalsegmentator_total_labels.json"}


@pytest.mark.parametrize("entry", [SYNTH | {"seeds": [3, 5]}, {"kind": "abdomen_ct_phantom", "seeds": [1, 3]}],
                         ids=["real_ct_synth", "abdomen_ct_phantom"])
def test_generated_cases_are_deterministic_ct_with_aligned_labels(shared_data, entry):
    from scipy import ndimage

    first = load_dataset([entry], LABELS, shared_data)
    again = load_dataset([entry], LABELS, shared_data)
    assert [c.name for c in first] == [f"{entry['kind']} seed {s}" for s in range(*entry["seeds"])]
    for case, same in zip(first, again, strict=True):
        ct, lab = case.images[0], case.labels
        assert np.array_equal(ct.array, same.images[0].array) and np.array_equal(lab.array, same.labels.array)
        assert ct.units == "HU" and ct.array.dtype == np.int16 and lab.same_grid(ct) and lab.array.dtype == np.uint8
        assert {1, 2} <= set(np.unique(lab.array)), case.name  # liver and spleen in every case
        assert np.percentile(ct.array[lab.array == 0], 5) < -900  # air around the body
        for k in (1, 2):  # the labels sit on homogeneous soft tissue (they moved with the image)
            core = ndimage.binary_erosion(lab.array == k, iterations=1)
            values = ct.array[core] if core.sum() > 50 else ct.array[lab.array == k]
            assert -30 < np.median(values) < 300 and np.percentile(values, 90) - np.percentile(values, 10) < 150, (
                case.name, LABELS[k])


def test_generated_cases_vary_in_contrast_field_of_view_and_voxel_size(shared_data):
    cases = load_dataset([SYNTH | {"seeds": [0, 5]}, {"kind": "abdomen_ct_phantom", "seeds": [0, 5]}], LABELS,
                         shared_data)
    liver_hu = [float(np.median(c.images[0].array[c.labels.array == 1])) for c in cases]
    assert max(liver_hu) - min(liver_hu) > 40  # non-contrast ~55 HU up to portal venous ~120 HU
    assert len({c.images[0].spacing for c in cases}) == len(cases)
    extents = [c.images[0].size[2] * c.images[0].spacing[2] for c in cases]
    assert min(extents) <= 60 < max(extents)  # thin slabs and longer fields of view


def test_generator_entries_need_seeds(shared_data):
    with pytest.raises(InputError, match=r"seeds: \[start, stop\]"):
        load_dataset([{"kind": "abdomen_ct_phantom", "seeds": [5, 2]}], LABELS, shared_data)
    with pytest.raises(InputError, match="needs 'image'"):
        load_dataset([{"kind": "real_ct_synth", "seeds": [0, 1]}], LABELS, shared_data)


def test_slices_hold_out_part_of_a_real_ct(shared_data):
    (upper,) = load_dataset([shared_entry(slices=[15, 30])], LABELS, shared_data)
    (whole,) = load_dataset([shared_entry()], LABELS, shared_data)
    assert upper.images[0].array.shape[0] == 15 and np.array_equal(upper.labels.array, whole.labels.array[15:])
    assert np.allclose(upper.images[0].origin, whole.images[0].index_to_world([0, 0, 15]))
    (synth,) = load_dataset([SYNTH | {"seeds": [0, 1], "slices": [0, 15]}], LABELS, shared_data)
    top = whole.images[0].index_to_world([0, 0, 14])[2] + 60  # the synthetic anatomy stays near the kept slices
    assert synth.images[0].world_bounds()[1][2] < top
    with pytest.raises(InputError, match="'slices'"):
        load_dataset([shared_entry(slices=[20, 40])], LABELS, shared_data)
