"""Brain MR / CT pair preparation (ai.training.brain_mr_ct) with a stand-in atlas of known misplacement: the MNI152
T1 from nilearn, a CT-like copy of it moved by a known rigid motion, registered back with radview's registration;
the real atlas (TotalSegmentator wheel) is fetched only at training time, never in tests."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ai.training.brain_mr_ct import OUTPUTS, mni_t1, mutual_information, pair_scores, prepare_brain_pair
from viewer.core.io import load_volume, save_volume
from viewer.core.registration import Transform


def motion(angle_deg: float = 15.0, shift_mm=(6.0, -9.0, 14.0)) -> np.ndarray:
    """A 4x4 rigid motion: a pitch of ``angle_deg`` about x, then a shift (mm)."""
    a = np.radians(angle_deg)
    matrix = np.eye(4)
    matrix[:3, :3] = [[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]]
    matrix[:3, 3] = shift_mm
    return matrix


def moved_ct_like(mr, matrix):
    """A CT-looking copy of the T1 (brain 0-60 HU, 0 outside as in the atlas) moved by ``matrix``: its point
    ``matrix @ p`` shows what the T1 shows at ``p``."""
    hu = np.where(mr.array > 0.05, 60 * (1 - mr.array), 0).astype(np.int16)
    ct = mr.with_array(hu, modality="CT", units="HU")
    return Transform.from_matrix(np.linalg.inv(matrix)).resample(ct, ct, default=0)


@pytest.fixture(scope="module")
def mr():
    return mni_t1(2)


def test_mni_t1_is_an_mr_head_from_the_installed_package(mr):
    assert mr.modality == "MR" and mr.size == (99, 117, 95) and mr.spacing == (2.0, 2.0, 2.0)
    assert 0.1 < float((mr.array > 0.05).mean()) < 0.4  # a skull-stripped brain in its box


def test_mutual_information_is_high_for_related_and_zero_for_independent_values():
    rng = np.random.default_rng(0)
    a = rng.normal(size=20000)
    assert mutual_information(a, -3 * a + 1) > 1.0
    assert mutual_information(a, rng.normal(size=20000)) < 0.02


def test_prepared_pair_is_registered_and_says_how_well(mr, tmp_path):
    truth = motion()
    atlas = save_volume(moved_ct_like(mr, truth), tmp_path / "stand_in_atlas.nii.gz")
    report = prepare_brain_pair(tmp_path / "pair", atlas=atlas, method="rigid")
    files = {k: tmp_path / "pair" / v for k, v in OUTPUTS.items()}
    assert all(p.is_file() for p in files.values())
    assert json.loads(files["report"].read_text()) == report
    before, after = report["quality"]["centres_aligned"], report["quality"]["registered"]
    points = mr.index_to_world(np.array([[20, 30, 20], [80, 90, 70], [50, 60, 47]]))
    found = Transform.load(files["transform"]).fixed_to_moving(points)
    assert np.abs(found - (points @ truth[:3, :3].T + truth[:3, 3])).max() < 1.5  # mm, on a 2 mm grid
    assert after["brain_dice"] > 0.95 and after["brain_dice"] > before["brain_dice"] + 0.03
    assert after["mi_inside_brain"] > before["mi_inside_brain"]
    ct = load_volume(files["ct"])
    assert ct.same_grid(load_volume(files["mr"]))
    assert pair_scores(mr, ct.with_array(ct.array, modality="CT", units="HU"))["brain_dice"] == pytest.approx(
        after["brain_dice"], abs=1e-3)
