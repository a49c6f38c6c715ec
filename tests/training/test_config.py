"""Training configs: a valid YAML parses into TrainConfig; every bad key or value is refused naming file and key."""

from __future__ import annotations

import pytest
import yaml

from ai.training.config import TrainConfig
from tests.training.conftest import files_entry, tiny_config
from viewer.core.errors import ConfigError


def write(tmp_path, data, name="config.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data) if not isinstance(data, str) else data)
    return path


def test_valid_config_parses_with_defaults_and_card(tmp_path):
    config = TrainConfig.from_yaml(write(tmp_path, tiny_config(early_stopping={"patience": 3})))
    assert config.labels == {0: "background", 1: "liver", 2: "spleen"}
    assert config.patch_size == [16, 16, 16] and config.epochs == 2 and config.early_stopping.patience == 3
    assert config.early_stopping.metric == "mean_dice" and config.sampling.balance_labels
    assert config.augmentation.rotate_deg == [0, 0, 10] and not config.augmentation.elastic
    assert config.base == tmp_path and config.path.name == "config.yaml"
    card = config.model_card()
    assert card.id == "tiny-organs" and card.intended_use == "tests only" and card.mirror_axes == []


def test_paths_expand_home_and_variables(tmp_path, monkeypatch):
    monkeypatch.setenv("H5_DATA", "/data/ct")
    entry = {**files_entry(0), "images": ["$H5_DATA/a.nii.gz", "~/b.nii.gz"]}
    config = TrainConfig.from_yaml(write(tmp_path, tiny_config(data={"train": [entry]})))
    images = config.data["train"][0]["images"]
    assert images[0] == "/data/ct/a.nii.gz" and not images[1].startswith("~")
    assert config.data["validation"] == []


@pytest.mark.parametrize("change, words", [
    ({"epoch": 3}, ["unknown key(s) epoch"]),
    ({"augmentation": {"rotate": [1, 2, 3]}}, ["augmentation: unknown key(s) rotate"]),
    ({"optimizer": {"lr": "fast"}}, ["optimizer.lr"]),
    ({"epochs": 0}, ["epochs must be a whole number >= 1"]),
    ({"patch_size": [16, 16]}, ["patch_size must be 3 positive whole numbers"]),
    ({"labels": {1: "liver"}}, ["labels need 0 (background)"]),
    ({"data": {"train": [], "validation": []}}, ["data.train lists no entries"]),
    ({"data": {"training": []}}, ["data must be {train"]),
    ({"init": {"from": "x", "part": "decoder"}}, ["init.part"]),
    ({"card": {"intended": "x"}}, ["card: unknown key(s) intended"]),
    ({"augmentation": {"flip_axes": [3]}}, ["augmentation.flip_axes"]),
    ({"normalization": []}, ["normalization must be a non-empty list"]),
    ({"postprocessing": {"thresholds": [0.5, 1.0]}}, ["postprocessing.thresholds must be numbers in (0, 1)"]),
    ({"postprocessing": {"min_component_mm3": []}}, ["postprocessing.min_component_mm3 must be volumes"]),
    ({"postprocessing": {"largest": True}}, ["postprocessing must be {thresholds"]),
    ({"postprocessing": {"largest_component": [True, "no"]}}, ["postprocessing.largest_component must be a list of"]),
    ({"postprocessing": {"min_component_confidence": [0, 1.2]}},
     ["postprocessing.min_component_confidence must be median probabilities in [0, 1)"]),
    ({"operating_point": "validation"}, ["operating_point is chosen for detection models only"]),
    ({"task": "detection", "operating_point": "best"}, ["operating_point must be 'validation'"]),
])
def test_bad_keys_and_values_name_the_file_and_the_key(tmp_path, change, words):
    path = write(tmp_path, tiny_config(**change))
    with pytest.raises(ConfigError) as err:
        TrainConfig.from_yaml(path)
    assert str(path) in str(err.value)
    for w in words:
        assert w in str(err.value)


def test_missing_key_invalid_yaml_and_missing_file(tmp_path):
    data = tiny_config()
    del data["network"]
    with pytest.raises(ConfigError, match="missing key.*network"):
        TrainConfig.from_yaml(write(tmp_path, data))
    with pytest.raises(ConfigError, match="not valid YAML"):
        TrainConfig.from_yaml(write(tmp_path, "id: [unclosed", "bad.yaml"))
    with pytest.raises(ConfigError, match="does not exist"):
        TrainConfig.from_yaml(tmp_path / "nope.yaml")


def test_radview_train_reports_a_bad_config_in_one_line(tmp_path, capsys):
    from viewer.cli import main

    path = write(tmp_path, tiny_config(epochz=1))
    assert main(["train", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(path) in err and "epochz" in err
    assert not (tmp_path / "out").exists()


def test_every_shipped_config_parses_and_each_trained_model_names_one():
    """The configs in ai/training/configs parse (an ensemble's members too), and each shipped model trained by
    radview train names its config, which still reads: `radview train` reproduces it."""
    import json

    from ai.training.ensemble import read_config
    from tests.conftest import REPO as root

    configs = sorted((root / "ai" / "training" / "configs").glob("*.yaml"))
    assert len(configs) >= 10
    for path in configs:
        read_config(path)
    for card in sorted((root / "resources" / "models").glob("*/model.json")):
        training = json.loads(card.read_text()).get("training") or {}
        if training.get("config_file"):
            config = read_config(root / training["config_file"])
            assert config.id == card.parent.name, card
