"""Comparing two models' label maps: Dice per label and the both / only A / only B agreement map."""

import numpy as np
import pytest

from ai.compare import BOTH, ONLY_A, ONLY_B, agreement_map, compare_labels, dice_table


def test_dice_table_and_agreement():
    a = np.zeros((1, 4, 4), np.uint8)
    b = np.zeros_like(a)
    a[0, :2, :2] = 1  # 4 voxels
    b[0, :2, :1] = 1  # 2 voxels, inside A
    b[0, 3, 3] = 2
    rows = {r["label"]: r for r in dice_table(a, b, {1: "liver"})}
    assert sorted(rows) == [1, 2]  # background is never a row
    assert rows[1]["name"] == "liver" and rows[1]["dice"] == pytest.approx(2 * 2 / 6)
    assert rows[2]["dice"] == 0.0 and rows[2]["voxels_b"] == 1
    m = agreement_map(a, b)
    assert (m == BOTH).sum() == 2 and (m == ONLY_A).sum() == 2 and (m == ONLY_B).sum() == 1
    with pytest.raises(ValueError, match="shape"):
        dice_table(a, b[:, :2])


def test_two_runs_of_the_builtin_model_agree_with_and_without_tta(demo_study):
    from ai.engine import run_segmentation
    from ai.registry import load_model
    from viewer.core.io import load_volume

    model = load_model("abdomen_ct_unet")
    ct = load_volume(demo_study.ct_dir)
    plain = run_segmentation(model, [ct], device="cpu").labels.array
    tta = run_segmentation(model, [ct], device="cpu", tta=True).labels.array
    rows = dice_table(plain, tta, model.card.labels)
    assert {r["name"] for r in rows} >= {"liver", "spleen"}
    assert all(r["dice"] > 0.9 for r in rows if r["name"] == "liver")


def test_labels_are_matched_by_name_when_both_sides_name_them():
    a = np.array([[[1, 1, 2, 0]]], np.uint8)  # A: 1 liver, 2 spleen
    b = np.array([[[5, 5, 1, 7]]], np.uint8)  # B: 5 liver, 1 spleen, 7 aorta
    cmp = compare_labels(a, b, {1: "liver", 2: "Spleen", 3: "tumour"}, {1: "spleen", 5: "liver", 7: "aorta", 9: "lung"})
    assert cmp.by_name and cmp.only_a == [] and cmp.only_b == ["aorta"]  # structures present only on one side
    assert [(r["name"], r["dice"]) for r in cmp.rows] == [("liver", 1.0), ("Spleen", 1.0)]
    m = agreement_map(cmp.a, cmp.b)
    assert (m == BOTH).sum() == 3 and (m == ONLY_B).sum() == 0  # aorta is not compared
    # two different structures on one voxel are not "both"
    assert agreement_map(np.array([1, 2]), np.array([2, 2]))[0] == ONLY_A
    by_number = compare_labels(a, b, {1: "liver"}, None)
    assert not by_number.by_name and {r["label"] for r in by_number.rows} == {1, 2, 5, 7}


def test_builtin_model_vs_totalsegmentator_labels_matches_organs_by_name(real_ct_run):
    result, reference, names = real_ct_run
    cmp = compare_labels(result.labels.array, reference.array, result.names, names)
    rows = {r["name"]: r for r in cmp.rows}
    assert sorted(rows) == ["kidney_left", "kidney_right", "liver", "spleen"]  # one row per organ
    assert rows["liver"]["dice"] >= 0.9 and rows["spleen"]["dice"] >= 0.85
    present = set(np.unique(reference.array).tolist()) - {0}
    assert cmp.only_a == [] and "aorta" in cmp.only_b and len(cmp.only_b) == len(present) - 4
    m = agreement_map(cmp.a, cmp.b)
    liver = result.labels.array == 1
    assert (m[liver] == BOTH).mean() > 0.85
    aorta = (reference.array == 52) & (result.labels.array == 0)  # a structure only B has: not compared
    assert names[52] == "aorta" and aorta.any() and (m[aorta] == 0).all()
