"""Comparing two models' label maps: Dice per label and the both / only A / only B agreement map."""

import numpy as np
import pytest

from ai.compare import BOTH, ONLY_A, ONLY_B, agreement_map, dice_table


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
