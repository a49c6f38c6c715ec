"""`radview batch` on a local Dask cluster: every case as `radview segment` writes it, summary.csv, failed cases."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from tests.batch.conftest import assert_same_as_segment, copy_ct, segment_reference
from viewer.cli import main
from viewer.core.io import load_volume
from viewer.core.io.labelmap import load_labelmap
from viewer.core.stats import label_statistics

LABELS = ["liver", "spleen", "kidney_left", "kidney_right"]


@pytest.mark.slow
def test_cohort_on_a_local_cluster_matches_segment_and_reports_the_broken_case(tmp_path, shared_data, capsys):
    """Two CTs both named ct.nii.gz, a DICOM folder and a file that is no image: exit 1, the broken case
    listed with its reason, the three others written byte-identical to `radview segment` under distinct
    names, summary.csv with one row per input and label (volume, mean HU as viewer.core.stats computes them)."""
    first, second = copy_ct(shared_data, tmp_path / "in" / "p1" / "ct.nii.gz"), \
        copy_ct(shared_data, tmp_path / "in" / "p2" / "ct.nii.gz")
    dicom = shared_data / "ct_abdomen_dicom"
    broken = tmp_path / "in" / "broken.nii.gz"
    broken.write_bytes(b"not an image at all")
    out = tmp_path / "out"
    code = main(["batch", "--model", "abdomen_ct_unet", "--out", str(out), "--device", "cpu",
                 str(first), str(second), str(broken), str(dicom)])
    captured = capsys.readouterr()
    assert code == 1
    assert f"radview: batch: failed: {broken}: cannot read image" in captured.err
    assert "segmented 3 of 4 case(s)" in captured.out
    assert sorted(p.name for p in out.iterdir()) == ["ct_abdomen_dicom.json", "ct_abdomen_dicom.nii.gz",
                                                     "p1_ct.json", "p1_ct.nii.gz", "p2_ct.json", "p2_ct.nii.gz",
                                                     "summary.csv"]
    reference = segment_reference(first, tmp_path / "ref" / "ct.nii.gz")
    assert_same_as_segment(out / "p1_ct.nii.gz", reference)
    assert_same_as_segment(out / "p2_ct.nii.gz", reference)
    assert_same_as_segment(out / "ct_abdomen_dicom.nii.gz",
                           segment_reference(dicom, tmp_path / "ref" / "ct_abdomen_dicom.nii.gz"))

    with open(out / "summary.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["input", "output", "label", "volume_ml", "mean_intensity", "units", "retried", "error"]
    assert [(r["input"], r["label"]) for r in rows] == \
        [(str(first), name) for name in LABELS] + [(str(second), name) for name in LABELS] + \
        [(str(broken), "")] + [(str(dicom), name) for name in LABELS]
    assert all(r["retried"] == "0" for r in rows)
    assert [r["error"] for r in rows if r["error"]] == ["cannot read image (sitk::ERROR: Unable to determine "
                                                        f"ImageIO reader for \"{broken}\")"]
    image = load_volume(first)
    stats = {s["name"]: s for s in label_statistics(image, load_labelmap(reference, reference=image),
                                                    dict(enumerate(["background", *LABELS])))}
    for row in rows[:4]:
        assert row["output"] == str(out / "p1_ct.nii.gz") and row["units"] == "HU"
        assert float(row["volume_ml"]) == pytest.approx(stats[row["label"]]["volume_ml"], abs=5e-4)
        assert float(row["mean_intensity"]) == pytest.approx(stats[row["label"]]["mean"], abs=5e-3)
    dicom_rows = {r["label"]: r for r in rows if r["input"] == str(dicom)}
    absent = [name for name in LABELS if not np.any(load_volume(out / "ct_abdomen_dicom.nii.gz").array ==
                                                     LABELS.index(name) + 1)]
    assert all(dicom_rows[n]["volume_ml"] == "0.000" and dicom_rows[n]["mean_intensity"] == "" for n in absent)


def test_unknown_model_fails_before_any_worker_starts(tmp_path, shared_data, capsys):
    ct = copy_ct(shared_data, tmp_path / "ct.nii.gz")
    assert main(["batch", "--model", "nope", "--out", str(tmp_path / "out"), str(ct)]) == 2
    assert "no model with id 'nope'" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
