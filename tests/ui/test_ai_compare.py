"""Compare panel in a real window on the real CT: the built-in model vs the TotalSegmentator reference
labels, matched by name (their label numbers differ)."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.gui


def test_model_vs_totalsegmentator_labels_are_matched_by_name(viewer, open_and_wait, shared_data, qtbot):
    from viewer.core.io import load_volume
    from viewer.core.io.labelmap import load_label_names

    vol = open_and_wait(viewer, shared_data / "ct_abdomen_3mm.nii.gz")
    reference = load_volume(shared_data / "ct_abdomen_3mm_labels.nii.gz")
    names = load_label_names(shared_data / "totalsegmentator_total_labels.json")
    seg = viewer.session.new_segmentation(vol, "TotalSegmentator", labels=reference.array, names=names)
    compare = viewer.compare_panel
    compare.select(compare.source_a, "model", "abdomen_ct_unet")
    compare.select(compare.source_b, "segmentation", seg.uid)
    with qtbot.waitSignal(compare.compared, timeout=120000) as blocker:
        compare.compare()
    rows = [(r["name"], r["dice"]) for r in blocker.args[0]]
    assert [n for n, _ in rows] == ["liver", "spleen", "kidney_left", "kidney_right"]  # one row each
    assert dict(rows)["liver"] >= 0.9 and compare.table.item(0, 0).text() == "liver"
    assert "matched by name" in compare.status.text() and "only in B (37): " in compare.status.text()
    amap = viewer.state.agreement.array
    aorta = (reference.array == 52) & (amap != 0)  # B's aorta is compared with nothing in A
    model_labels = compare.comparison.a
    assert not (aorta & (model_labels == 0)).any()
    liver = model_labels == 1
    assert (amap[liver] == 1).mean() > 0.85  # "both" where the model and the reference say liver
    assert np.isin(np.unique(amap), [0, 1, 2, 3]).all()
