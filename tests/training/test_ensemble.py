"""Ensembles (ai.nets.ensemble, ai.training.ensemble): the mean of the members' logits, its config (members must
agree on what the card promises), `radview train` on an ensemble config end to end (members trained, reused on
--resume, one folder that detects and explains), and the shipped detector being one."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import yaml

from ai.formats.builtin import build_network
from ai.registry import load_model
from ai.training.ensemble import EnsembleConfig, read_config
from viewer.cli import main
from viewer.core.errors import ConfigError, ModelError


def detector(channels) -> dict:
    return {"class": "CenterNetDetector3D", "args": {"in_channels": 1, "channels": channels, "head_channels": 4}}


def test_mean_ensemble_averages_its_members_logits_and_trains_them_all():
    torch.manual_seed(0)
    members = [detector([4, 8, 8, 8]), detector([4, 4, 8, 8])]
    net = build_network({"class": "MeanEnsemble", "args": {"members": members}})
    x = torch.rand(1, 1, 16, 16, 16)
    expected = (net.members[0](x) + net.members[1](x)) / 2
    assert torch.allclose(net(x), expected)
    assert not torch.allclose(net.members[0](x), net.members[1](x))  # two different networks
    net(x)[:, 0, 8, 8, 8].sum().backward()
    assert all(m.backbone.conv1.weight.grad.abs().sum() > 0 for m in net.members)
    assert list(net.state_dict())[0].startswith("members.0.")


@pytest.mark.parametrize("args", [{"members": [detector([4, 8, 8, 8])]}, {"members": "UNet"}, {"nets": []},
                                  {"members": [detector([4, 8, 8, 8]), {"class": "MeanEnsemble", "args": {}}]}])
def test_malformed_ensembles_are_refused(args):
    with pytest.raises(ModelError, match="bad arguments for MeanEnsemble"):
        build_network({"class": "MeanEnsemble", "args": args})


def member_config(member_id: str, channels, **changes) -> dict:
    """A tiny detector training config (2 PET phantoms, 1 epoch of 2 steps)."""
    config = {"id": member_id, "version": "0.0.1", "name": "tiny member", "task": "detection",
              "inputs": [{"modality": "PT", "name": "pet"}], "normalization": [{"kind": "suv", "max": 20}],
              "labels": {0: "background", 1: "lesion"}, "spacing": [4.0, 4.0, 4.0], "patch_size": [32, 32, 32],
              "network": detector(channels), "mirror_axes": [],
              "detection": {"kind": "heatmap", "threshold": 0.3, "min_distance_mm": 12.0},
              "data": {"train": [{"kind": "pet_ct_phantom", "seeds": [3, 5]}],
                       "validation": [{"kind": "pet_ct_phantom", "seeds": [6, 7]}]},
              "loss": "heatmap_focal", "epochs": 1, "iterations_per_epoch": 2, "batch_size": 1, "seed": 0,
              "early_stopping": {"metric": "froc_mean", "mode": "max"}}
    config.update(changes)
    return config


def ensemble_files(folder, member_changes=None, **changes):
    """Member configs a.yaml, b.yaml and the ensemble config ens.yaml in ``folder``; its path."""
    (folder / "a.yaml").write_text(yaml.safe_dump(member_config("tiny-a", [4, 8, 8, 8], **(member_changes or {}))))
    (folder / "b.yaml").write_text(yaml.safe_dump(member_config("tiny-b", [4, 4, 8, 8])))
    config = {"id": "tiny-ensemble", "version": "1.0.0", "name": "tiny ensemble", "ensemble": ["a.yaml", "b.yaml"],
              "operating_point": "validation",
              "data": {"validation": [{"kind": "pet_ct_phantom", "seeds": [8, 10]}]},
              "card": {"intended_use": "tests only"}}
    config.update(changes)
    path = folder / "ens.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_ensemble_config_is_read_and_checked(tmp_path):
    config = read_config(ensemble_files(tmp_path))
    assert isinstance(config, EnsembleConfig) and [m.id for m in config.members] == ["tiny-a", "tiny-b"]
    assert config.task == "detection" and config.detection == {"kind": "heatmap", "threshold": 0.3,
                                                               "min_distance_mm": 12.0}  # the first member's
    assert config.data == {"validation": [{"kind": "pet_ct_phantom", "seeds": [8, 10]}]}
    with pytest.raises(ConfigError, match=r"ens\.yaml.*unknown key\(s\) epochs"):
        read_config(ensemble_files(tmp_path, epochs=3))
    with pytest.raises(ConfigError, match=r"members must share spacing: b\.yaml"):
        read_config(ensemble_files(tmp_path, member_changes={"spacing": [3.0, 3.0, 3.0]}))
    with pytest.raises(ConfigError, match="member ids must differ"):
        read_config(ensemble_files(tmp_path, member_changes={"id": "tiny-b"}))
    with pytest.raises(ConfigError, match="only validation cases"):
        read_config(ensemble_files(tmp_path, data={"train": [{"kind": "pet_ct_phantom", "seeds": [1, 2]}]}))
    with pytest.raises(ConfigError, match="at least 2 member"):
        read_config(ensemble_files(tmp_path, ensemble=["a.yaml"]))
    with pytest.raises(ConfigError, match=r"c\.yaml: training config does not exist"):
        read_config(ensemble_files(tmp_path, ensemble=["a.yaml", "c.yaml"]))


def test_train_an_ensemble_end_to_end(tmp_path, capsys):
    """`radview train ENSEMBLE.yaml`: both members trained into OUT/members, one folder whose network is their mean,
    a threshold chosen on the ensemble's own validation cases; --resume reuses the members as they are, continues
    them with --epochs, but refuses a member whose config changed."""
    from ai.detection import run_detection
    from ai.explain import grad_cam
    from ai.training.pet_phantom import make_pet_case

    config, out = ensemble_files(tmp_path), tmp_path / "model"
    args = ["train", str(config), "--out", str(out), "--device", "cpu", "--threads", "1"]
    assert main(args) == 0
    members = {p.name: p for p in (out / "members").iterdir()}
    assert set(members) == {"tiny-a", "tiny-b"} and all((p / "model.json").is_file() for p in members.values())
    card = json.loads((out / "model.json").read_text())
    assert card["network"]["class"] == "MeanEnsemble" and len(card["network"]["args"]["members"]) == 2
    assert [m["id"] for m in card["training"]["members"]] == ["tiny-a", "tiny-b"]
    assert "an ensemble of 2 models" in card["training_data"] and "tiny-b (" in card["training_data"]
    threshold = card["detection"]["threshold"]
    assert all(m["data"].startswith("validation, threshold chosen on these cases by the acceptance rule: 2 case(s)")
               and f"threshold {threshold:g}" in m["data"] for m in card["metrics"])

    model = load_model(str(out))
    a, b = (load_model(str(members[n])) for n in ("tiny-a", "tiny-b"))
    x = torch.rand(1, 1, 16, 16, 16)
    with torch.no_grad():  # the shipped weights are exactly the members' (fp16) weights, averaged at run time
        assert torch.allclose(model.network(x), (a.network(x) + b.network(x)) / 2, atol=1e-6)
    pet = make_pet_case(6).pet
    assert run_detection(model, [pet], device="cpu").model_id == "tiny-ensemble"
    low = load_model(str(out))
    low.card.detection = {**low.card.detection, "threshold": 0.0}
    cam = grad_cam(low, [pet], 1)  # both members' evidence, summed
    assert "members.0." in cam.description and "members.1." in cam.description and np.isfinite(cam.array).all()

    stamp = {n: (p / "model.pt").stat().st_mtime_ns for n, p in members.items()}
    assert main([*args, "--resume"]) == 0  # nothing to train: both members reused
    assert {n: (p / "model.pt").stat().st_mtime_ns for n, p in members.items()} == stamp
    assert main([*args, "--resume", "--epochs", "2"]) == 0  # each member goes on from its checkpoint
    assert all(json.loads((p / "model.json").read_text())["training"]["epochs_run"] == 2 for p in members.values())
    stamp = {n: (p / "model.pt").stat().st_mtime_ns for n, p in members.items()}
    ensemble_files(tmp_path, member_changes={"seed": 1})  # member a's recipe changed: it cannot be reused
    capsys.readouterr()
    assert main([*args, "--resume"]) == 2
    assert "members/tiny-a: holds a model trained by another config than" in capsys.readouterr().err
    assert main(args) == 0  # trained again from scratch
    assert all((p / "model.pt").stat().st_mtime_ns != stamp[n] for n, p in members.items())
    assert json.loads((members["tiny-a"] / "model.json").read_text())["training"]["config"]["seed"] == 1


def test_segmentation_ensemble_chooses_its_post_processing(tiny_data, write_config, capsys):
    """Two tiny U-Nets on the tiny labelled CTs: the ensemble's post-processing is chosen on its own validation
    case, its metrics say so, and it segments through the app's path."""
    from ai.engine import run_segmentation
    from ai.training.ensemble import train_ensemble
    from tests.training.conftest import LABELS, TINY_NETWORK, files_entry, tiny_ct

    wider = {**TINY_NETWORK, "args": {**TINY_NETWORK["args"], "channels": [6, 8]}}
    a, b = write_config(id="tiny-a", epochs=1), write_config(id="tiny-b", epochs=1, network=wider)
    path = tiny_data / "organs-ensemble.yaml"
    path.write_text(yaml.safe_dump({
        "id": "tiny-organs-ensemble", "version": "1.0.0", "name": "tiny organ ensemble", "ensemble": [a.name, b.name],
        "data": {"validation": [files_entry(2)]},
        "postprocessing": {"thresholds": [], "min_component_mm3": [0], "largest_component": [False, True]}}))
    out = train_ensemble(read_config(path), tiny_data / "organs-ensemble", device="cpu", threads=1)
    card = json.loads((out / "model.json").read_text())
    chosen = card["postprocessing"]
    assert chosen["chosen_on"].startswith("1 case(s)") and chosen["search"]["largest_component"] == [False, True]
    assert set(chosen["validation_dice"]["argmax"]) == {n for k, n in LABELS.items() if k}
    assert card["metrics"] and all(m["data"].startswith("validation, post-processing chosen on these cases: 1 case")
                                   for m in card["metrics"])
    seg = run_segmentation(load_model(str(out)), [tiny_ct(2)[0]], device="cpu")
    assert seg.labels.array.shape == tiny_ct(2)[0].array.shape
    from ai.training.postprocessing import main as choose_for_folder

    capsys.readouterr()
    assert choose_for_folder(["--model", str(out), "--config", str(path)]) == 0  # chosen again by the ensemble's config
    assert json.loads(capsys.readouterr().out)["chosen_on"].startswith("1 case(s)")
    with pytest.raises(ConfigError, match="postprocessing is chosen for segmentation models only"):
        read_config(ensemble_files(tiny_data, postprocessing={"largest_component": [True]}))


