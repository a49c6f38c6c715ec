"""Mixed precision (AMP) in training: autocast + gradient scaling when asked (on CUDA by default), recorded in the
card and kept on resume."""

from __future__ import annotations

import json

import pytest
import torch

from ai.training.precision import amp_default, autocast, grad_scaler
from viewer.cli import main

CPU = torch.device("cpu")


def test_autocast_follows_the_scaler():
    layer, x = torch.nn.Linear(4, 4), torch.ones(2, 4)
    with autocast(CPU, grad_scaler(CPU, True)):
        assert layer(x).dtype == torch.bfloat16  # CPU autocast
    with autocast(CPU, grad_scaler(CPU, False)):
        assert layer(x).dtype == torch.float32
    assert amp_default(torch.device("cuda")) and not amp_default(CPU)


def test_a_run_with_amp_scales_gradients_records_it_and_resumes_only_with_it(write_config, tmp_path, capsys):
    config, out = str(write_config(epochs=1)), tmp_path / "m"
    assert main(["train", config, "--out", str(out), "--device", "cpu", "--threads", "1", "--amp"]) == 0
    card = json.loads((out / "model.json").read_text())
    assert card["training"]["amp"] is True and card["metrics"]
    checkpoint = torch.load(out / "checkpoint.pt", weights_only=True)
    assert checkpoint["scaler"]["scale"] > 0  # an enabled scaler saves its state
    assert all(torch.isfinite(v).all() for v in torch.load(out / "model.pt", weights_only=True).values()
               if v.is_floating_point())
    capsys.readouterr()
    assert main(["train", config, "--out", str(out), "--device", "cpu", "--threads", "1", "--resume", "--epochs",
                 "2", "--no-amp"]) == 2
    assert "used mixed precision (AMP): resume it with --amp" in capsys.readouterr().err
    assert main(["train", config, "--out", str(out), "--device", "cpu", "--threads", "1", "--resume", "--epochs",
                 "2", "--amp"]) == 0
    assert json.loads((out / "model.json").read_text())["training"]["epochs_run"] == 2


def test_a_cpu_run_uses_float32_unless_told(write_config, tmp_path, capsys):
    out = tmp_path / "m"
    assert main(["train", str(write_config(epochs=1)), "--out", str(out), "--device", "cpu", "--threads", "1"]) == 0
    err = capsys.readouterr().err  # not a terminal: no bar, but a line per epoch, once (not again through logging)
    assert err.count("epoch 1/1 loss ") == 1, err
    assert json.loads((out / "model.json").read_text())["training"]["amp"] is False
    assert torch.load(out / "checkpoint.pt", weights_only=True)["scaler"] == {}


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here")
def test_a_cuda_run_uses_amp_by_default(write_config, tmp_path):
    out = tmp_path / "m"
    assert main(["train", str(write_config(epochs=1)), "--out", str(out), "--device", "cuda"]) == 0
    assert json.loads((out / "model.json").read_text())["training"]["amp"] is True
