"""Tiny labelled CT files and training configs for the training tests (seconds, not minutes, on 2 cores)."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from viewer.core.volume import Volume

LABELS = {0: "background", 1: "liver", 2: "spleen"}
#: a 2-level MONAI UNet of a few thousand weights: trains a step in well under a second
TINY_NETWORK = {"class": "UNet", "args": {"spatial_dims": 3, "in_channels": 1, "out_channels": 3,
                                          "channels": [4, 8], "strides": [2], "num_res_units": 1}}


def tiny_ct(seed: int) -> tuple[Volume, Volume]:
    """(CT int16 HU 40 x 36 x 20 at 3 mm with air around an elliptic body, labels: a 'liver' block and a 'spleen'
    ball at seed-dependent places)."""
    rng = np.random.default_rng(seed)
    z, y, x = np.mgrid[:20, :36, :40]
    labels = np.zeros((20, 36, 40), np.uint8)
    cx = 12 + rng.integers(-2, 3)
    labels[4:14, 8:24, cx - 6:cx + 6] = 1
    labels[(z - 10) ** 2 + (y - 18) ** 2 + (x - 30 - rng.integers(-2, 3)) ** 2 < 25] = 2
    body = ((y - 18) / 17) ** 2 + ((x - 20) / 19.5) ** 2 < 1
    hu = np.where(labels == 1, 60, np.where(labels == 2, 140, np.where(body, -80, -1000))).astype(np.float32)
    hu += rng.normal(0, 10, hu.shape)
    geometry = {"spacing": (3.0, 3.0, 3.0), "origin": (-60.0, -54.0, -30.0)}
    ct = Volume(hu.astype(np.int16), modality="CT", units="HU", **geometry)
    return ct, Volume(labels, modality="SEG", units="label", **geometry)


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory):
    """A folder with case{0,1,2}_ct.nii.gz + case{i}_labels.nii.gz (+ .json names beside each)."""
    from viewer.core.io import save_volume
    from viewer.core.io.labelmap import save_labelmap

    folder = tmp_path_factory.mktemp("tiny_data")
    for i in range(3):
        ct, lab = tiny_ct(i)
        save_volume(ct, folder / f"case{i}_ct.nii.gz")
        save_labelmap(lab, folder / f"case{i}_labels.nii.gz", {k: v for k, v in LABELS.items() if k})
    return folder


def files_entry(i: int) -> dict:
    return {"kind": "files", "images": [f"case{i}_ct.nii.gz"], "labels": f"case{i}_labels.nii.gz"}


def tiny_config(**changes) -> dict:
    """A complete config mapping for the tiny data (cases 0, 1 train; 2 validates); ``changes`` override keys."""
    config = {
        "id": "tiny-organs", "version": "0.0.1", "name": "tiny test model", "task": "segmentation",
        "inputs": [{"modality": "CT", "name": "ct"}], "normalization": [{"kind": "ct_window", "min": -200, "max": 300}],
        "labels": dict(LABELS), "spacing": [3.0, 3.0, 3.0], "patch_size": [16, 16, 16], "network": TINY_NETWORK,
        "data": {"train": [files_entry(0), files_entry(1)], "validation": [files_entry(2)]},
        "augmentation": {"rotate_deg": [0, 0, 10], "scale": [0.9, 1.1], "intensity_shift": 0.05, "noise_std": 0.01},
        "optimizer": {"name": "adamw", "lr": 0.01}, "epochs": 2, "iterations_per_epoch": 2, "batch_size": 2,
        "seed": 0, "card": {"intended_use": "tests only"},
    }
    config.update(changes)
    return config


@pytest.fixture
def write_config(tiny_data):
    """write_config(**changes) -> path of a YAML config in the tiny data folder."""
    counter = iter(range(1000))

    def write(**changes):
        path = tiny_data / f"config{next(counter)}_{id(changes)}.yaml"
        path.write_text(yaml.safe_dump(tiny_config(**changes)))
        return path

    return write


def tiny_model_folder(folder, network=None, *, seed: int = 0):
    """A built-in model folder (random weights of ``network``, default TINY_NETWORK) for the tiny data's labels."""
    import torch

    from ai.formats.builtin import build_network
    from ai.model import ModelCard
    from ai.training.model_folder import save_weights, write_card

    network = network or TINY_NETWORK
    torch.manual_seed(seed)
    net = build_network(network)
    folder.mkdir(parents=True, exist_ok=True)
    card = ModelCard(id="tiny-parent", version="1.0.0", name="tiny parent", task="segmentation",
                     inputs=[{"modality": "CT", "name": "ct"}],
                     normalization=[{"kind": "ct_window", "min": -200, "max": 300}], labels=dict(LABELS),
                     spacing=[3.0, 3.0, 3.0], patch_size=[16, 16, 16], network=network, mirror_axes=[])
    save_weights(net.state_dict(), folder / card.weights)
    write_card(card, folder)
    return folder


def train_interrupted(config, folder):
    """Train ``config`` (2 epochs) into ``folder`` and cancel it once the first epoch is done: its checkpoint stays,
    no model folder is written (pytest.raises(Cancelled) checked here)."""
    from ai.training.loop import train
    from viewer.core.errors import Cancelled
    from viewer.core.progress import CancelToken

    cancel = CancelToken()

    def stop_after_first_epoch(fraction, message):
        if message.startswith("epoch 1/2 loss"):
            cancel.cancel()

    with pytest.raises(Cancelled):
        train(config, folder, device="cpu", threads=1, progress=stop_after_first_epoch, cancel=cancel)
