"""The built-in PET lesion detector from the AI panel in a real window: the demo lesions appear in the
Detections list and as boxes in the MPR views; the panel keeps the thresholds of the model's card."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from tests.ai.conftest import copy_builtin_model
from tests.ui.conftest import ai_job, view_pixels

pytestmark = pytest.mark.gui
MODEL = "pet_lesion_unet"


@pytest.mark.parametrize("model", [MODEL, "pet-lesion-detector"])  # components of a segmentation; heat-map ensemble
def test_detect_on_the_demo_pet_lists_and_outlines_its_lesions(viewer, open_and_wait, demo_study, qtbot, artifacts,
                                                               model):
    vol = open_and_wait(viewer, demo_study.pet_dir)
    panel = viewer.ai_panel
    panel.models.setCurrentRow(panel.model_ids.index(model))
    assert "task: detection" in panel.card.toPlainText()
    with ai_job(qtbot, panel, panel.detections_ready, 120000) as blocker:
        assert panel.detect() is not None
    detections = blocker.args[0]
    truth = json.loads(demo_study.truth.read_text())["lesions"]
    assert len(detections) == len(truth)
    table = viewer.detections_panel.table
    assert table.rowCount() == len(truth) and table.item(0, 0).text() == "lesion (1)"
    assert viewer.detections_panel.summary.text() == f"{len(truth)} detections"
    liver = next(t for t in truth if t["name"] == "liver_lesion")
    row = min(range(len(detections)), key=lambda i: np.linalg.norm(np.subtract(detections[i]["center_mm"],
                                                                               liver["center_pet_mm"])))
    table.selectRow(row)
    assert np.allclose(viewer.state.cursor, detections[row]["center_mm"])
    for view in viewer.views.values():  # every view cuts the liver lesion's box at the cursor
        assert len(view.slice_view.detection_boxes.rectangles()) >= 1
    axial = viewer.views["axial"]
    axial.slice_view.set_crosshair_visible(False)
    Image.fromarray(view_pixels(axial).astype(np.uint8)).save(artifacts / f"{model}_detections_axial.png")
    assert vol.modality == "PT" and vol.units == "SUVbw"


def test_detect_in_the_panel_uses_the_cards_min_voxels(viewer, open_and_wait, demo_study, qtbot):
    """A user-folder copy of the detector whose card asks for 50 voxels: the demo's smallest lesion (the lung
    nodule, about 36 PET voxels found) is no longer listed."""
    from ai.registry import user_models_dir

    copy_builtin_model(MODEL, user_models_dir() / "strict", id="pet_lesion_strict", detection={"min_voxels": 50})
    open_and_wait(viewer, demo_study.pet_dir)
    panel = viewer.ai_panel
    panel.refresh()
    panel.models.setCurrentRow(panel.model_ids.index("pet_lesion_strict"))
    with ai_job(qtbot, panel, panel.detections_ready, 120000) as blocker:
        assert panel.detect() is not None
    truth = json.loads(demo_study.truth.read_text())["lesions"]
    assert len(blocker.args[0]) == len(truth) - 1
    assert viewer.detections_panel.summary.text() == f"{len(truth) - 1} detections"
