"""nnU-Net v2 trained-model folders: a real folder made by nnunetv2 (planning, preprocessing, nnUNetTrainer),
loaded by radview without nnunetv2, gives nnUNetPredictor's labels (Dice >= 0.999 per label)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from ai.engine import run_segmentation
from ai.formats.nnunet import NnUNetModel, load_nnunet_folder
from ai.registry import load_model, model_format
from viewer.core.errors import ModelError

pytest.importorskip("nnunetv2")

#: crop (x0, y0, z0), size of the real CT used as the test case: liver, spleen and kidneys, two tiles wide
CASE_CORNER, CASE_SIZE = (30, 20, 3), (80, 56, 24)


@pytest.fixture(scope="module")
def case(tmp_path_factory, shared_data):
    """A crop of the real abdominal CT written as NIfTI (direction diag(-1, -1, 1), as in the source)."""
    import SimpleITK as sitk

    path = tmp_path_factory.mktemp("nnunet_case") / "case_0000.nii.gz"
    ct = sitk.ReadImage(str(shared_data / "ct_abdomen_3mm.nii.gz"))
    sitk.WriteImage(sitk.RegionOfInterest(ct, CASE_SIZE, CASE_CORNER), str(path))
    return path


def nnunet_reference(folder, image_path, folds, use_mirroring: bool) -> np.ndarray:
    """nnunetv2's own nnUNetPredictor on the same folder and file (SimpleITK axis order, as radview's)."""
    import torch
    from nnunetv2.imageio.simpleitk_reader_writer import SimpleITKIO
    from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor

    predictor = nnUNetPredictor(use_mirroring=use_mirroring, device=torch.device("cpu"), allow_tqdm=False)
    predictor.initialize_from_trained_model_folder(str(folder), folds)
    image, properties = SimpleITKIO().read_images([str(image_path)])
    return predictor.predict_single_npy_array(image, properties)


def dice_per_label(a: np.ndarray, b: np.ndarray, labels) -> dict[int, float]:
    out = {}
    for k in labels:
        total = int((a == k).sum() + (b == k).sum())
        out[k] = 1.0 if total == 0 else 2.0 * int(((a == k) & (b == k)).sum()) / total
    return out


def test_registry_loads_the_folder_with_a_card_from_dataset_and_plans(nnunet_folder):
    for path in (nnunet_folder, nnunet_folder.parent):  # Trainer__Plans__Config folder or its dataset folder
        assert model_format(path) == "nnunetv2"
        model = load_model(str(path))
        assert isinstance(model, NnUNetModel) and model.folds == ["0", "1"]
    card = model.card
    assert card.format == "nnunetv2" and card.id == "Dataset901_RadviewTiny__nnUNetTrainer__nnUNetPlans__3d_fullres"
    assert card.labels == {0: "background", 1: "liver", 2: "spleen", 3: "kidney"}
    assert card.inputs == [{"modality": "CT", "name": "CT"}]
    np.testing.assert_allclose(card.spacing, [3.6, 3.6, 3.0], rtol=1e-6)  # x, y, z mm, from plans (transposed)
    assert card.normalization[0]["kind"] == "CTNormalization" and card.normalization[0]["percentile_00_5"] < 0
    assert sorted(card.mirror_axes) == [0, 1, 2] and model.allowed_mirror_axes == (0, 1, 2)


def test_labels_match_nnunet_predictor_with_two_folds_and_mirroring(nnunet_folder, case):
    from viewer.core.io import load_volume

    vol = load_volume(case)
    model = load_model(str(nnunet_folder))
    result = run_segmentation(model, [vol], device="cpu", return_probabilities=True)
    assert result.labels.same_grid(vol) and result.labels.array.dtype == np.uint8
    reference = nnunet_reference(nnunet_folder, case, (0, 1), use_mirroring=True)
    assert reference.shape == vol.array.shape
    dice = dice_per_label(result.labels.array, reference, (1, 2, 3))
    assert min(dice.values()) >= 0.999, dice
    assert (result.labels.array == 1).sum() > 1000  # the liver is found: the comparison is not between empties
    p = result.probabilities.array
    assert p.shape == vol.array.shape and 0.25 <= p.min() and p.max() <= 1.0


def test_fold_subset_without_mirroring_matches_nnunet_predictor(nnunet_folder, case):
    import SimpleITK as sitk

    model = load_nnunet_folder(nnunet_folder, folds=[1], use_mirroring=False)
    assert model.folds == ["1"] and model.card.mirror_axes == [] and len(model.fold_weights) == 1
    image = sitk.ReadImage(str(case))
    labels, _ = model.predict_labels(sitk.GetArrayFromImage(image)[None], image.GetSpacing()[::-1])
    reference = nnunet_reference(nnunet_folder, case, (1,), use_mirroring=False)
    dice = dice_per_label(labels, reference, (1, 2, 3))
    assert min(dice.values()) >= 0.999, dice


def test_explanations_run_every_fold_as_the_prediction_does(nnunet_folder, case):
    """Grad-CAM and uncertainty explain the folds' mean (nnU-Net averages the folds' logits), not one fold."""
    import torch

    from ai.explain import grad_cam
    from viewer.core.io import load_volume

    model = load_model(str(nnunet_folder))
    explained = model.explained()
    assert explained is model.explained() and len(explained.network.members) == 2  # built once, a member per fold
    x = torch.randn(1, 1, *model.configuration["patch_size"])
    fold_logits = []
    for weights in model.fold_weights:
        model.network.load_state_dict(weights)
        fold_logits.append(model.network(x).detach())
    torch.testing.assert_close(explained.network(x).detach(), sum(fold_logits) / 2, rtol=1e-4, atol=1e-4)
    assert not torch.equal(fold_logits[0], fold_logits[1])  # two folds, two networks: the mean is not one fold's
    one_fold = load_nnunet_folder(nnunet_folder, folds=[1])
    assert one_fold.explained() is one_fold
    cam = grad_cam(model, [load_volume(case)], 1)
    assert "members.0." in cam.description and "members.1." in cam.description


def test_a_network_used_in_place_holds_the_first_fold_after_predicting(nnunet_folder, case, monkeypatch):
    """On a GPU the folds are loaded into the model's own network (the CPU runs a copy): afterwards it holds the
    first fold's weights again, so what runs it next is not silently the last fold."""
    import SimpleITK as sitk
    import torch

    import ai.formats.nnunet_predict as predict

    monkeypatch.setattr(predict, "cpu_inference_network", lambda network: network)  # in place, as on a GPU
    model = load_nnunet_folder(nnunet_folder, use_mirroring=False)
    image = sitk.ReadImage(str(case))
    model.predict_labels(sitk.GetArrayFromImage(image)[None], image.GetSpacing()[::-1])
    for name, value in model.network.state_dict().items():
        assert torch.equal(value, model.fold_weights[0][name].to(value.dtype)), name


