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