@pytest.mark.parametrize("model_id", ["ct-abdomen-organs", "pet-lesion-detector"])
def test_shipped_ensembles_are_what_their_configs_describe(model_id):
    """Each shipped ensemble is the config its card names: same id and version, and either one MeanEnsemble member
    per member config in order, each member's recorded run trained by that member config, or (a fine-tuned
    ensemble) every weight initialised from the version the ensemble config of that id describes. Its outputs are
    the members' mean."""
    from ai.training.ensemble import same_recipe
    from tests.conftest import REPO

    model = load_model(model_id)
    config = read_config(REPO / model.card.training["config_file"])
    assert (model.card.id, model.card.version) == (config.id, config.version)
    ensemble = config
    if not isinstance(config, EnsembleConfig):  # fine-tuned as a whole from the ensemble of the same id
        ensemble = read_config(REPO / "ai" / "training" / "configs" / f"{model_id}.yaml")
        assert config.init.part == "all" and model.card.network == config.raw["network"]
        assert (model.card.parent["id"], model.card.parent["version"]) == (ensemble.id, ensemble.version)
        assert model.card.parent["tensors_copied"] == model.card.parent["tensors_target"]
    assert isinstance(ensemble, EnsembleConfig)
    assert model.card.network["args"]["members"] == [m.raw["network"] for m in ensemble.members]
    if config is ensemble:
        runs = model.card.training["members"]
        assert [r["id"] for r in runs] == [m.id for m in config.members]
        assert all(same_recipe(run["config"], member) for run, member in zip(runs, config.members, strict=True))
        assert not same_recipe(runs[0]["config"], config.members[1])  # the members differ (seed or width)
    x = torch.randn(1, 1, *model.card.patch_size)
    with torch.no_grad():
        mean = sum(m(x) for m in model.network.members) / len(model.network.members)
        assert torch.allclose(model.network(x), mean, atol=1e-5)