def test_cli_segment_writes_labels_on_the_image_grid(nnunet_folder, case, tmp_path, capsys):
    from viewer.cli import main
    from viewer.core.io import load_volume

    out = tmp_path / "labels.nii.gz"
    assert main(["segment", str(case), "--model", str(nnunet_folder), "--out", str(out), "--device", "cpu"]) == 0
    labels, source = load_volume(out), load_volume(case)
    assert labels.same_grid(source, tol=1e-4) and (labels.array == 1).sum() > 1000
    assert "Dataset901_RadviewTiny" in capsys.readouterr().out


def test_cli_folds_and_no_mirroring_reach_the_nnunet_loader(nnunet_folder, case, tmp_path):
    from viewer.cli import main
    from viewer.core.io import load_volume

    out = tmp_path / "fold0.nii.gz"
    assert main(["segment", str(case), "--model", str(nnunet_folder), "--out", str(out), "--device", "cpu",
                 "--folds", "0", "--no-mirroring"]) == 0
    model = load_nnunet_folder(nnunet_folder, folds=[0], use_mirroring=False)
    assert model.folds == ["0"] and not model.use_mirroring
    expected = run_segmentation(model, [load_volume(case)], device="cpu").labels.array
    np.testing.assert_array_equal(load_volume(out).array, expected)


def _copy_jsons(src, dst):
    dst.mkdir(parents=True)
    for name in ("dataset.json", "plans.json"):
        shutil.copy(src / name, dst / name)
    return dst


def test_missing_checkpoint_names_the_file(nnunet_folder, tmp_path):
    folder = _copy_jsons(nnunet_folder, tmp_path / "Dataset901_X" / nnunet_folder.name)
    (folder / "fold_0").mkdir()
    with pytest.raises(ModelError, match="fold_0/checkpoint_final.pth"):
        load_nnunet_folder(folder, folds=[0])
    with pytest.raises(ModelError, match="no fold_\\*/checkpoint_final.pth"):
        load_model(str(folder))


@pytest.mark.parametrize("missing", ["plans.json", "dataset.json"])
def test_missing_dataset_or_plans_names_the_file(nnunet_folder, tmp_path, missing):
    folder = tmp_path / "Dataset901_X" / nnunet_folder.name
    shutil.copytree(nnunet_folder, folder)
    (folder / missing).unlink()
    for path in (folder, folder.parent):  # the trained-model folder or the dataset folder holding it
        with pytest.raises(ModelError, match=f"nnU-Net file {missing} is missing"):
            load_model(str(path))


def test_region_based_dataset_is_refused(nnunet_folder, tmp_path):
    folder = _copy_jsons(nnunet_folder, tmp_path / nnunet_folder.name)
    dataset = json.loads((folder / "dataset.json").read_text())
    dataset["labels"] = {"background": 0, "whole_tumor": [1, 2, 3], "tumor_core": [2, 3], "enhancing": [3]}
    dataset["regions_class_order"] = [1, 2, 3]
    (folder / "dataset.json").write_text(json.dumps(dataset))
    with pytest.raises(ModelError, match="region-based"):
        load_nnunet_folder(folder)


