"""Translation training (mr-to-ct-synth's task) on a tiny head pair: pix2pix and cyclegan each train two steps,
validate MAE in HU inside the head on held-out slabs, and write a model folder radview synthesize runs."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from ai.training.brain_mr_ct import OUTPUTS
from tests.ai.synthesis_fixture import CARD, tiny_head
from viewer.cli import main
from viewer.core.errors import InputError
from viewer.core.io import load_volume, save_volume

NETWORK = {"class": "UNet", "args": {"spatial_dims": 3, "in_channels": 1, "out_channels": 1, "channels": [4, 8],
                                     "strides": [2], "num_res_units": 1}}
CRITIC = {"critic": "patchgan", "critic_channels": [4, 8, 8]}


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """A brain pair folder as python -m ai.training.brain_mr_ct writes it, holding a tiny head (40 slices)."""
    folder = tmp_path_factory.mktemp("pairs") / "pair"
    folder.mkdir()
    mr, ct = tiny_head(40, 4.5, seed=3)
    save_volume(mr, folder / OUTPUTS["mr"])
    save_volume(ct, folder / OUTPUTS["ct"])
    return folder


def entry(**keys) -> dict:
    return {"kind": "brain_mr_ct", "dir": "pair", "ct_background": -1000, **keys}


def write_config(pair, mode: str, train: list[dict], **changes):
    config = {key: CARD[key] for key in ("inputs", "normalization", "output", "anatomy")} | {
        "id": f"tiny-mr-to-ct-{mode}", "version": "0.0.1", "name": f"tiny MR to CT ({mode})", "task": "translation",
        "labels": {}, "spacing": [9.0, 9.0, 9.0], "patch_size": [16, 16, 16], "network": NETWORK,
        "data": {"train": train, "validation": [entry(slices=[28, 40])]},  # held-out slab
        "adversarial": CRITIC | {"mode": mode}, "optimizer": {"name": "adam", "lr": 0.002},
        "epochs": 1, "iterations_per_epoch": 2, "batch_size": 2, "seed": 0,
        "early_stopping": {"metric": "mae_hu", "mode": "min"}, "card": {"intended_use": "tests only"}} | changes
    if mode == "l1":
        del config["adversarial"]
    path = pair.parent / f"{mode}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.mark.parametrize("mode, train", [
    ("l1", [entry(slices=[0, 24])]),
    ("pix2pix", [entry(slices=[0, 24])]),
    ("cyclegan", [entry(slices=[0, 12], ct_slices=[12, 24]), entry(slices=[12, 24], ct_slices=[0, 12])]),
])
def test_two_steps_make_a_translation_model_radview_synthesize_runs(pair, tmp_path, capsys, mode, train):
    import torch

    from ai.registry import load_model

    out = tmp_path / mode
    assert main(["train", str(write_config(pair, mode, train)), "--out", str(out), "--threads", "1",
                 "--device", "cpu"]) == 0
    card = load_model(str(out)).card
    assert card.task == "translation" and card.output["units"] == "HU" and card.anatomy == "brain"
    [metric] = card.metrics
    assert metric["name"] == "mae_hu" and 0 < metric["value"] < 2000
    assert "brain_mr_ct slices 28-39" in metric["data"] and "inside each case's region" in metric["data"]
    assert (card.training["history"][0].get("critic_loss", 0) > 0) == (mode != "l1")
    state = torch.load(out / "model.pt", weights_only=True)
    assert all(k.startswith("model.") for k in state)  # the generator alone: no critic, no backward generator
    assert main(["synthesize", str(pair / OUTPUTS["mr"]), "--model", str(out), "--out", str(tmp_path / "s.nii.gz"),
                 "--device", "cpu"]) == 0
    made = load_volume(tmp_path / "s.nii.gz")
    assert made.is_synthetic and made.synthetic.startswith(f"SYNTHETIC CT from MR by tiny-mr-to-ct-{mode} 0.0.1")
    assert made.array.shape == (40, 40, 40) and made.array.dtype == np.int16  # HU are stored as int16


def test_adversarial_training_runs_with_amp(pair, tmp_path):
    """Both sides' steps under autocast with their own enabled scalers (CPU bfloat16 here; float16 on CUDA)."""
    import torch

    from ai.registry import load_model

    out = tmp_path / "amp"
    assert main(["train", str(write_config(pair, "pix2pix", [entry(slices=[0, 24])])), "--out", str(out),
                 "--threads", "1", "--device", "cpu", "--amp"]) == 0
    card = load_model(str(out)).card
    assert card.training["amp"] is True and card.training["history"][0]["critic_loss"] > 0
    checkpoint = torch.load(out / "checkpoint.pt", weights_only=True)
    assert checkpoint["scaler"]["scale"] > 0 and checkpoint["adversaries"]["scaler"]["scale"] > 0


