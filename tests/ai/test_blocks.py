"""Attention blocks (CBAM, convolution + self-attention), the edge head and its boundary loss, and the U-Net that
selects them from a config: shapes, gradients, what each block is for, inference unchanged by an edge head, and a
2-step training run through radview's training pipeline."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import yaml

from ai.nets.blocks import CBAM3d, ConvSelfAttention3d, EdgeHead
from ai.nets.edges import edge_loss, label_boundaries
from ai.nets.unet_variants import AttentionBlocksUNet


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    yield
    torch.set_num_threads(threads)


def tiny_net(**args) -> AttentionBlocksUNet:
    return AttentionBlocksUNet(3, 1, 3, channels=[8, 16, 32], **args)


@pytest.mark.parametrize("block", ["plain", "cbam", "cma"])
@pytest.mark.parametrize("where", ["encoder", "decoder", "both"])
def test_unet_keeps_the_patch_shape_for_every_block_and_place(block, where):
    net = tiny_net(block=block, where=where, edge_head=True)
    x = torch.randn(2, 1, 16, 16, 16)
    assert net(x).shape == (2, 3, 16, 16, 16)
    seg, edges = net.forward_with_edges(x)
    assert seg.shape == (2, 3, 16, 16, 16) and edges.shape == (2, 1, 16, 16, 16)
    assert torch.allclose(seg, net(x), atol=1e-6)  # the edge head does not change the segmentation


@pytest.mark.parametrize("block", ["cbam", "cma"])
def test_every_weight_gets_a_gradient_from_segmentation_plus_edge_loss(block):
    net = tiny_net(block=block, edge_head=True)
    labels = torch.zeros(1, 1, 16, 16, 16, dtype=torch.long)
    labels[:, :, 4:12, 4:12, 4:12] = 1
    seg, edges = net.forward_with_edges(torch.randn(1, 1, 16, 16, 16))
    loss = torch.nn.functional.cross_entropy(seg, labels[:, 0]) + edge_loss(edges, labels)
    loss.backward()
    for name, p in net.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    attention = [p.grad.abs().sum() for n, p in net.named_parameters() if "attention." in n]
    assert attention and all(g > 0 for g in attention)


def test_cbam_gates_features_between_zero_and_themselves():
    x = torch.randn(2, 8, 6, 6, 6)
    out = CBAM3d(8)(x)
    assert out.shape == x.shape
    assert torch.all(out.abs() <= x.abs() + 1e-6) and not torch.allclose(out, x)


def test_self_attention_block_sees_the_whole_patch_a_convolution_does_not():
    """A voxel change in one corner moves the CMA output in the opposite corner (global context); a 3x3x3
    convolution's output there stays put."""
    block = ConvSelfAttention3d(8, heads=4).eval()
    conv = torch.nn.Conv3d(8, 8, 3, padding=1)
    x = torch.randn(1, 8, 16, 16, 16)
    y = x.clone()
    y[..., 0, 0, 0] += 10.0
    with torch.no_grad():
        far_cma = (block(y) - block(x))[..., -1, -1, -1].abs().max()
        far_conv = (conv(y) - conv(x))[..., -1, -1, -1].abs().max()
    assert far_cma > 1e-4 and far_conv == 0


def test_block_arguments_are_checked_with_the_argument_named():
    with pytest.raises(ValueError, match="block must be one of plain, cbam, cma"):
        tiny_net(block="transformer")
    with pytest.raises(ValueError, match="where must be one of"):
        tiny_net(where="bottleneck")
    with pytest.raises(ValueError, match="divisible by heads"):
        ConvSelfAttention3d(6, heads=4)


def test_label_boundaries_mark_both_sides_of_every_label_edge():
    labels = torch.zeros(1, 1, 12, 12, 12, dtype=torch.uint8)
    labels[..., 3:9, 3:9, 3:9] = 1
    labels[..., 3:9, 3:9, 6:9] = 2  # an organ / organ border inside the object
    edges = label_boundaries(labels)[0, 0]
    assert edges[6, 6, 2] == 1 and edges[6, 6, 3] == 1  # background | label 1, both sides
    assert edges[6, 6, 5] == 1 and edges[6, 6, 6] == 1  # label 1 | label 2, both sides
    assert edges[6, 6, 0] == 0 and edges[6, 6, 4] == 0 and edges[6, 6, 7] == 0  # away from any border
    assert edges.sum() < 0.5 * edges.numel()


def test_edge_loss_is_low_for_the_true_boundaries_and_high_for_their_inverse():
    labels = torch.zeros(1, 1, 12, 12, 12, dtype=torch.uint8)
    labels[..., 3:9, 3:9, 3:9] = 1
    truth = label_boundaries(labels)
    right, wrong = edge_loss(10 * (2 * truth - 1), labels), edge_loss(-10 * (2 * truth - 1), labels)
    assert right < 0.01 < 1.0 < wrong


def test_edge_head_predicts_one_channel():
    assert EdgeHead(8)(torch.randn(1, 8, 4, 4, 4)).shape == (1, 1, 4, 4, 4)


def test_a_model_with_an_edge_head_loads_and_segments_through_the_engine(tmp_path):
    """The card's labels fit the segmentation output (the edge head's channel is not mistaken for it) and the
    engine's sliding window gets the segmentation logits only."""
    from ai.engine import run_segmentation
    from ai.formats.builtin import build_network
    from ai.registry import load_model
    from tests.ai.conftest import write_model
    from tests.training.conftest import tiny_ct

    network = {"class": "AttentionBlocksUNet", "args": {"spatial_dims": 3, "in_channels": 1, "out_channels": 3,
                                                        "channels": [4, 8], "block": "cma", "edge_head": True}}
    folder = write_model(tmp_path / "edge", out_channels=3, network=network)
    torch.save({k: v.half() for k, v in build_network(network).state_dict().items()}, folder / "model.pt")
    model = load_model(str(folder))
    assert isinstance(model.network, AttentionBlocksUNet) and model.network.edge_head is not None
    ct, _ = tiny_ct(0)
    result = run_segmentation(model, [ct], device="cpu")
    assert result.labels.same_grid(ct) and set(np.unique(result.labels.array)) <= {0, 1, 2}


@pytest.mark.parametrize("block", ["cbam", "cma"])
def test_two_training_steps_through_the_pipeline_give_a_loadable_model(block, tmp_path):
    from ai.registry import load_model
    from ai.training.config import TrainConfig
    from ai.training.loop import train
    from tests.training.conftest import LABELS, tiny_config, tiny_ct
    from viewer.core.io import save_volume
    from viewer.core.io.labelmap import save_labelmap

    for i in range(3):
        ct, lab = tiny_ct(i)
        save_volume(ct, tmp_path / f"case{i}_ct.nii.gz")
        save_labelmap(lab, tmp_path / f"case{i}_labels.nii.gz", {k: v for k, v in LABELS.items() if k})
    network = {"class": "AttentionBlocksUNet", "args": {"spatial_dims": 3, "in_channels": 1, "out_channels": 3,
                                                        "channels": [4, 8], "block": block, "edge_head": True}}
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(tiny_config(network=network, epochs=1, iterations_per_epoch=2)))
    out = train(TrainConfig.from_yaml(config), tmp_path / "model", device="cpu", threads=1)
    model = load_model(str(out))
    assert model.card.network["args"]["block"] == block and model.card.training["epochs_run"] == 1
    assert {m["name"] for m in model.card.metrics} >= {"mean_dice"}