def test_checkpoints_are_read_weights_only(nnunet_folder, tmp_path):
    import os

    import torch

    folder = _copy_jsons(nnunet_folder, tmp_path / nnunet_folder.name)
    (folder / "fold_0").mkdir()
    torch.save({"network_weights": {}, "callback": os.getcwd}, folder / "fold_0" / "checkpoint_final.pth")
    with pytest.raises(ModelError, match="cannot be read as a safe PyTorch checkpoint"):
        load_nnunet_folder(folder, folds=[0])


def test_numpy1_checkpoints_load_weights_only(tmp_path):
    """Checkpoints written under numpy 1 (TotalSegmentator's) name numpy.core.multiarray.scalar."""
    import io

    import torch

    from ai.formats.nnunet import load_checkpoint

    buf = io.BytesIO()
    torch.save({"network_weights": {"w": torch.ones(2)}, "_best_ema": np.float32(0.5)}, buf,
               _use_new_zipfile_serialization=False)  # protocol-2 stream: module names are plain text
    path = tmp_path / "checkpoint_final.pth"
    path.write_bytes(buf.getvalue().replace(b"numpy._core.multiarray", b"numpy.core.multiarray"))
    ckpt = load_checkpoint(path)
    assert ckpt["_best_ema"] == 0.5 and torch.equal(ckpt["network_weights"]["w"], torch.ones(2))


def test_progress_cancel_and_roi_go_through_the_engine(nnunet_folder, case):
    from viewer.core.errors import Cancelled
    from viewer.core.io import load_volume
    from viewer.core.progress import CancelToken

    vol = load_volume(case)
    model = load_nnunet_folder(nnunet_folder, folds=[0], use_mirroring=False)
    seen = []
    full = run_segmentation(model, [vol], device="cpu", progress=lambda f, m: seen.append(f))
    assert seen[-1] == 1.0 and seen == sorted(seen)
    token = CancelToken()
    with pytest.raises(Cancelled):
        run_segmentation(model, [vol], device="cpu", cancel=token, progress=lambda f, m: token.cancel())
    corner = vol.index_to_world(np.array([10.0, 10.0, 4.0]))
    far = vol.index_to_world(np.array([60.0, 45.0, 20.0]))
    boxed = run_segmentation(model, [vol], device="cpu", roi=(corner, far)).labels.array
    outside = np.ones(boxed.shape, bool)
    outside[4:21, 10:46, 10:61] = False  # (z, y, x) voxels covering the box
    assert boxed.shape == full.labels.array.shape and boxed.any() and not boxed[outside].any()


def test_bfloat16_precision_stays_close_to_nnunet_labels(nnunet_folder, case):
    import SimpleITK as sitk

    image = sitk.ReadImage(str(case))
    data, spacing = sitk.GetArrayFromImage(image)[None], image.GetSpacing()[::-1]
    exact, _ = load_nnunet_folder(nnunet_folder, folds=[1], use_mirroring=False).predict_labels(data, spacing)
    fast, _ = load_nnunet_folder(nnunet_folder, folds=[1], use_mirroring=False,
                                 precision="bfloat16").predict_labels(data, spacing)
    assert dice_per_label(fast, exact, (1,))[1] > 0.98
    with pytest.raises(ModelError, match="precision"):
        load_nnunet_folder(nnunet_folder, precision="float16")


def test_user_models_folder_lists_nnunet_and_loads_it_by_id(nnunet_folder, tmp_path, monkeypatch):
    from ai.registry import list_models, load_model

    mine = tmp_path / "models"
    mine.mkdir()
    (mine / nnunet_folder.name).symlink_to(nnunet_folder, target_is_directory=True)
    (card,) = [c for c in list_models(mine) if c.format == "nnunetv2"]
    assert set(card.labels.values()) >= {"liver", "spleen"} and card.spacing
    monkeypatch.setenv("RADVIEW_HOME", str(tmp_path))  # user models folder: RADVIEW_HOME/models
    assert load_model(card.id).card.id == card.id


def test_grad_cam_runs_on_an_nnunet_model(nnunet_folder, shared_data):
    """Explanations go through the generic model grid with nnU-Net's own normalisation scheme."""
    from ai.explain import grad_cam
    from viewer.core.io import load_volume
    from viewer.core.io.labelmap import load_labelmap

    model = load_model(str(nnunet_folder))
    ct = load_volume(shared_data / "ct_abdomen_3mm.nii.gz")
    cam = grad_cam(model, [ct], 1)  # liver
    assert cam.same_grid(ct) and 0 <= cam.array.min() and cam.array.max() <= 1 + 1e-5
    liver = load_labelmap(shared_data / "ct_abdomen_3mm_labels.nii.gz", reference=ct).array == 5
    body = ct.array > -500
    assert cam.array[liver].mean() > 1.5 * cam.array[body & ~liver].mean()
