"""The edge head trains with the boundary loss when a config asks (edge_weight), and the block ablation runs
(smoke mode) on tiny data: four variants, one table."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ai.training.config import TrainConfig
from ai.training.loop import train
from viewer.core.errors import ConfigError

BLOCKS_NETWORK = {"class": "AttentionBlocksUNet", "args": {"spatial_dims": 3, "in_channels": 1, "out_channels": 3,
                                                           "channels": [4, 8], "block": "plain", "edge_head": True}}


def edge_head_weights(folder) -> dict:
    import torch

    return {k: v.float().numpy() for k, v in torch.load(folder / "model.pt", weights_only=True).items()
            if k.startswith("edge_head.")}


def test_edge_weight_trains_the_edge_head_and_needs_one(write_config, tmp_path):
    import torch

    from ai.formats.builtin import build_network

    trained = {w: edge_head_weights(train(TrainConfig.from_yaml(write_config(network=BLOCKS_NETWORK, edge_weight=w,
                                                                                epochs=1)),
                                          tmp_path / str(w), device="cpu", threads=1)) for w in (0.0, 0.5)}
    torch.manual_seed(0)  # the loop's seed: the untrained network
    initial = {k: v.numpy() for k, v in build_network(BLOCKS_NETWORK).state_dict().items() if k.startswith("edge_")}
    close = {w: all(np.allclose(initial[k], v, atol=1e-3) for k, v in trained[w].items()) for w in trained}
    assert close == {0.0: True, 0.5: False}  # only the boundary loss moves the edge head
    with pytest.raises(ConfigError, match="edge head"):
        train(TrainConfig.from_yaml(write_config(edge_weight=0.5)), tmp_path / "plain")


def test_block_ablation_smoke_writes_one_table_of_four_variants(write_config, tmp_path, capsys):
    from ai.training.block_ablation import VARIANTS, main

    out = tmp_path / "ablation"
    assert main([str(write_config()), "--out", str(out), "--smoke"]) == 0
    record = json.loads((out / "ablation.json").read_text())
    assert [r["variant"] for r in record["rows"]] == list(VARIANTS) == ["plain", "cbam", "cma", "plain+edge"]
    params = {r["variant"]: r["params"] for r in record["rows"]}
    assert all(params["plain"] < params[v] for v in ("cbam", "cma", "plain+edge"))
    assert all("mean_dice" in r["metrics"] and r["cpu_s"] > 0 for r in record["rows"])
    assert record["budget"]["epochs"] == 1 and "case2_labels.nii.gz" in record["data"]
    assert [r["edge_weight"] for r in record["rows"]] == [0.0, 0.0, 0.0, 0.5]
    table = (out / "ablation.md").read_text()
    assert table in capsys.readouterr().out and "SMOKE" in table
    assert [line.split("|")[1].strip() for line in table.splitlines()[-4:]] == list(VARIANTS)
