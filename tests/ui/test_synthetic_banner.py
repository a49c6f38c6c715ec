"""A synthetic volume in a real window: "Synthesize CT from MR" in the AI panel runs a translation model in a
worker and opens a new image that carries a red SYNTHETIC banner in every view showing it (axial, coronal,
sagittal, 3D, and as a fused overlay); acquired images show none."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest
from PySide6.QtCore import Qt

from tests.ai.synthesis_fixture import tiny_head, write_translation_model
from tests.ui.conftest import ai_job, view_pixels
from viewer.core.io import save_volume
from viewer.render.synthetic_banner import BANNER
from viewer.ui.app import grab_window

pytestmark = [pytest.mark.gui, pytest.mark.slow]  # ~20-40 s: trains the tiny model, renders 3D


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    return write_translation_model(tmp_path_factory.mktemp("translation") / "tiny-mr-to-ct")


@pytest.fixture
def installed(trained):
    """The tiny translation model in this test's user model folder (before the window lists models)."""
    shutil.copytree(trained, os.path.join(os.environ["RADVIEW_HOME"], "models", "tiny-mr-to-ct"))


def banner_pixels(view) -> int:
    """How many pixels of the view are banner red (the image itself is grey)."""
    rgb = view_pixels(view)
    return int(((rgb[..., 0] > 170) & (rgb[..., 1] < 40) & (rgb[..., 2] < 40)).sum())


def views(window) -> dict:
    return {**window.views, "3d": window.view3d}


def test_synthesize_ct_from_mr_opens_a_volume_with_a_banner_in_every_view(installed, viewer, open_and_wait, qtbot,
                                                                          tmp_path, artifacts):
    mr, _ = tiny_head(40, 4.5, shift_mm=(5, -3, 2), seed=7)
    mr_vol = open_and_wait(viewer, save_volume(mr, tmp_path / "head_mr.nii.gz"))
    panel = viewer.ai_panel
    ids = [c.id for c in panel._cards]
    panel.models.setCurrentRow(ids.index("abdomen_ct_unet"))
    assert not panel.synthesize_button.isEnabled()  # a segmentation model: nothing to synthesize
    panel.models.setCurrentRow(ids.index("tiny-mr-to-ct-test"))
    assert panel.synthesize_button.isEnabled() and panel.synthesize_button.text() == "Synthesize CT from MR"
    card_text = panel.card.toPlainText()
    assert "output: synthetic CT (HU), always flagged SYNTHETIC" in card_text and "labels:" not in card_text
    assert all(banner_pixels(v) == 0 for v in views(viewer).values())  # the acquired MR: no banner

    with ai_job(qtbot, panel, panel.volume_ready, 60000) as blocker:
        panel.synthesize_button.click()
    sct = blocker.args[0]
    assert sct.is_synthetic and sct.synthetic.startswith("SYNTHETIC CT from MR by tiny-mr-to-ct-test")
    assert viewer.state.volume is sct and sct.same_grid(mr_vol) and sct.units == "HU"
    assert any(v is sct for v in viewer.session.volumes)
    assert not panel.synthesize_button.isEnabled()  # the shown image is now a CT

    def banner_in_every_view():
        for name, view in views(viewer).items():
            assert banner_pixels(view) > 500, f"no SYNTHETIC banner in the {name} view"

    qtbot.waitUntil(banner_in_every_view, timeout=5000)
    banner = viewer.views["axial"].slice_view.synthetic_banner
    assert banner.text.startswith(BANNER) and "CT from MR by tiny-mr-to-ct-test" in banner.text
    grab_window(viewer, artifacts / "synthetic_banner_window.png")
    # listed in the study browser beside the MR it was made from, flagged, once however often it is shown
    rows = [r for r in viewer.browser.series_rows() if r["series"] == "SYNTHETIC"]
    assert len(rows) == 1 and rows[0]["modality"] == "CT" and rows[0]["description"] == sct.description
    assert rows[0]["slices"] == str(sct.array.shape[0])
    viewer.show_volume(sct)
    assert len([r for r in viewer.browser.series_rows() if r["series"] == "SYNTHETIC"]) == 1

    # the acquired MR again, the synthetic CT fused over it: the banner names the overlay
    viewer.show_volume(mr_vol)
    assert all(banner_pixels(v) == 0 for v in views(viewer).values())
    assert not any(r["description"] == mr_vol.description and r["series"] == "made in this session"
                   for r in viewer.browser.series_rows())  # an image read from a file is not listed again
    item = viewer.browser.findItems("SYNTHETIC", Qt.MatchExactly | Qt.MatchRecursive)[0]
    viewer.browser.itemDoubleClicked.emit(item, 0)  # double-clicking its row shows it again
    assert viewer.state.volume is sct
    viewer.show_volume(mr_vol)
    viewer.fusion.set_moving(sct)

    def overlay_banner_in_every_slice_view():
        for name in ("axial", "coronal", "sagittal"):
            assert banner_pixels(viewer.views[name]) > 500, f"no banner for the fused overlay in the {name} view"
            assert viewer.views[name].slice_view.synthetic_banner.text.startswith(f"FUSED OVERLAY {BANNER}")

    qtbot.waitUntil(overlay_banner_in_every_slice_view, timeout=5000)
    assert banner_pixels(viewer.view3d) > 500
    grab_window(viewer, artifacts / "synthetic_banner_fused.png")
    viewer.set_layout("side-by-side")  # the moving frame and the rotating MIP of the moving volume too
    mip = viewer.fusion_control.mip_view
    qtbot.waitUntil(lambda: bool(mip.frames), timeout=30000)
    assert banner_pixels(viewer.fusion_control.moving_view) > 500
    frame = mip.pixmap().toImage()
    red = sum(frame.pixelColor(x, y).name() == "#d90000" for x in range(0, frame.width(), 2)
              for y in range(0, min(frame.height(), 60), 2))
    assert red > 50, "no banner over the MIP of the synthetic volume"
    grab_window(viewer, artifacts / "synthetic_banner_side_by_side.png")
    viewer.set_layout("2x2")
    viewer.fusion.set_moving(None)
    assert np.all([banner_pixels(v) == 0 for v in views(viewer).values()])
