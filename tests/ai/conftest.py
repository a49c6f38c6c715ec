"""AI fixtures: a small real MONAI model folder with random weights, written like a built-in model."""

from __future__ import annotations

import fcntl
import json
import shutil

import pytest


def write_model(folder, *, modalities=("CT",), out_channels=3, fmt="builtin", seed=0, **card_changes):
    """A model folder (card + weights) for a tiny 3D U-Net; returns the folder. ``card_changes`` overwrite
    card fields after the network is built (to make a card disagree with its network)."""
    import torch

    from ai.formats.builtin import build_network

    folder.mkdir(parents=True, exist_ok=True)
    network = {"class": "UNet", "args": {"spatial_dims": 3, "in_channels": len(modalities),
                                         "out_channels": out_channels, "channels": [4, 8], "strides": [2],
                                         "num_res_units": 0}}
    card = {
        "id": f"tiny_{fmt}", "version": "0.0.1", "name": "tiny test net", "task": "segmentation",
        "inputs": [{"modality": m, "name": m.lower()} for m in modalities],
        "normalization": [{"kind": "ct_window", "min": -250, "max": 350} if m == "CT" else {"kind": "zscore"}
                          for m in modalities],
        "labels": {str(k): ("background" if k == 0 else f"class_{k}") for k in range(out_channels)},
        "spacing": [4.0, 4.0, 4.0], "patch_size": [16, 16, 16], "network": network, "format": fmt,
        "weights": "model.ts" if fmt == "torchscript" else "model.pt",
    }
    torch.manual_seed(seed)
    net = build_network(network).eval()
    if fmt == "torchscript":
        torch.jit.trace(net, torch.zeros(1, len(modalities), 16, 16, 16)).save(str(folder / "model.ts"))
    else:
        torch.save({k: v.half() for k, v in net.state_dict().items()}, folder / "model.pt")
    (folder / "model.json").write_text(json.dumps({**card, **card_changes}))
    return folder


def copy_builtin_model(model_id, folder, **card_changes):
    """A copy of the built-in model ``model_id`` (same weights) in ``folder`` whose card has ``card_changes``;
    returns the folder."""
    from ai.registry import BUILTIN_DIR

    shutil.copytree(BUILTIN_DIR / model_id, folder)
    card = json.loads((folder / "model.json").read_text())
    (folder / "model.json").write_text(json.dumps({**card, **card_changes}))
    return folder


@pytest.fixture
def tiny_model_dir(tmp_path):
    return write_model(tmp_path / "tiny")


@pytest.fixture(scope="session")
def nnunet_folder(request, tmp_path_factory, shared_data):
    """A real nnU-Net v2 trained-model folder (tests/ai/nnunet_fixture.py), built once per test session and
    kept in pytest's cache between sessions; skips when nnunetv2 (which builds it) is not installed.

    Test sessions running at the same time in one checkout share the cache: a lock lets one build while the
    others wait for its folder (instead of deleting each other's half-built folds).
    """
    pytest.importorskip("nnunetv2")
    from tests.ai.nnunet_fixture import cached_build

    cache = getattr(request.config, "cache", None)  # None with -p no:cacheprovider
    root = cache.mkdir("nnunet_v2_model") if cache is not None else tmp_path_factory.mktemp("nnunet")
    with open(root / "build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return cached_build(root, shared_data)


@pytest.fixture(scope="session")
def real_ct_run(shared_data):
    """(built-in model result, reference label Volume, reference names) on the real CT ct_abdomen_3mm,
    which is the built-in model's training case (its card says so)."""
    from ai.engine import run_segmentation
    from ai.registry import load_model
    from viewer.core.io import load_volume
    from viewer.core.io.labelmap import load_label_names

    ct = load_volume(shared_data / "ct_abdomen_3mm.nii.gz")
    result = run_segmentation(load_model("abdomen_ct_unet"), [ct], device="cpu")
    reference = load_volume(shared_data / "ct_abdomen_3mm_labels.nii.gz")
    return result, reference, load_label_names(shared_data / "totalsegmentator_total_labels.json")
