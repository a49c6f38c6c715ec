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


def torchvision_resnet18_state() -> dict:
    """A state dict in torchvision's resnet18 format (keys and shapes), random: MONAI's 2-D ResNet names its
    modules as torchvision does (torchvision itself does not import with this torch)."""
    from monai.networks.nets import ResNet

    torch.manual_seed(3)
    net = ResNet("basic", [2, 2, 2, 2], [64, 128, 256, 512], spatial_dims=2, n_input_channels=3, conv1_t_size=7,
                 conv1_t_stride=2, num_classes=1000)
    state = {k: v.normal_() if v.is_floating_point() else v for k, v in net.state_dict().items()
             if not k.endswith("downsample.0.bias")}  # torchvision's shortcut convolutions have no bias
    torchvision_shapes = {"conv1.weight": (64, 3, 7, 7), "bn1.running_var": (64,), "fc.weight": (1000, 512),
                          "layer1.1.conv2.weight": (64, 64, 3, 3), "layer2.0.downsample.0.weight": (128, 64, 1, 1),
                          "layer4.1.bn2.num_batches_tracked": ()}
    assert {k: tuple(state[k].shape) for k in torchvision_shapes} == torchvision_shapes and len(state) == 122
    return state


def test_a_2d_kernel_is_inflated_so_that_a_volume_constant_in_depth_gives_its_2d_response():
    from ai.training.transfer import fits, fitted

    kernel = torch.randn(4, 3, 3, 3)  # RGB in, 3x3
    assert fits(kernel.shape, (4, 1, 5, 3, 3)) and fits(kernel.shape, (4, 3, 3, 3, 3))
    assert not fits(kernel.shape, (4, 2, 3, 3, 3)) and not fits(kernel.shape, (4, 1, 3, 5, 5))
    inflated = fitted(kernel, (4, 1, 5, 3, 3))
    image = torch.randn(1, 1, 12, 12)
    volume = image[:, :, None].expand(1, 1, 9, 12, 12)  # the image on every slice
    response = torch.nn.functional.conv3d(volume, inflated, padding=(0, 1, 1))
    expected = torch.nn.functional.conv2d(image.expand(1, 3, 12, 12), kernel, padding=1)  # grey in all 3 colours
    assert torch.allclose(response[:, :, 2], expected, atol=1e-5)


def test_a_torchvision_resnet_initialises_a_3d_resnet_backbone(tmp_path):
    """A torchvision-format 2-D ResNet-18 state dict into the detector's 3-D ResNet backbone held as ``backbone.``:
    every tensor of its residual stages by name under that prefix, kernels inflated, norm statistics kept."""
    from ai.nets.detector import CenterNetDetector3D

    state = torchvision_resnet18_state()
    path = tmp_path / "resnet18.pth"
    torch.save(state, path)
    net = CenterNetDetector3D(channels=[64, 128, 256, 512], layers=[2, 2, 2, 2], head_channels=8)
    stem = net.backbone.conv1.weight.detach().clone()
    record = initialise(net, str(path), "encoder", PATCH)
    own = net.state_dict()
    staged = [k for k in state if k.startswith("layer")]
    assert all(torch.equal(own[f"backbone.{k}"], state[k]) for k in staged if state[k].ndim != 4)
    assert all(torch.allclose(own[f"backbone.{k}"].sum(2), state[k], atol=1e-5) for k in staged if state[k].ndim == 4)
    assert torch.equal(own["backbone.conv1.weight"], stem)  # its 3x3x3 stem fits no 7x7 kernel: left alone
    assert record["inflated_from_2d"] == 19  # 16 block convolutions and 3 shortcut projections
    assert record["copied_by_name"] >= len(staged) and record["file"] == str(path)
