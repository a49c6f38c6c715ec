"""Explanation maps as AI-panel toggles in a real window: computed in a worker when turned on, drawn over the CT in
every view with a colour bar, hidden when turned off, attention only for Attention U-Net models."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from tests.ai.test_explain import write_attention_model
from tests.ui.conftest import ai_job, view_pixels

pytestmark = pytest.mark.gui
MODEL = "abdomen_ct_unet"
TIMEOUT = 180000


@pytest.fixture
def ct_window(viewer, open_and_wait, demo_study, tmp_path, monkeypatch):
    """The window showing the demo CT; the user's models folder holds a tiny Attention U-Net."""
    monkeypatch.setenv("RADVIEW_HOME", str(tmp_path))
    write_attention_model(tmp_path / "models" / "tiny_attention")
    viewer.ai_panel.refresh()
    vol = open_and_wait(viewer, demo_study.ct_dir)
    return viewer, vol


def _select(panel, model_id: str) -> None:
    panel.models.setCurrentRow(panel.model_ids.index(model_id))


def _views(viewer) -> dict[str, np.ndarray]:
    out = {}
    for name, view in viewer.views.items():
        view.slice_view.set_crosshair_visible(False)
        out[name] = view_pixels(view)
    return out


def _save(viewer, pixels: dict[str, np.ndarray], path) -> None:
    """The three views side by side with the AI panel's explain box (toggles + colour bar) below them."""
    h = min(p.shape[0] for p in pixels.values())
    views = np.concatenate([p[:h] for p in pixels.values()], axis=1).astype(np.uint8)
    box = viewer.ai_panel.colour_bar.parentWidget().grab().toImage()
    box.save(str(path.with_suffix(".box.png")))
    panel = np.asarray(Image.open(path.with_suffix(".box.png")).convert("RGB"))
    path.with_suffix(".box.png").unlink()
    canvas = np.zeros((views.shape[0] + panel.shape[0], max(views.shape[1], panel.shape[1]), 3), np.uint8)
    canvas[:views.shape[0], :views.shape[1]] = views
    canvas[views.shape[0]:, :panel.shape[1]] = panel
    Image.fromarray(canvas).save(path)


def test_grad_cam_toggle_draws_the_map_with_a_colour_bar_and_off_hides_it(ct_window, qtbot, artifacts):
    viewer, vol = ct_window
    panel = viewer.ai_panel
    _select(panel, MODEL)
    assert not panel.map_buttons["attention"].isEnabled()  # a plain U-Net has no gates
    assert panel.colour_bar.isHidden()
    panel.label_box.setCurrentIndex(panel.label_box.findText("liver"))
    with ai_job(qtbot, panel, panel.heatmap_ready, TIMEOUT) as blocker:
        assert panel.show_map("gradcam") is not None  # computed in the background worker
        assert panel.map_buttons["gradcam"].isChecked() and panel.cancel_button.isEnabled()
    heat = blocker.args[0]
    assert heat is viewer.state.heatmap and heat.array.shape == vol.array.shape and "Grad-CAM liver" in heat.description
    assert not panel.colour_bar.isHidden()
    low, high = panel.colour_bar.labels()
    assert low == "0: no evidence" and high == "1: strongest evidence"
    peak = np.unravel_index(np.argmax(heat.array), heat.array.shape)
    viewer.state.set_cursor(vol.index_to_world(np.asarray(peak, float)[::-1]))
    viewer.state.set_heatmap_style(visible=False)
    plain = _views(viewer)
    viewer.state.set_heatmap_style(visible=True)
    shown = _views(viewer)
    for name, view in viewer.views.items():  # heat colours over the CT at the peak in every view
        x, y = view.slice_view.world_to_display(vol.index_to_world(np.asarray(peak, float)[::-1]))
        r, c = shown[name].shape[0] - 1 - int(round(y)), int(round(x))
        assert np.abs(shown[name] - plain[name]).sum(axis=2)[r, c] > 60, name
        assert (np.abs(shown[name] - plain[name]).sum(axis=2) > 30).mean() > 0.002, name
    _save(viewer, shown, artifacts / "explain_gradcam_toggle.png")
    # the bar's gradient is the views' colour map: its right end is the top colour of 'jet' (dark red)
    bar = panel.colour_bar.grab().toImage()
    row = bar.height() // 2
    right = bar.pixelColor(bar.width() - 4, row)
    assert right.red() > 100 and right.blue() < 60, right.name()
    panel.map_buttons["gradcam"].setChecked(False)  # off: hidden
    assert viewer.state.heatmap is None and panel.colour_bar.isHidden()
    off = _views(viewer)
    assert all(np.array_equal(off[n], plain[n]) for n in off)
    assert panel.show_map("gradcam") is None  # on again: the map of this image is kept, no new job
    assert viewer.state.heatmap is heat


