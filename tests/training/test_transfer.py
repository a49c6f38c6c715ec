"""Transfer learning copies encoder tensors (by name, else by order of same-shape kernels) and refuses misfits."""

from __future__ import annotations

import pytest
import torch

from ai.formats.builtin import build_network
from ai.training.transfer import encoder_names, initialise
from tests.training.conftest import TINY_NETWORK, tiny_model_folder
from viewer.core.errors import ModelError

PATCH = (16, 16, 16)
UNET = {"class": "UNet", "args": {**TINY_NETWORK["args"], "channels": [4, 8, 16], "strides": [2, 2]}}
ATTENTION = {"class": "AttentionUnet", "args": {"spatial_dims": 3, "in_channels": 1, "out_channels": 3,
                                                "channels": [4, 8, 16], "strides": [2, 2]}}


def test_encoder_of_our_model_is_copied_by_name(tmp_path):
    parent = tiny_model_folder(tmp_path / "parent", UNET, seed=1)
    source = {k: v.float() for k, v in torch.load(parent / "model.pt", weights_only=True).items()}
    torch.manual_seed(2)
    net = build_network(UNET)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    record = initialise(net, str(parent), "encoder", PATCH)
    encoder = encoder_names(net, PATCH)
    state = net.state_dict()
    assert record["id"] == "tiny-parent" and record["tensors_copied"] == record["copied_by_name"] == len(encoder)
    assert all(torch.equal(state[k], source[k]) for k in encoder)
    decoder = [k for k in state if k not in encoder]
    assert decoder and all(torch.equal(state[k], before[k]) for k in decoder)  # the decoder is left alone
    assert all(".submodule.2" not in k and not k.startswith("model.2") for k in encoder)  # up path of MONAI UNet


def test_from_an_ensemble_the_first_member_is_copied_whole_and_named(tmp_path):
    """Not a mix of members: ``part: all`` gives member 0's network exactly, and the card's parent says so."""
    ensemble = {"class": "MeanEnsemble", "args": {"members": [UNET, UNET]}}
    parent = tiny_model_folder(tmp_path / "ensemble", ensemble, seed=1)
    source = {k: v.float() for k, v in torch.load(parent / "model.pt", weights_only=True).items()}
    for part in ("encoder", "all"):
        torch.manual_seed(2)
        net = build_network(UNET)
        record = initialise(net, str(parent), part, PATCH)
        assert record["member"]["index"] == 0 and record["member"]["network"] == UNET
        assert record["tensors_copied"] == record["copied_by_name"] == record["tensors_target"]
        state = net.state_dict()
        copied = encoder_names(net, PATCH) if part == "encoder" else list(state)
        assert all(torch.equal(state[k], source[f"members.0.{k}"]) for k in copied)
        assert not all(torch.equal(state[k], source[f"members.1.{k}"]) for k in copied)


def test_an_ensemble_goes_whole_into_an_ensemble(tmp_path):
    """Fine-tuning an ensemble (``part: all`` into the same MeanEnsemble) starts from every member, member i from
    member i: not member 0 in the first slot and random weights in the others."""
    ensemble = {"class": "MeanEnsemble", "args": {"members": [UNET, UNET]}}
    parent = tiny_model_folder(tmp_path / "ensemble", ensemble, seed=1)
    source = {k: v.float() for k, v in torch.load(parent / "model.pt", weights_only=True).items()}
    torch.manual_seed(2)
    net = build_network(ensemble)
    record = initialise(net, str(parent), "all", PATCH)
    assert "member" not in record and record["tensors_copied"] == record["copied_by_name"] == len(source)
    assert all(torch.equal(v, source[k]) for k, v in net.state_dict().items())


@pytest.mark.parametrize("prefix", ["module.", "_orig_mod."])
def test_a_checkpoint_saved_from_a_wrapped_network_is_copied_by_name(tmp_path, prefix):
    """DataParallel (``module.``) and torch.compile (``_orig_mod.``) checkpoints name every tensor with a prefix:
    without it they match the network by name (norm parameters included), not by kernel order alone."""
    torch.manual_seed(0)
    unet = build_network(UNET)
    path = tmp_path / "wrapped.pth"
    torch.save({"state_dict": {prefix + k: v for k, v in unet.state_dict().items()}}, path)
    torch.manual_seed(1)
    net = build_network(UNET)
    record = initialise(net, str(path), "all", PATCH)
    assert record["tensors_copied"] == record["copied_by_name"] == len(net.state_dict())
    assert all(torch.equal(v, unet.state_dict()[k]) for k, v in net.state_dict().items())


def test_unet_encoder_goes_into_an_attention_unet_by_order(tmp_path):
    torch.manual_seed(0)
    unet = build_network(UNET)
    path = tmp_path / "unet_checkpoint.pt"
    torch.save({"state_dict": unet.state_dict()}, path)  # a MONAI-style checkpoint file
    net = build_network(ATTENTION)
    record = initialise(net, str(path), "encoder", PATCH)
    assert record["tensors_copied"] >= 6 and record["copied_by_name"] == 0 and record["file"] == str(path)
    copied_kernel = net.state_dict()["model.0.conv.0.conv.weight"]
    assert torch.equal(copied_kernel, unet.state_dict()["model.0.conv.unit0.conv.weight"])


def test_a_state_dict_that_fits_nothing_is_refused(tmp_path):
    path = tmp_path / "resnet2d.pt"
    torch.save({"conv1.weight": torch.zeros(64, 3, 7, 7), "fc.weight": torch.zeros(1000, 512)}, path)
    with pytest.raises(ModelError, match="no tensor of its encoder fits"):
        initialise(build_network(UNET), str(path), "encoder", PATCH)
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ModelError, match="not a PyTorch state-dict file"):
        initialise(build_network(UNET), str(tmp_path / "junk.pt"), "encoder", PATCH)


def test_transfer_gain_trains_both_runs_and_writes_the_comparison_into_the_card(write_config, tmp_path):
    import json

    from ai.training.transfer_gain import main

    parent = tiny_model_folder(tmp_path / "parent")
    config = write_config(epochs=1, init={"from": str(parent), "part": "encoder"})
    assert main([str(config), "--out", str(tmp_path / "gain"), "--threads", "1", "--device", "cpu"]) == 0
    card = json.loads((tmp_path / "gain" / "transfer" / "model.json").read_text())
    assert card["parent"]["id"] == "tiny-parent" and card["parent"]["how"] == "init encoder"
    assert card["parent"]["tensors_copied"] > 0 and len(card["parent"]["weights_sha256"]) == 64
    scratch = json.loads((tmp_path / "gain" / "scratch" / "model.json").read_text())
    assert scratch["parent"] == {}
    comparison = card["comparisons"][0]
    assert [r["label"].split()[0] for r in comparison["runs"]] == ["init", "from"]
    assert comparison["budget"]["epochs"] == 1 and "case2_labels.nii.gz" in comparison["data"]
    values = [{m["name"]: m["value"] for m in r["metrics"]} for r in comparison["runs"]]
    assert comparison["gain"]["mean_dice"] == round(values[0]["mean_dice"] - values[1]["mean_dice"], 4)
