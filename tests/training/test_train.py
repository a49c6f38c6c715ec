"""radview train on tiny data: a loadable model folder with a filled card, exact resume, early stopping."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from ai.training.config import TrainConfig
from ai.training.loop import CHECKPOINT, train
from tests.training.conftest import train_interrupted


def weights(folder):
    import torch

    return torch.load(folder / "model.pt", weights_only=True)


def test_two_step_training_writes_a_loadable_model_folder(write_config, tmp_path, capsys):
    from ai.engine import run_segmentation
    from ai.registry import load_model
    from tests.training.conftest import tiny_ct
    from viewer.cli import main

    config = write_config()
    out = tmp_path / "model"
    assert main(["train", str(config), "--out", str(out), "--threads", "1", "--device", "cpu"]) == 0
    assert "best epoch" in capsys.readouterr().out
    model = load_model(str(out))
    card = model.card
    assert card.id == "tiny-organs" and card.intended_use == "tests only"
    assert all(v.dtype.is_floating_point is False or str(v.dtype) == "torch.float16" for v in weights(out).values())
    names = {m["name"] for m in card.metrics}
    assert {"dice_liver", "dice_spleen", "mean_dice"} <= names
    assert all("validation" in m["data"] and "case2_labels.nii.gz" in m["data"] for m in card.metrics)
    run = card.training
    assert run["epochs_run"] == 2 and run["best_epoch"] in (1, 2) and run["device"] == "cpu"
    assert run["config"]["id"] == "tiny-organs" and run["config_file"] == str(config)
    assert [c["name"] for c in run["data"]["train"]["cases"]] == ["case0_labels.nii.gz", "case1_labels.nii.gz"]
    assert len(run["history"]) == 2 and card.parent == {}
    assert card.window_padding == "replicate"  # thin slabs padded as its patches were cut, validation included
    best = run["history"][run["best_epoch"] - 1]["metrics"]  # {name: value}; the cases are described once
    assert best == {m["name"]: m["value"] for m in card.metrics} and "case2" in run["data"]["validation"]["described"]
    rows = list(csv.DictReader(open(out / "training_log.csv")))
    assert [r["epoch"] for r in rows] == ["1", "2"] and "mean_dice" in rows[0]
    ct, _ = tiny_ct(2)
    labels = run_segmentation(model, [ct], device="cpu").labels
    assert labels.array.shape == ct.array.shape


def test_resume_continues_exactly_as_an_uninterrupted_run(write_config, tmp_path):
    config = TrainConfig.from_yaml(write_config(epochs=2))
    straight = train(config, tmp_path / "straight", device="cpu", threads=1)
    train_interrupted(config, tmp_path / "resumed")
    assert (tmp_path / "resumed" / CHECKPOINT).is_file() and not (tmp_path / "resumed" / "model.json").exists()
    resumed = train(config, tmp_path / "resumed", device="cpu", threads=1, resume=True)
    a, b = weights(straight), weights(resumed)
    assert a.keys() == b.keys() and all(np.array_equal(a[k].numpy(), b[k].numpy()) for k in a)
    history = [json.loads((f / "model.json").read_text())["training"]["history"] for f in (straight, resumed)]
    assert [h["train_loss"] for h in history[0]] == [h["train_loss"] for h in history[1]]


def test_resume_refuses_a_checkpoint_of_another_config(write_config, tmp_path):
    from viewer.core.errors import ConfigError

    train(TrainConfig.from_yaml(write_config(epochs=1)), tmp_path / "m", device="cpu", threads=1)
    other = TrainConfig.from_yaml(write_config(epochs=2, seed=5))
    with pytest.raises(ConfigError, match="another config"):
        train(other, tmp_path / "m", device="cpu", threads=1, resume=True)


def test_a_finished_run_resumed_with_a_postprocessing_search_gets_it_chosen_on_validation(write_config, tmp_path):
    out = train(TrainConfig.from_yaml(write_config(epochs=1)), tmp_path / "m", device="cpu", threads=1)
    trained = weights(out)
    search = {"thresholds": [0.5, 0.9], "min_component_mm3": [0, 50]}
    config = TrainConfig.from_yaml(write_config(epochs=1, postprocessing=search, card={"intended_use": "tests, 2"}))
    train(config, out, device="cpu", threads=1, resume=True)
    card = json.loads((out / "model.json").read_text())
    block = card["postprocessing"]
    assert block["chosen_on"].startswith("1 case(s)") and block["search"]["thresholds"] == [0.5, 0.9]
    assert set(block["validation_dice"]["argmax"]) <= {"liver", "spleen"}
    assert card["metrics"] and all("post-processing chosen on these cases" in m["data"] for m in card["metrics"])
    assert card["intended_use"] == "tests, 2" and card["training"]["config"]["postprocessing"] == search
    after = weights(out)
    assert all(np.array_equal(trained[k].numpy(), after[k].numpy()) for k in trained)


def test_postprocessing_chosen_for_a_model_folder_that_exists(write_config, tmp_path, capsys):
    from ai.training.postprocessing import main as choose_for_folder

    out = train(TrainConfig.from_yaml(write_config(epochs=1)), tmp_path / "m", device="cpu", threads=1)
    trained = weights(out)
    search = {"thresholds": [], "min_component_mm3": [0], "largest_component": [False, True]}
    config = write_config(epochs=1, postprocessing=search)
    before = (out / "model.json").read_text()
    assert choose_for_folder(["--model", str(out), "--config", str(config)]) == 0
    assert (out / "model.json").read_text() == before  # without --apply: printed only
    printed = json.loads(capsys.readouterr().out)
    assert printed["chosen_on"].startswith("1 case(s)") and set(printed["validation_dice"]) == {"argmax",
                                                                                                  "postprocessed"}
    assert choose_for_folder(["--model", str(out), "--config", str(config), "--apply"]) == 0
    card = json.loads((out / "model.json").read_text())
    assert card["postprocessing"]["search"]["largest_component"] == [False, True]
    rules = card["postprocessing"]["labels"].values()
    assert all(set(rule) <= {"min_component_mm3", "largest_component"} for rule in rules)
    assert card["metrics"] and all("post-processing chosen on these cases" in m["data"] for m in card["metrics"])
    assert all(np.array_equal(trained[k].numpy(), v.numpy()) for k, v in weights(out).items())
    assert choose_for_folder(["--model", str(tmp_path / "none"), "--config", str(config)]) == 2
    measured = card["metrics"]
    card["metrics"] = [{**m, "value": -1.0} for m in measured]  # stale numbers, e.g. from an older pipeline
    card["postprocessing"]["labels"] = {"liver": {"threshold": 0.9}}  # kept as it is, not chosen again
    (out / "model.json").write_text(json.dumps(card))
    capsys.readouterr()
    assert choose_for_folder(["--model", str(out), "--config", str(config), "--keep", "--apply"]) == 0
    kept = json.loads((out / "model.json").read_text())
    assert kept["postprocessing"] == card["postprocessing"]
    assert [m["name"] for m in kept["metrics"]] == [m["name"] for m in measured]
    assert all(m["value"] != -1.0 and "post-processing chosen on these cases" in m["data"] for m in kept["metrics"])
    assert json.loads(capsys.readouterr().out)["labels"] == {"liver": {"threshold": 0.9}}
    (out / "model.json").write_text(json.dumps({**card, "postprocessing": {}}))
    assert choose_for_folder(["--model", str(out), "--config", str(config), "--keep", "--apply"]) == 0
    plain = json.loads((out / "model.json").read_text())["metrics"]  # the argmax: nothing was chosen on them
    assert all(m["data"].startswith("validation (epoch ") and "chosen" not in m["data"] for m in plain)
    capsys.readouterr()
    assert choose_for_folder(["--model", "mr-to-ct-synth", "--config", str(config), "--keep"]) == 2
    assert "post-processing applies to segmentation models; mr-to-ct-synth is a translation model" in (
        capsys.readouterr().err)


def test_a_checkpoint_from_before_a_key_became_resumable_still_resumes(write_config, tmp_path):
    import torch

    out = train(TrainConfig.from_yaml(write_config(epochs=1)), tmp_path / "m", device="cpu", threads=1)
    ckpt = torch.load(out / CHECKPOINT, weights_only=True)
    older = json.loads(ckpt["config"])
    older["card"] = {"intended_use": "tests only"}  # an older radview exempted fewer keys (card was compared)
    ckpt["config"] = json.dumps(older, sort_keys=True)
    torch.save(ckpt, out / CHECKPOINT)
    train(TrainConfig.from_yaml(write_config(epochs=1, card={"intended_use": "tests, 2"})), out, device="cpu",
          threads=1, resume=True)
    assert json.loads((out / "model.json").read_text())["intended_use"] == "tests, 2"


def test_postprocessing_is_refused_for_a_translation_config(write_config):
    from viewer.core.errors import ConfigError

    with pytest.raises(ConfigError, match="segmentation models only"):
        TrainConfig.from_yaml(write_config(task="translation", labels={}, postprocessing={}))


def test_early_stopping_ends_the_run_when_validation_stops_improving(write_config, tmp_path):
    config = TrainConfig.from_yaml(write_config(epochs=6, optimizer={"lr": 0.0},
                                                early_stopping={"patience": 1, "metric": "mean_dice"}))
    out = train(config, tmp_path / "m", device="cpu", threads=1)
    run = json.loads((out / "model.json").read_text())["training"]
    assert run["epochs_run"] == 2 and run["best_epoch"] == 1
    assert run["stopped"].startswith("early stopping: mean_dice")