def test_unpaired_cases_take_the_ct_from_another_slab_and_head_masks_the_atlas_background(pair):
    from ai.training.brain_pair_cases import AIR_HU, brain_pair_cases

    [paired] = brain_pair_cases(entry(slices=[0, 12]), {}, pair.parent)
    [unpaired] = brain_pair_cases(entry(slices=[0, 12], ct_slices=[20, 32]), {}, pair.parent)
    ct = load_volume(pair / OUTPUTS["ct"]).array
    assert np.array_equal(paired.images[1].array, ct[:12]) and np.array_equal(unpaired.images[1].array, ct[20:32])
    assert unpaired.images[1].same_grid(unpaired.images[0]) and "(unpaired)" in unpaired.name
    assert np.array_equal(paired.labels.array, ct[:12] != -1000)
    [atlas_like] = brain_pair_cases(entry(slices=[0, 12], ct_background=35), {}, pair.parent)  # brain as background
    assert (atlas_like.images[1].array[ct[:12] == 35] == AIR_HU).all()
    mr = load_volume(pair / OUTPUTS["mr"])
    stripped_pair = pair.parent / "stripped"  # the MR's skull strip misses the CT head's left third
    stripped_pair.mkdir(exist_ok=True)
    save_volume(mr.with_array(np.where(np.arange(40) < 14, 0, mr.array)), stripped_pair / OUTPUTS["mr"])
    save_volume(load_volume(pair / OUTPUTS["ct"]), stripped_pair / OUTPUTS["ct"])
    [stripped] = brain_pair_cases(entry(dir="stripped", slices=[0, 12], mr_background=0), {}, pair.parent)
    mr = load_volume(stripped_pair / OUTPUTS["mr"]).array[:12]
    assert ((ct[:12] != -1000) & (mr == 0)).any()
    assert np.array_equal(stripped.labels.array, (ct[:12] != -1000) & (mr != 0))
    assert (stripped.images[1].array[mr == 0] == AIR_HU).all()
    assert np.array_equal(stripped.images[1].array[mr != 0], ct[:12][mr != 0])
    with pytest.raises(InputError, match="as many slices"):
        brain_pair_cases(entry(slices=[0, 12], ct_slices=[20, 30]), {}, pair.parent)
    with pytest.raises(InputError, match="python -m ai.training.brain_mr_ct"):
        brain_pair_cases(entry(dir="."), {}, pair.parent)  # a folder without the pair


def test_region_slices_measure_a_held_out_slab_inside_its_whole_context(pair):
    """Validation on the whole volume (the model sees context) counts only the held-out slices."""
    from ai.training.brain_pair_cases import brain_pair_cases

    ct = load_volume(pair / OUTPUTS["ct"]).array
    [case] = brain_pair_cases(entry(slices=[4, 40], region_slices=[28, 40]), {}, pair.parent)
    assert case.images[0].array.shape[0] == 36 and "measured on slices 28-39" in case.name
    head = ct[4:] != -1000
    assert np.array_equal(case.labels.array[24:], head[24:]) and not case.labels.array[:24].any()
    with pytest.raises(InputError, match="'slices' of a 'brain_mr_ct' data entry"):
        brain_pair_cases(entry(region_slices=[30, 41]), {}, pair.parent)


def test_translation_configs_refuse_labels_and_a_segan_critic(pair, tmp_path):
    from ai.training.config import TrainConfig
    from ai.training.loop import train
    from viewer.core.errors import ConfigError

    with pytest.raises(ConfigError, match="labels of a translation model must be"):
        TrainConfig.from_yaml(write_config(pair, "pix2pix", [entry(slices=[0, 24])], labels={0: "air", 1: "head"}))
    config = TrainConfig.from_yaml(write_config(pair, "pix2pix", [entry(slices=[0, 24])],
                                                adversarial=CRITIC | {"critic": "multiscale_l1"}))
    with pytest.raises(ConfigError, match="translation trains a patchgan critic"):
        train(config, tmp_path / "m")


def test_pix2pix_and_cyclegan_models_are_compared_on_the_validation_slab_in_the_card(pair, tmp_path):
    from ai.model import ModelCard
    from ai.training.config import TrainConfig
    from ai.training.loop import train
    from ai.training.model_comparison import main as compare

    folders = [train(TrainConfig.from_yaml(write_config(pair, mode, slabs)), tmp_path / mode, device="cpu", threads=1)
               for mode, slabs in (("pix2pix", [entry(slices=[0, 24])]),
                                   ("cyclegan", [entry(slices=[0, 12], ct_slices=[12, 24])]))]
    assert compare([str(write_config(pair, "pix2pix", [entry(slices=[0, 24])])), "--models", *map(str, folders),
                    "--into", str(folders[0])]) == 0
    [comparison] = ModelCard.from_file(folders[0] / "model.json").comparisons
    [data_set] = comparison["sets"]
    assert data_set["data"].startswith("config validation: 1 case(s): brain_mr_ct slices 28-39")
    maes = [run["metrics"]["mae_hu"] for run in data_set["runs"]]
    card_mae = ModelCard.from_file(folders[0] / "model.json").metrics[0]["value"]  # measured with fp32 weights
    assert maes[0] == pytest.approx(card_mae, abs=1.0)  # the folder holds fp16 weights
    assert len(maes) == 2 and all(0 < m < 2000 for m in maes)
