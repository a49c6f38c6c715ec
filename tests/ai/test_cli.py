"""`radview models / segment / detect` end to end with the built-in model."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np

from viewer.cli import main
from viewer.commands.progress_bar import ProgressBar
from viewer.core.io import load_volume, save_volume
from viewer.core.io.labelmap import label_table_beside
from viewer.core.phantom import make_phantom


def test_models_json_lists_the_builtin_model(capsys):
    assert main(["models", "--json"]) == 0
    models = {m["id"]: m for m in json.loads(capsys.readouterr().out)["models"]}
    assert models["abdomen_ct_unet"]["modalities"] == ["CT"]
    assert models["abdomen_ct_unet"]["labels"]["1"] == "liver"


def test_segment_and_detect_write_outputs_on_the_image_grid(tmp_path, capsys):
    ct = make_phantom(3).ct
    image = tmp_path / "ct.nii.gz"
    save_volume(ct, image)
    out, probs = tmp_path / "labels.nii.gz", tmp_path / "probs.nii.gz"
    assert main(["segment", str(image), "--model", "abdomen_ct_unet", "--out", str(out), "--device", "cpu",
                 "--probabilities", str(probs), "--tta"]) == 0
    assert "model card allows no mirroring" in capsys.readouterr().err
    labels = load_volume(out)
    source = load_volume(image)
    assert labels.same_grid(source, tol=1e-4) and set(np.unique(labels.array)) >= {0, 1, 2}
    names, _ = label_table_beside(out)  # what the GUI and `radview stats` read beside a label file
    assert names == {1: "liver", 2: "spleen", 3: "kidney_left", 4: "kidney_right"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ct.nii.gz", "labels.json", "labels.nii.gz", "probs.nii.gz"]
    top = load_volume(probs)
    assert top.same_grid(source, tol=1e-4) and top.array.dtype == np.float32
    assert 0.2 <= top.array.min() and top.array.max() <= 1 + 1e-6  # probability of the chosen of 5 labels
    assert np.median(top.array[labels.array == 1]) > 0.9  # confident inside the liver
    found = tmp_path / "detections.json"
    assert main(["detect", str(image), "--model", "abdomen_ct_unet", "--out", str(found)]) == 0
    doc = json.loads(found.read_text())
    assert doc["coordinates"] == "LPS mm"
    liver = [d for d in doc["detections"] if d["name"] == "liver"]
    assert liver and all(len(d["center_mm"]) == 3 and len(d["box_mm"]) == 2 for d in liver)
    lo, hi = source.world_bounds()
    assert np.all(np.asarray(liver[0]["center_mm"]) >= lo) and np.all(np.asarray(liver[0]["center_mm"]) <= hi)


def test_unknown_model_and_missing_gpu_exit_with_a_message(tmp_path, capsys):
    import torch

    image = tmp_path / "ct.nii.gz"
    save_volume(make_phantom(3).ct, image)
    assert main(["segment", str(image), "--model", "nope", "--out", str(tmp_path / "x.nii.gz")]) == 2
    assert "no model with id 'nope'" in capsys.readouterr().err
    if not torch.cuda.is_available():
        assert main(["segment", str(image), "--model", "abdomen_ct_unet", "--out", str(tmp_path / "x.nii.gz"),
                     "--device", "cuda"]) == 2
        assert "no CUDA" in capsys.readouterr().err
    assert not (tmp_path / "x.nii.gz").exists()


class _Terminal(io.StringIO):
    """A text stream that says it is a terminal, as a real stderr on a tty does."""

    def isatty(self) -> bool:
        return True


def test_progress_bar_redraws_one_line_and_ends_it():
    term = _Terminal()
    bar = ProgressBar(width=10, stream=term)
    bar(0.0, "preparing")
    bar(0.5, "window 3/6")
    assert term.getvalue() == ("\r[..........]   0.0% preparing" + " " * 31 +
                               "\r[#####.....]  50.0% window 3/6" + " " * 30)
    bar.end_line()
    bar.end_line()  # only one newline
    assert term.getvalue().endswith(" \n") and term.getvalue().count("\n") == 1
    bar(1.0, "done")
    assert term.getvalue().endswith("100.0% done" + " " * 36 + "\n") and not bar.open
    quiet = io.StringIO()  # not a terminal: nothing drawn
    ProgressBar(stream=quiet)(0.5, "x")
    assert quiet.getvalue() == ""


def test_a_note_takes_the_bars_line_and_reaches_a_log_file():
    term = _Terminal()
    bar = ProgressBar(width=10, stream=term)
    bar(0.5, "epoch 1/2 step 5/10")
    bar.note("epoch 1/2 loss 0.5")
    drawn = term.getvalue().split("\r")
    assert drawn[-2].strip() == "" and drawn[-1] == "epoch 1/2 loss 0.5\n" and not bar.open  # in place of the bar
    assert len(drawn[-2]) == len(drawn[-3])  # every character of the bar blanked
    log_file = io.StringIO()
    quiet = ProgressBar(stream=log_file)
    quiet(0.5, "step")
    quiet.note("epoch 1/2 loss 0.5")
    assert log_file.getvalue() == "epoch 1/2 loss 0.5\n"


def test_ctrl_c_cancels_cleanly_without_partial_output(tmp_path):
    """SIGINT to a running `radview segment` on a terminal: exit 130, "radview: cancelled" on its own line
    after the progress bar, no output file (nor a temporary one) left."""
    import os
    import pty
    import select
    import signal
    import subprocess
    import sys
    import time

    image = tmp_path / "ct.nii.gz"
    save_volume(make_phantom(3).ct, image)
    out = tmp_path / "out" / "labels.nii.gz"
    out.parent.mkdir()
    primary, secondary = pty.openpty()
    radview = Path(sys.executable).parent / "radview"
    proc = subprocess.Popen([str(radview), "segment", str(image), "--model", "abdomen_ct_unet", "--out", str(out),
                             "--device", "cpu", "--probabilities", str(out.parent / "p.nii.gz")],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=secondary,
                            # a runner started in the background (``cmd &``) ignores SIGINT, and children inherit it
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    os.close(secondary)
    text, sent, deadline = b"", False, time.monotonic() + 300
    while proc.poll() is None and time.monotonic() < deadline:
        if select.select([primary], [], [], 0.1)[0]:
            try:
                text += os.read(primary, 4096)
            except OSError:
                break
        if not sent and b"window 2/" in text:
            proc.send_signal(signal.SIGINT)
            sent = True
    proc.wait(timeout=60)
    while select.select([primary], [], [], 0.2)[0]:
        try:
            chunk = os.read(primary, 4096)
        except OSError:
            break
        if not chunk:
            break
        text += chunk
    os.close(primary)
    stderr = text.decode(errors="replace")
    assert sent and proc.returncode == 130, stderr[-500:]
    assert "\r[" in stderr and "% window" in stderr  # the bar was drawn
    assert "\nradview: cancelled" in stderr.replace("\r\n", "\n")  # on a new line after the bar
    assert proc.stdout.read() == b"" and list(out.parent.iterdir()) == []
