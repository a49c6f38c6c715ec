"""Model formats: a real MONAI bundle (ConfigParser network_def + state dict or TorchScript) and the built-in card."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ai.engine import run_segmentation
from ai.registry import list_models, load_model, user_models_dir
from tests.ai.bundles import write_bundle
from viewer.core.errors import ModelError
from viewer.core.volume import Volume

NETWORK_DEF = {"_target_": "UNet", "spatial_dims": 3, "in_channels": 1, "out_channels": 3, "channels": [4, 8],
               "strides": [2], "num_res_units": 0}


def write_unet_bundle(folder, *, torchscript=False):
    """A MONAI bundle folder with a real UNet (random weights) as model.pt or model.ts; returns (folder, UNet)."""
    import torch
    from monai.networks.nets import UNet

    torch.manual_seed(0)
    net = UNet(**{k: v for k, v in NETWORK_DEF.items() if k != "_target_"}).eval()
    transforms = [{"_target_": "Spacingd", "keys": "image", "pixdim": [4.0, 4.0, 4.0]},
                  {"_target_": "ScaleIntensityRanged", "keys": "image", "a_min": -57, "a_max": 164, "b_min": 0.0,
                   "b_max": 1.0, "clip": True}]
    write_bundle(folder, net, NETWORK_DEF, transforms=transforms, roi_size=[16, 16, 16],
                 labels=["background", "liver", "spleen"], name="Tiny Bundle", version="0.2.0",
                 torchscript=torchscript, authors="tests", copyright="CC0")
    return folder, net


def _ct():
    arr = np.random.default_rng(1).integers(-1000, 300, (20, 30, 28)).astype(np.int16)
    return Volume(arr, spacing=(1.5, 1.5, 2.5), origin=(0, 0, 0), modality="CT", units="HU")


@pytest.mark.parametrize("torchscript", [False, True])
def test_monai_bundle_loads_card_and_weights(tmp_path, torchscript):
    import torch

    folder, net = write_unet_bundle(tmp_path / "bundle", torchscript=torchscript)
    model = load_model(str(folder))
    card = model.card
    assert card.format == "monai_bundle" and card.version == "0.2.0"
    assert card.labels == {0: "background", 1: "liver", 2: "spleen"}
    assert card.spacing == [4.0, 4.0, 4.0] and card.patch_size == [16, 16, 16]
    assert card.normalization == [{"kind": "ct_window", "min": -57.0, "max": 164.0, "b_min": 0.0, "b_max": 1.0,
                                   "clip": True}]
    x = torch.randn(1, 1, 16, 16, 16)
    with torch.inference_mode():
        assert torch.allclose(model.network(x), net(x), atol=1e-5)
    vol = _ct()
    assert run_segmentation(model, [vol], device="cpu").labels.same_grid(vol)


def test_broken_bundles_name_the_problem(tmp_path):
    folder, _ = write_unet_bundle(tmp_path / "bundle")
    (folder / "models" / "model.pt").write_text("text, not weights")
    with pytest.raises(ModelError, match="not a PyTorch weights file"):
        load_model(str(folder))
    (folder / "models" / "model.pt").unlink()
    with pytest.raises(ModelError, match="neither models/model.pt nor models/model.ts"):
        load_model(str(folder))
    (folder / "configs" / "inference.json").unlink()
    with pytest.raises(ModelError, match="inference.json is missing"):
        load_model(str(folder))


def test_builtin_card_is_complete():
    cards = {c.id: c for c in list_models()}
    card = cards["abdomen_ct_unet"]
    assert card.task == "segmentation" and card.modalities == ["CT"]
    assert set(card.labels.values()) >= {"liver", "spleen", "kidney_left", "kidney_right"}
    for field in ("training_data", "intended_use", "limitations", "license", "authors"):
        assert getattr(card, field), field
    assert "not for clinical use" in card.intended_use.lower()
    assert all({"name", "value", "data"} <= set(m) for m in card.metrics) and card.metrics


def test_user_folder_models_are_listed(tmp_path):
    from tests.ai.conftest import write_model

    write_model(tmp_path / "mine" / "tiny")
    assert "tiny_builtin" in [c.id for c in list_models(tmp_path / "mine")]


def test_bundle_in_the_user_folder_is_listed_without_loading_weights(tmp_path):
    write_unet_bundle(tmp_path / "mine" / "bundle")
    (tmp_path / "mine" / "bundle" / "models" / "model.pt").write_bytes(b"not weights")  # never read by the list
    (card,) = [c for c in list_models(tmp_path / "mine") if c.format == "monai_bundle"]
    assert card.id == "tiny_bundle" and card.labels[1] == "liver"


def test_loading_a_bundle_by_id_builds_its_preprocessing_once(monkeypatch):
    """The id lookup reads metadata.json only; the load builds inference.json's preprocessing, inferer and network
    once, with one ConfigParser."""
    from monai.bundle import ConfigParser

    write_unet_bundle(user_models_dir() / "bundle")
    built, parse = [], ConfigParser.get_parsed_content

    def counted(self, key="", **kwargs):
        built.append(key)
        return parse(self, key, **kwargs)

    monkeypatch.setattr(ConfigParser, "get_parsed_content", counted)
    assert load_model("tiny_bundle").card.id == "tiny_bundle"
    assert built == ["preprocessing", "inferer", "network_def"]


def test_a_bundle_whose_preprocessing_breaks_is_found_by_id_and_named():
    folder, _ = write_unet_bundle(user_models_dir() / "bundle")
    inference = json.loads((folder / "configs" / "inference.json").read_text())
    inference["preprocessing"]["transforms"].append({"_target_": "NoSuchTransformd", "keys": "image"})
    (folder / "configs" / "inference.json").write_text(json.dumps(inference))
    with pytest.raises(ModelError, match=r"inference\.json: cannot build preprocessing"):
        load_model("tiny_bundle")
