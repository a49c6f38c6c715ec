"""radview segment / explain / detect CT PET with a PET/CT fusion model: refused without a transform across frames,
on the CT grid with."""

from __future__ import annotations

import numpy as np
import pytest

from viewer.cli import main
from viewer.core.io import load_volume, save_volume


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """(folder, ct.nii.gz, pet_moved.nii.gz: the PET 40 mm off in its own frame, ct_to_pet.tfm, the study)."""
    from ai.training.pet_ct_lesions import make_pet_ct_case
    from viewer.core.registration.transform import Transform

    folder = tmp_path_factory.mktemp("petct_cli")
    study = make_pet_ct_case(3)
    shift = np.array([0.0, 40.0, -25.0])
    moved = study.pet.with_array(study.pet.array, origin=tuple(np.asarray(study.pet.origin) + shift))
    save_volume(study.ct, folder / "ct.nii.gz")
    save_volume(moved, folder / "pet_moved.nii.gz")
    matrix = np.eye(4)
    matrix[:3, 3] = shift  # a CT point -> the same anatomy in the moved PET
    Transform.from_matrix(matrix, "CT to moved PET").save(folder / "ct_to_pet.tfm")
    return folder, study


def write_fusion_model(folder, model_id: str = "pet-ct-lesions-feature"):
    """A feature-level fusion model folder with the fusion config's card (CT + PET in SUVbw -> lesion) and a tiny
    FeatureFusionUNet of random weights; returns the folder."""
    import torch

    from ai.formats.builtin import build_network
    from ai.model import ModelCard
    from ai.training.config import TrainConfig
    from ai.training.fusion_comparison import CONFIGS
    from ai.training.model_folder import save_weights, write_card

    config = TrainConfig.from_yaml(CONFIGS / "pet-ct-lesions-feature.yaml")
    network = {"class": "FeatureFusionUNet", "args": {"in_channels": 2, "out_channels": 2, "channels": [4, 8]}}
    torch.manual_seed(0)
    card = ModelCard(**{**vars(config.model_card()), "id": model_id, "network": network})
    folder.mkdir(parents=True, exist_ok=True)
    save_weights(build_network(network).state_dict(), folder / card.weights)
    write_card(card, folder)
    return folder


@pytest.fixture(scope="module")
def fusion_model(tmp_path_factory):
    return write_fusion_model(tmp_path_factory.mktemp("fusion_model"))


@pytest.mark.parametrize(("command", "options", "output"), [
    ("segment", ["--device", "cpu"], "lesions.nii.gz"),
    ("explain", ["--method", "gradcam"], "map.nii.gz"),
    ("detect", ["--device", "cpu"], "found.json"),
])
def test_model_commands_refuse_a_pet_on_another_grid_without_a_transform(pair, fusion_model, tmp_path, capsys,
                                                                          command, options, output):
    folder, _ = pair
    out = tmp_path / output
    assert main([command, str(folder / "ct.nii.gz"), str(folder / "pet_moved.nii.gz"), "--model", str(fusion_model),
                 "--out", str(out), *options]) == 2
    err = capsys.readouterr().err
    assert "pet_moved.nii.gz" in err and "ct.nii.gz" in err and "frame of reference" in err
    assert "radview register" in err and "--transform" in err
    assert not out.exists()


def test_segment_with_the_transform_writes_the_lesions_on_the_ct_grid(pair, fusion_model, tmp_path, capsys):
    from ai.engine import run_segmentation
    from ai.registry import load_model
    from viewer.core.resample import resample_to

    folder, study = pair
    out = tmp_path / "lesions.nii.gz"
    assert main(["segment", str(folder / "ct.nii.gz"), str(folder / "pet_moved.nii.gz"), "--transform",
                 str(folder / "ct_to_pet.tfm"), "--model", str(fusion_model), "--out", str(out),
                 "--device", "cpu"]) == 0
    assert "pet_moved.nii.gz: the file records no modality; used as PT in SUVbw" in capsys.readouterr().err
    labels = load_volume(out)
    ct = load_volume(folder / "ct.nii.gz")
    assert labels.same_grid(ct)
    # the same as the model on the PET in its original (CT) frame, resampled onto the CT grid the same way
    pet = load_volume(folder / "pet_moved.nii.gz")
    pet = pet.with_array(pet.array, origin=study.pet.origin, modality="PT", units="SUVbw")
    expected = run_segmentation(load_model(str(fusion_model)), [ct, resample_to(pet, ct)], device="cpu").labels
    # the placed PETs agree to 1e-5 SUV (the file's float32 geometry), and this untrained network sits near p = 0.5
    # over half the image: a handful of voxels may flip; a wrong placement would move thousands
    assert (labels.array != expected.array).mean() < 1e-4 and labels.array.any()


@pytest.mark.parametrize(("command", "options", "output"), [
    ("segment", ["--device", "cpu"], "lesions.nii.gz"),
    ("explain", ["--method", "gradcam"], "map.nii.gz"),
    ("detect", ["--device", "cpu"], "found.json"),
])
def test_model_commands_refuse_a_unitless_pet_in_activity_units(pair, fusion_model, tmp_path, capsys, command,
                                                                 options, output):
    """A NIfTI records no units: a PET file in Bq/mL (the same study's SUV x 5000 Bq/mL per SUV unit) would be read
    as SUVbw, every voxel a hot lesion; it is refused, naming the file, before any model runs."""
    folder, study = pair
    activity = tmp_path / "pet_bqml.nii.gz"
    save_volume(study.pet.with_array(study.pet.array * np.float32(5000.0)), activity)
    out = tmp_path / output
    assert main([command, str(folder / "ct.nii.gz"), str(activity), "--transform", str(folder / "ct_to_pet.tfm"),
                 "--model", str(fusion_model), "--out", str(out), *options]) == 2
    err = capsys.readouterr().err
    assert "pet_bqml.nii.gz" in err and "cannot be SUVbw" in err and "Bq/mL" in err
    assert not out.exists()
