"""'Improve this model with my corrected masks' in a real window: enabled once a segmentation with the model's label
names is shown, fine-tunes in a worker with progress, lists and selects the new version from the user model folder,
leaves the parent untouched; Cancel leaves nothing behind."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from ai.registry import BUILTIN_DIR
from tests.ui.conftest import ai_job

pytestmark = pytest.mark.gui
MODEL = "abdomen_ct_unet"
TIMEOUT = 600000


def _digest(folder) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


@pytest.fixture
def corrected(viewer, open_and_wait, demo_study, qtbot, tmp_path, monkeypatch):
    """(window, user models folder): the demo CT, the built-in organ model's segmentation of it shown and
    corrected by hand (a liver brush dab), the user's models folder empty."""
    monkeypatch.setenv("RADVIEW_HOME", str(tmp_path))
    viewer.ai_panel.refresh()
    open_and_wait(viewer, demo_study.ct_dir)
    panel = viewer.ai_panel
    panel.models.setCurrentRow(panel.model_ids.index(MODEL))
    assert not panel.finetune.button.isEnabled()  # no segmentation shown yet
    with ai_job(qtbot, panel, panel.segmentation_ready, TIMEOUT) as blocker:
        panel.run_model()
    seg = blocker.args[0]
    liver = next(k for k, v in seg.table.names().items() if v == "liver")
    k, j, i = np.argwhere(seg.array == liver).mean(axis=0).astype(int)
    seg.array[k, j - 3:j + 3, i - 3:i + 3] = liver  # a hand correction
    return viewer, tmp_path / "models"


@pytest.mark.slow
def test_finetune_from_the_panel_lists_the_new_version_and_leaves_the_parent(corrected, qtbot, artifacts):
    from viewer.ui.app import grab_window

    viewer, user_models = corrected
    panel = viewer.ai_panel
    button = panel.finetune.button
    assert button.isEnabled() and "liver" in button.toolTip()
    parent_before = _digest(BUILTIN_DIR / MODEL)
    panel.finetune.epochs.setValue(1)
    progress = []
    panel.job_done.connect(lambda what: progress.append(("done", what)))
    with ai_job(qtbot, panel, panel.job_done, TIMEOUT):
        button.click()
        assert panel.worker is not None and panel.cancel_button.isEnabled()
        panel.worker.progress.connect(lambda f, m: progress.append((f, m)))
    assert any(isinstance(f, float) and 0 < f < 1 for f, _ in progress)  # reported while it trained
    (folder,) = list(user_models.iterdir())
    card = json.loads((folder / "model.json").read_text())
    parent = json.loads((BUILTIN_DIR / MODEL / "model.json").read_text())
    assert card["id"] == MODEL and card["version"].startswith(f"{parent['version']}-ft.")
    assert card["parent"]["id"] == MODEL and card["parent"]["how"] == "finetune"
    assert panel.model_ids.count(MODEL) == 2  # listed beside its parent ...
    assert panel.current_model_path == str(folder) and panel.current_card.version == card["version"]  # ... selected
    assert "new version" in panel.status.text()
    assert _digest(BUILTIN_DIR / MODEL) == parent_before  # the parent untouched
    grab_window(viewer, artifacts / "finetune_new_version.png")


def test_cancelled_finetune_leaves_no_version(corrected, qtbot):
    viewer, user_models = corrected
    panel = viewer.ai_panel
    with qtbot.waitSignal(panel.failed, timeout=TIMEOUT) as blocker:
        panel.finetune.button.click()
        panel.worker.progress.connect(lambda f, m: panel.cancel())
    assert "cancelled" in blocker.args[0]
    assert not user_models.exists() or not any(user_models.iterdir())
    assert panel.finetune.button.isEnabled()  # ready to try again
