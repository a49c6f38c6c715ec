"""After a crash the next start offers the journalled segmentation and restores it on its image."""

from __future__ import annotations

import numpy as np
import pytest

from viewer.core.session import Session

pytestmark = pytest.mark.gui


def test_start_after_crash_restores_the_segmentation(qtbot, demo_study, monkeypatch, tmp_path):
    from viewer.ui.main_window import MainWindow

    crashed = Session()  # RADVIEW_HOME is per test (tests/conftest.py)
    vol = crashed.open(demo_study.ct_dir)
    seg = crashed.new_segmentation(vol, "before the crash")
    crashed.paint(seg, 3, vol.index_to_world((128, 128, 50)), 8)
    crashed.flush()  # ... and the process dies without close()
    window = MainWindow()
    window.show_error_dialogs = False
    window.show()
    asked = []
    with qtbot.waitSignal(window.load_finished, timeout=30000):
        restored = window.offer_recovery(ask=lambda text: asked.append(text) or True)
    qtbot.wait(50)
    assert [r.name for r in restored] == ["before the crash"] and "before the crash" in asked[0]
    current = window.segment_panel.segmentation
    assert current is not None and np.array_equal(current.array, seg.array)
    assert window.state.labels is not None and np.array_equal(window.state.labels.array, seg.array)
    window.close()
    assert Session().recover() == []  # handled: not offered again
