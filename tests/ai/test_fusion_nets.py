"""PET/CT fusion networks (ai.nets.fusion): shapes, gradients, separate modality streams, card loading."""

from __future__ import annotations

import pytest
import torch

from ai.formats.builtin import build_network
from ai.nets.fusion import DecisionFusionUNet, FeatureFusionUNet
from viewer.core.errors import ModelError

SMALL = {"spatial_dims": 3, "in_channels": 2, "out_channels": 2, "channels": [4, 8, 16]}


@pytest.mark.parametrize("cls", ["FeatureFusionUNet", "DecisionFusionUNet"])
def test_fusion_network_maps_ct_and_pet_to_logits_and_every_weight_gets_a_gradient(cls):
    torch.manual_seed(0)
    net = build_network({"class": cls, "args": SMALL})
    x = torch.randn(2, 2, 8, 16, 24)
    out = net(x)
    assert out.shape == (2, 2, 8, 16, 24)
    out[:, 1].mean().backward()
    missing = [name for name, p in net.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert missing == []


def test_input_level_fusion_is_a_monai_unet_on_the_stacked_channels():
    net = build_network({"class": "UNet", "args": {**SMALL, "strides": [2, 2], "num_res_units": 1}})
    assert net(torch.randn(1, 2, 8, 8, 8)).shape == (1, 2, 8, 8, 8)


def channel_gradients(forward) -> tuple[float, float]:
    """(size of the gradient of ``forward``'s output sum w.r.t. the CT channel, the same w.r.t. the PET channel)."""
    x = torch.randn(1, 2, 16, 16, 16, requires_grad=True)
    forward(x).sum().backward()
    return x.grad[:, 0].abs().sum().item(), x.grad[:, 1].abs().sum().item()


def test_decision_fusion_runs_one_network_per_modality():
    torch.manual_seed(0)
    net = DecisionFusionUNet(**SMALL)
    ct_grad, pet_grad = channel_gradients(lambda x: net.modality_logits(x)[0])
    assert pet_grad == 0 and ct_grad > 0  # the CT network never sees the PET
    ct_grad, pet_grad = channel_gradients(lambda x: net.modality_logits(x)[1])
    assert ct_grad == 0 and pet_grad > 0
    assert torch.equal(net.class_weights(), torch.full((2, 2), 0.5))  # starts as the mean of the two networks' logits
    x = torch.randn(1, 2, 16, 16, 16)
    ct, pet = net.modality_logits(x)
    assert torch.allclose(net(x), (ct + pet) / 2, atol=1e-6)


def test_feature_fusion_encoders_are_separate_until_fused():
    torch.manual_seed(0)
    net = FeatureFusionUNet(**SMALL)
    ct_stream = lambda x: net.encoder(x)[-1][:, :16]  # noqa: E731 - deepest CT encoder features
    ct_grad, pet_grad = channel_gradients(ct_stream)
    assert pet_grad == 0 and ct_grad > 0
    ct_grad, pet_grad = channel_gradients(net)
    assert pet_grad > 0 and ct_grad > 0  # the decoder sees both


@pytest.mark.parametrize("bad, message", [({"in_channels": 1}, "in_channels must be 2"),
                                          ({"channels": [8]}, "at least 2 levels"),
                                          ({"spatial_dims": 2}, "spatial_dims must be 3")])
def test_bad_arguments_are_a_model_error_naming_the_argument(bad, message):
    with pytest.raises(ModelError, match=message):
        build_network({"class": "FeatureFusionUNet", "args": {**SMALL, **bad}})


@pytest.mark.parametrize("cls", ["FeatureFusionUNet", "DecisionFusionUNet"])
def test_a_card_with_ct_and_pet_inputs_accepts_the_fusion_network(cls):
    from ai.model import LoadedModel, ModelCard

    card = ModelCard(id="f", version="1", name="f", task="segmentation",
                     inputs=[{"modality": "CT"}, {"modality": "PT"}],
                     normalization=[{"kind": "ct_window", "min": -1000, "max": 1000}, {"kind": "suv", "max": 20}],
                     labels={0: "background", 1: "lesion"}, network={"class": cls, "args": SMALL})
    LoadedModel(card, build_network(card.network)).check_network()  # raises on a channel mismatch
