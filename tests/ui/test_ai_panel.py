"""The AI panel in a real window: the built-in model runs off the GUI thread, the UI stays responsive,
the result is an AI-written segmentation, and Cancel leaves no layer."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from PySide6.QtCore import QTimer

from tests.ui.conftest import ai_job

pytestmark = pytest.mark.gui


def _select(panel, model_id):
    ids = [c.id for c in panel._cards]
    panel.models.setCurrentRow(ids.index(model_id))


def test_a_released_model_for_the_shown_modality_is_selected_not_a_demo(viewer, open_and_wait, demo_study):
    """Not the 0.x demo models (listed first), and a model that fits what is shown (a CT model on a PET would
    be refused)."""
    panel = viewer.ai_panel
    panel.refresh()
    assert not panel.current_card.version.startswith("0.")  # nothing shown: the first released model
    open_and_wait(viewer, demo_study.pet_dir)  # a CT model selected: a PET model is chosen for the PET
    assert panel.current_card.modalities[0] == "PT" and not panel.current_card.version.startswith("0.")
    open_and_wait(viewer, demo_study.ct_dir)
    assert panel.current_model_id == "ct-abdomen-organs"
    _select(panel, "ct-abdomen-organs-gan")  # the user's choice of a model that fits stays
    open_and_wait(viewer, demo_study.ct_dir)
    assert panel.current_model_id == "ct-abdomen-organs-gan"


def test_the_card_states_the_post_processing_a_model_applies(viewer):
    panel = viewer.ai_panel
    panel.refresh()
    _select(panel, "pet-ct-lesions-decision")
    text = panel.card.toPlainText()
    rule = panel.current_card.postprocessing["labels"]["lesion"]
    assert f"post-processing: lesion: probability >= {rule['threshold']:g}" in text
    assert "chosen on validation: 6 case(s)" in text
    _select(panel, "ct-abdomen-organs")
    assert "post-processing: liver: largest component only; spleen: largest component only" in panel.card.toPlainText()
    _select(panel, "abdomen_ct_unet")
    assert "post-processing" not in panel.card.toPlainText()


def test_model_runs_without_freezing_the_ui_and_result_is_ai_written(viewer, open_and_wait, demo_study, qtbot,
                                                                   monkeypatch):
    import viewer.ui.ai_panel as ai_panel

    made_on = []  # the threads the new layer's copy and provenance map were made on (real function, recorded)
    make = ai_panel.ai_result_segmentation
    monkeypatch.setattr(ai_panel, "ai_result_segmentation",
                        lambda *a: made_on.append(threading.current_thread()) or make(*a))
    open_and_wait(viewer, demo_study.ct_dir)
    panel = viewer.ai_panel
    _select(panel, "abdomen_ct_unet")
    assert "Intended use" in panel.card.toHtml() and "dice_liver" in panel.card.toHtml()
    gaps, last, running = [], [time.perf_counter()], [False]

    def tick():  # counted while the network runs (the first run's torch import is excluded)
        now = time.perf_counter()
        if running[0]:
            gaps.append(now - last[0])
        last[0] = now

    def on_progress(fraction, message):
        running[0] = "window" in message

    timer = QTimer()
    timer.timeout.connect(tick)
    timer.start(20)
    with ai_job(qtbot, panel, panel.segmentation_ready, 120000) as blocker:
        panel.run_model().progress.connect(on_progress)
    timer.stop()
    seg = blocker.args[0]
    assert len(gaps) > 10  # the event loop kept running while the network ran (its stalls: bench_gui.py)
    assert len(made_on) == 1 and made_on[0] is not threading.main_thread()  # not on the GUI thread
    assert seg.array.shape == viewer.state.volume.array.shape
    summary = seg.provenance_summary()
    assert summary and all(v["human_voxels"] == 0 and v["ai_voxels"] > 0 for v in summary.values())
    liver = next(k for k, v in seg.table.names().items() if v == "liver")
    # the model finds the phantom's liver on the patient's right (negative x in LPS)
    k, j, i = np.argwhere(seg.array == liver).mean(axis=0)
    assert viewer.state.volume.index_to_world((i, j, k))[0] < 0
    assert viewer.segment_panel.segmentation is seg  # ready for hand correction


def test_cancel_leaves_no_segmentation(viewer, open_and_wait, demo_study, qtbot):
    open_and_wait(viewer, demo_study.ct_dir)
    panel = viewer.ai_panel
    _select(panel, "abdomen_ct_unet")
    panel.worker = None
    with qtbot.waitSignal(panel.failed, timeout=120000) as blocker:
        worker = panel.run_model()
        worker.progress.connect(lambda f, m: panel.cancel() if "window" in m else None)
    assert "cancelled" in blocker.args[0]
    assert not viewer.session.segmentations


def test_tta_on_a_model_without_mirror_axes_says_so(viewer, open_and_wait, demo_study, qtbot):
    open_and_wait(viewer, demo_study.ct_dir)
    panel = viewer.ai_panel
    _select(panel, "abdomen_ct_unet")
    panel.tta.setChecked(True)
    with ai_job(qtbot, panel, panel.segmentation_ready, 120000):
        panel.run_model()
    assert "model card allows no mirroring" in panel.status.text()
    assert "marked AI-written" in panel.status.text()
