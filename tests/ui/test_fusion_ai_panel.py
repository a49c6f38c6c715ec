"""The AI panel runs a PET/CT fusion model on the shown CT and the fused PET, placed through the fusion's transform."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from tests.ai.test_fusion_cli import write_fusion_model
from tests.ui.conftest import ai_job

pytestmark = pytest.mark.gui
MODEL_ID = "pet-ct-lesions-gui-test"


def test_a_fusion_model_takes_the_shown_ct_and_the_fused_pet_through_the_transform(viewer, open_and_wait,
                                                                                    demo_study, qtbot, artifacts):
    from ai.engine import run_segmentation
    from ai.registry import load_model
    from viewer.core.io import load_volume
    from viewer.core.phantom import PET_TO_CT
    from viewer.core.registration.synthetic import phantom_pet_truth
    from viewer.ui.app import grab_window

    folder = write_fusion_model(Path(os.environ["RADVIEW_HOME"]) / "models" / MODEL_ID, MODEL_ID)
    open_and_wait(viewer, demo_study.ct_dir)
    panel = viewer.ai_panel
    panel.refresh()
    panel.models.setCurrentRow([c.id for c in panel._cards].index(MODEL_ID))
    panel.run_model()
    # nothing fused yet: said so (the worker's end reaches the panel through the event loop)
    qtbot.waitUntil(lambda: "fuse the PT over the shown image first" in panel.status.text(), timeout=30000)
    qtbot.waitUntil(lambda: panel.worker is None or not panel.worker.isRunning(), timeout=30000)

    with qtbot.waitSignal(viewer.fusion_control.fused, timeout=30000):
        viewer.fusion_control.load_moving(str(demo_study.pet_dir))
    truth = phantom_pet_truth({"pet_to_ct": PET_TO_CT})  # the demo PET's documented offset, CT -> PET points
    viewer.fusion.set_transform(truth)
    with ai_job(qtbot, panel, panel.segmentation_ready, 120000) as blocker:
        panel.run_model()
    seg = blocker.args[0]
    ct, pet = viewer.state.volume, load_volume(demo_study.pet_dir)
    assert seg.array.shape == ct.array.shape
    (result,) = panel._results.values()
    model = load_model(str(folder))
    placed = run_segmentation(model, [ct, truth.resample(pet, ct)], device="cpu", return_probabilities=True)
    unplaced = run_segmentation(model, [ct, pet], device="cpu", return_probabilities=True)
    np.testing.assert_allclose(result.probabilities.array, placed.probabilities.array, atol=1e-5)
    assert np.abs(result.probabilities.array - unplaced.probabilities.array).max() > 1e-3  # the transform mattered
    grab_window(viewer, artifacts / "fusion_ai_panel.png")  # the views' OpenGL content too