def test_uncertainty_toggle_says_what_it_means(ct_window, qtbot, artifacts):
    viewer, _ = ct_window
    panel = viewer.ai_panel
    _select(panel, MODEL)
    with ai_job(qtbot, panel, panel.heatmap_ready, TIMEOUT) as blocker:
        panel.show_map("uncertainty")
    unc = blocker.args[0]
    assert "predictive entropy" in unc.description and viewer.state.heatmap is unc
    assert panel.colour_bar.labels()[0].endswith("certain") and "uncertain" in panel.colour_bar.labels()[1]
    _save(viewer, _views(viewer), artifacts / "explain_uncertainty_toggle.png")


def test_attention_toggle_for_an_attention_unet_and_one_map_at_a_time(ct_window, qtbot, artifacts):
    viewer, vol = ct_window
    panel = viewer.ai_panel
    _select(panel, "tiny_attention")
    assert panel.map_buttons["attention"].isEnabled()
    with ai_job(qtbot, panel, panel.heatmap_ready, TIMEOUT) as blocker:
        panel.show_map("attention")
    gate = blocker.args[0]
    assert gate.array.shape == vol.array.shape and "attention gate model.1.attention" in gate.description
    assert panel.colour_bar.labels()[0].endswith("gate closed")
    shown = _views(viewer)
    viewer.state.set_heatmap_style(visible=False)
    hidden = _views(viewer)
    viewer.state.set_heatmap_style(visible=True)
    assert not panel.colour_bar.isHidden()
    changed = np.mean([(np.abs(shown[n] - hidden[n]).sum(axis=2) > 30).mean() for n in shown])
    assert changed > 0.01  # the gate map is drawn over the CT
    _save(viewer, shown, artifacts / "explain_attention_toggle.png")
    with ai_job(qtbot, panel, panel.heatmap_ready, TIMEOUT) as blocker:
        panel.show_map("uncertainty")
        assert not panel.map_buttons["attention"].isChecked()  # one map at a time: the gates went off
    assert viewer.state.heatmap is blocker.args[0] and "uncertainty" in blocker.args[0].description


def test_turning_a_map_off_while_it_computes_cancels_it(ct_window, qtbot):
    viewer, _ = ct_window
    panel = viewer.ai_panel
    _select(panel, MODEL)
    with qtbot.waitSignal(panel.failed, timeout=TIMEOUT) as blocker:
        worker = panel.show_map("uncertainty")
        worker.progress.connect(lambda f, m: panel.show_map("uncertainty", on=False) if "window" in m else None)
    assert "cancelled" in blocker.args[0]
    assert viewer.state.heatmap is None and not panel.map_buttons["uncertainty"].isChecked()


def test_maps_are_off_for_a_model_that_makes_an_image(ct_window):
    """A translation model (MR -> synthetic CT) gives no label to explain and no class probabilities: its Grad-CAM
    and uncertainty toggles are disabled and say why; a segmentation model enables them again."""
    viewer, _ = ct_window
    panel = viewer.ai_panel
    _select(panel, "mr-to-ct-synth")
    for method in ("gradcam", "uncertainty", "attention"):
        assert not panel.map_buttons[method].isEnabled(), method
    assert "segmentation and detection" in panel.map_buttons["uncertainty"].toolTip()
    _select(panel, MODEL)
    assert panel.map_buttons["gradcam"].isEnabled() and panel.map_buttons["uncertainty"].isEnabled()
    assert "HiResCAM" in panel.map_buttons["gradcam"].toolTip()
