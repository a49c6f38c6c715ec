"""Adversarial segmentation (ct-abdomen-organs-gan's task) on tiny data: two steps make a model folder that
segments like any model, the critic is checkpointed and a resumed run continues exactly, HD95 is measured."""

from __future__ import annotations

import numpy as np
import pytest

from ai.training.config import TrainConfig
from ai.training.loop import CHECKPOINT, train
from tests.training.conftest import train_interrupted
from viewer.core.errors import ConfigError

CRITIC = {"mode": "pix2pix", "critic": "patchgan", "weight": 0.1, "critic_channels": [4, 8, 8]}


def weights(folder):
    import torch

    return torch.load(folder / "model.pt", weights_only=True)


@pytest.mark.parametrize("critic", ["patchgan", "multiscale_l1"])
def test_two_adversarial_steps_write_a_segmentation_model(write_config, tmp_path, capsys, critic):
    from ai.engine import run_segmentation
    from ai.formats.builtin import build_network
    from ai.registry import load_model
    from tests.training.conftest import TINY_NETWORK, tiny_ct
    from viewer.cli import main

    config = write_config(epochs=1, adversarial=CRITIC | {"critic": critic})
    out = tmp_path / "gan"
    assert main(["train", str(config), "--out", str(out), "--threads", "1", "--device", "cpu"]) == 0
    model = load_model(str(out))
    assert set(weights(out)) == set(build_network(TINY_NETWORK).state_dict())  # the generator only, no critic
    history = model.card.training["history"]
    assert len(history) == 1
    # least squares >= 0; SegAN's critic maximises its multi-scale L1 distance, so its loss is negative
    assert history[0]["critic_loss"] > 0 if critic == "patchgan" else history[0]["critic_loss"] < 0
    names = {m["name"] for m in model.card.metrics}
    assert {"dice_liver", "mean_dice", "hd95_liver_mm", "mean_hd95_mm"} <= names
    assert model.card.training["config"]["adversarial"]["critic"] == critic
    ct, _ = tiny_ct(2)
    labels = run_segmentation(model, [ct], device="cpu").labels
    assert labels.array.shape == ct.array.shape


def test_adversarial_resume_continues_exactly(write_config, tmp_path):
    config = TrainConfig.from_yaml(write_config(epochs=2, adversarial=CRITIC))
    straight = train(config, tmp_path / "straight", device="cpu", threads=1)
    train_interrupted(config, tmp_path / "resumed")
    import torch

    ckpt = torch.load(tmp_path / "resumed" / CHECKPOINT, weights_only=True)
    assert ckpt["adversaries"]["critic"] and ckpt["adversaries"]["optimizer"]["state"]
    resumed = train(config, tmp_path / "resumed", device="cpu", threads=1, resume=True)
    a, b = weights(straight), weights(resumed)
    assert all(np.array_equal(a[k].numpy(), b[k].numpy()) for k in a)


def test_adversarial_config_errors(write_config, tmp_path):
    with pytest.raises(ConfigError, match="adversarial.critic 'nope'"):
        train(TrainConfig.from_yaml(write_config(adversarial=CRITIC | {"critic": "nope"})), tmp_path / "a")
    with pytest.raises(ConfigError, match="adversarial.mode 'cyclegan'"):
        train(TrainConfig.from_yaml(write_config(adversarial=CRITIC | {"mode": "cyclegan"})), tmp_path / "b")


def test_hd95_is_the_95th_percentile_surface_distance_in_mm(recwarn):
    from ai.training.tasks import hd95

    a = np.zeros((20, 20, 20), bool)
    a[5:15, 5:15, 5:15] = True
    b = np.roll(a, 2, axis=2)  # shifted 2 voxels along x
    assert hd95(a, b, (1.0, 1.0, 3.0)) == pytest.approx(6.0)
    assert hd95(a, np.zeros_like(a), (1.0, 1.0, 1.0)) is None
    assert not [w for w in recwarn if issubclass(w.category, FutureWarning)]  # MONAI's own deprecation: not shown
