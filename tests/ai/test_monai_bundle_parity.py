"""`radview segment` on a MONAI bundle gives MONAI's own result: the bundle's inferer (mode, overlap, roi,
sigma_scale, padding_mode, cval; SimpleInferer), preprocessing (CropForegroundd, ...) and postprocessing
(softmax or sigmoid + threshold, Invertd, AsDiscreted) honoured as declared, on RAS- and LPS-stored images."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.ai.bundles import POSTPROCESSING, UNET, lopsided_unet, monai_run, write_bundle, write_ct
from viewer.cli import main
from viewer.core.errors import ModelError

#: model-zoo style preprocessing (spleen_ct_segmentation's, smaller): 2.5 x 2.5 x 3 mm RAS, CT window, crop
PREPROCESSING = [
    {"_target_": "LoadImaged", "keys": "image"},
    {"_target_": "EnsureChannelFirstd", "keys": "image"},
    {"_target_": "Orientationd", "keys": "image", "axcodes": "RAS"},
    {"_target_": "Spacingd", "keys": "image", "pixdim": [2.5, 2.5, 3.0], "mode": "bilinear"},
    {"_target_": "ScaleIntensityRanged", "keys": "image", "a_min": -300, "a_max": 400, "b_min": 0.0, "b_max": 1.0,
     "clip": True},
    {"_target_": "CropForegroundd", "keys": "image", "source_key": "image", "allow_smaller": True},
    {"_target_": "EnsureTyped", "keys": "image"}]
SIGMOID_POSTPROCESSING = [
    {"_target_": "Activationsd", "keys": "pred", "sigmoid": True},
    {"_target_": "Invertd", "keys": "pred", "transform": "@preprocessing", "orig_keys": "image",
     "nearest_interp": False, "to_tensor": True},
    {"_target_": "AsDiscreted", "keys": "pred", "threshold": 0.5}]
LPS = (1, 0, 0, 0, 1, 0, 0, 0, 1)  # stored axes run towards L, P, S (DICOM-like)
RAS = (-1, 0, 0, 0, -1, 0, 0, 0, 1)  # stored axes run towards R, A, S (NIfTI-like, as ct_abdomen_3mm)


def sliding(mode="constant", overlap=0.25, roi=(24, 20, 16), **extra) -> dict:
    return {"_target_": "SlidingWindowInferer", "roi_size": list(roi), "sw_batch_size": 4, "overlap": overlap,
            "mode": mode, **extra}


def dice_per_label(ours, reference, labels) -> dict[int, float]:
    out = {}
    for k in labels:
        a, b = ours == k, reference == k
        out[k] = 1.0 if not (a.any() or b.any()) else float(2 * (a & b).sum() / (a.sum() + b.sum()))
    return out


def radview_segment(bundle, image, out) -> np.ndarray:
    """`radview segment IMAGE --model BUNDLE --out OUT` run in-process; the written labels (z, y, x)."""
    import SimpleITK as sitk

    assert main(["segment", str(image), "--model", str(bundle), "--out", str(out), "--device", "cpu"]) == 0
    return sitk.GetArrayFromImage(sitk.ReadImage(str(out)))


def make_case(tmp_path, inferer, *, direction=LPS, preprocessing=PREPROCESSING, postprocessing=POSTPROCESSING,
              labels=("background", "liver", "spleen")):
    net_def = {**UNET, "out_channels": len(labels)}
    net = lopsided_unet() if len(labels) == 3 else lopsided_unet(net_def, bias=None, seed=1)
    bundle = write_bundle(tmp_path / "bundle", net, net_def, transforms=preprocessing, roi_size=None,
                          labels=list(labels), name="parity", inferer=inferer, postprocessing=postprocessing)
    image = write_ct(tmp_path / "ct.nii.gz", (3.0, 3.0, 3.0), direction, air_border=4)
    return bundle, image


CASES = {f"{mode}-overlap{overlap}-{name}": (sliding(mode, overlap), direction)
         for mode in ("constant", "gaussian") for overlap in (0.0, 0.25, 0.5)
         for name, direction in (("LPS", LPS), ("RAS", RAS))}
CASES["gaussian-sigma0.3-replicate-roi-larger-than-z"] = (
    sliding("gaussian", 0.4, roi=(32, 16, 40), sigma_scale=0.3, padding_mode="replicate"), RAS)
CASES["constant-cval0.7-roi-larger-than-z"] = (sliding("constant", 0.25, roi=(20, 28, 40), cval=0.7), LPS)


@pytest.mark.parametrize("inferer, direction", CASES.values(), ids=CASES.keys())
def test_radview_segment_equals_monai_run_of_the_bundle(tmp_path, inferer, direction):
    bundle, image = make_case(tmp_path, inferer, direction=direction)
    reference = monai_run(bundle, image)[0]
    ours = radview_segment(bundle, image, tmp_path / "labels.nii.gz")
    assert ours.shape == reference.shape
    fractions = [(reference == k).mean() for k in (1, 2)]
    assert all(0.02 < f < 0.9 for f in fractions), fractions  # both labels present, neither everywhere
    dice = dice_per_label(ours, reference, (0, 1, 2))
    assert min(dice.values()) >= 0.99, dice


def test_simple_inferer_with_divisible_padding(tmp_path):
    pre = [*PREPROCESSING, {"_target_": "DivisiblePadd", "keys": "image", "k": 2}]
    bundle, image = make_case(tmp_path, {"_target_": "SimpleInferer"}, direction=RAS, preprocessing=pre)
    reference = monai_run(bundle, image)[0]
    ours = radview_segment(bundle, image, tmp_path / "labels.nii.gz")
    assert min(dice_per_label(ours, reference, (0, 1, 2)).values()) >= 0.99


def test_sigmoid_bundle_gives_one_label_per_channel(tmp_path):
    """Sigmoid + threshold outputs are overlapping masks, one per channel_def entry: label k + 1 where channel
    k is set (later channels over earlier ones)."""
    from ai.registry import load_model

    bundle, image = make_case(tmp_path, sliding("gaussian", 0.5), postprocessing=SIGMOID_POSTPROCESSING,
                              labels=("liver", "spleen"))
    masks = monai_run(bundle, image) > 0.5
    reference = np.where(masks[1], 2, np.where(masks[0], 1, 0))
    assert masks[0].any() and masks[1].any() and (masks[0] & masks[1]).any()  # they overlap
    assert load_model(str(bundle)).card.labels == {0: "background", 1: "liver", 2: "spleen"}
    ours = radview_segment(bundle, image, tmp_path / "labels.nii.gz")
    assert min(dice_per_label(ours, reference, (0, 1, 2)).values()) >= 0.99


def test_the_blend_mode_matters_for_this_network(tmp_path):
    """The parity cases can tell the modes apart: MONAI's own gaussian and constant runs of one bundle differ
    (radview's old fixed gaussian blending would fail the constant cases)."""
    bundle, image = make_case(tmp_path, sliding("constant", 0.5))
    constant = monai_run(bundle, image)[0]
    config = json.loads((bundle / "configs" / "inference.json").read_text())
    config["inferer"]["mode"] = "gaussian"
    (bundle / "configs" / "inference.json").write_text(json.dumps(config))
    gaussian = monai_run(bundle, image)[0]
    assert min(dice_per_label(constant, gaussian, (1, 2)).values()) < 0.99


def test_a_transform_that_cannot_run_is_named(tmp_path):
    """A preprocessing step that fails on the image is refused naming the transform, never skipped."""
    pre = [*PREPROCESSING, {"_target_": "ScaleIntensityd", "keys": "label"}]  # no 'label' in an inference run
    bundle, image = make_case(tmp_path, sliding(), preprocessing=pre)
    from ai.engine import run_segmentation
    from ai.registry import load_model
    from viewer.core.io import load_volume

    with pytest.raises(ModelError, match=r"preprocessing transform 7 \(ScaleIntensityd\) cannot run"):
        run_segmentation(load_model(str(bundle)), [load_volume(image)], device="cpu")


def test_unknown_intensity_transform_is_named_in_the_card_and_refused_outside_the_bundle(tmp_path):
    from ai.normalize import normalize
    from ai.registry import load_model

    pre = [*PREPROCESSING[:4], {"_target_": "ScaleIntensityRangePercentilesd", "keys": "image", "lower": 1,
                                "upper": 99, "b_min": 0.0, "b_max": 1.0}, *PREPROCESSING[5:]]
    bundle, _ = make_case(tmp_path, sliding(), preprocessing=pre)
    spec = load_model(str(bundle)).card.normalization[0]
    assert spec == {"kind": "bundle", "transforms": ["ScaleIntensityRangePercentilesd"]}
    with pytest.raises(ModelError, match="ScaleIntensityRangePercentilesd run only in the bundle's own pipeline"):
        normalize(np.zeros((2, 2, 2), np.int16), spec)


def test_probabilities_and_roi_follow_the_bundle_output(tmp_path):
    """The probability map is the softmax of the chosen label (>= 1/3 of 3 classes inside the foreground
    crop, 1 = background on the air border CropForegroundd cut away); progress counts MONAI's windows; an ROI
    keeps labels inside its box."""
    from ai.engine import run_segmentation
    from ai.registry import load_model
    from viewer.core.io import load_volume

    bundle, image = make_case(tmp_path, sliding("gaussian", 0.25))
    model, ct = load_model(str(bundle)), load_volume(image)
    reports = []
    full = run_segmentation(model, [ct], device="cpu", return_probabilities=True,
                            progress=lambda f, m: reports.append((f, m)))
    windows = [m for _, m in reports if m.startswith("window ")]
    done, total = windows[-1].split()[1].split("/")  # the count of MONAI's scan, stated up front
    assert done == total and len(windows) > 1 and reports[-1][0] == 1.0
    assert [f for f, _ in reports] == sorted(f for f, _ in reports)
    prob = full.probabilities.array
    assert full.probabilities.same_grid(ct) and prob.min() >= 0 and prob.max() <= 1 + 1e-4
    assert prob[5:-5, 5:-5, 5:-5].min() >= 1 / 3 - 1e-4 and np.all(prob[:, :, :3] == 1)
    assert np.array_equal(full.labels.array, monai_run(bundle, image)[0])
    lo, hi = ct.index_to_world([10, 10, 8]), ct.index_to_world([30, 25, 14])
    part = run_segmentation(model, [ct], device="cpu", roi=(lo, hi)).labels.array
    inside = np.zeros(part.shape, bool)
    inside[8:15, 10:26, 10:31] = True
    assert not part[~inside].any() and len(np.unique(part[inside])) == 3


SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"


@pytest.mark.slow
@pytest.mark.parametrize("image", ["ct_abdomen_3mm.nii.gz", "ct_abdomen_dicom"])
def test_real_ct_nifti_and_dicom_match_monai(tmp_path, image):
    """The shared real CT (NIfTI stored RAS; the DICOM series, which MONAI reads with its PydicomReader in
    another slice order) segmented by `radview segment` as by MONAI's own run of the bundle."""
    pre = [dict(t, pixdim=[2.5, 2.5, 3.0]) if t["_target_"] == "Spacingd" else t for t in PREPROCESSING]
    bundle = write_bundle(tmp_path / "bundle", lopsided_unet(), UNET, transforms=pre, roi_size=None,
                          labels=["background", "liver", "spleen"], name="parity",
                          inferer=sliding("gaussian", 0.5, roi=(48, 40, 24)), postprocessing=POSTPROCESSING)
    reference = monai_run(bundle, SHARED / image)[0]
    ours = radview_segment(bundle, SHARED / image, tmp_path / "labels.nii.gz")
    if image == "ct_abdomen_dicom":  # MONAI's PydicomReader stacks the slices head first: radview's z reversed
        reference = reference[::-1]
    assert min(dice_per_label(ours, reference, (0, 1, 2)).values()) >= 0.99


def test_model_zoo_style_inference_json(tmp_path):
    """A whole model-zoo inference.json (imports, device, datalist, dataset, dataloader, CheckpointLoader
    handler, evaluator, initialize/run) loads: radview builds only what segmentation needs."""
    bundle, image = make_case(tmp_path, sliding("gaussian", 0.25, roi=(32, 32, 16)))
    config = json.loads((bundle / "configs" / "inference.json").read_text())
    config.update({
        "imports": ["$import glob", "$import os"],
        "device": "$torch.device('cuda:0' if torch.cuda.is_available() else 'cpu')",
        "dataset_dir": "/nowhere", "datalist": "$list(sorted(glob.glob(@dataset_dir + '/*.nii.gz')))",
        "network": "$@network_def.to(@device)",
        "dataset": {"_target_": "Dataset", "data": "$[{'image': i} for i in @datalist]",
                    "transform": "@preprocessing"},
        "dataloader": {"_target_": "DataLoader", "dataset": "@dataset", "batch_size": 1, "num_workers": 0},
        "handlers": [{"_target_": "CheckpointLoader", "load_path": "$@bundle_root + '/models/model.pt'",
                      "load_dict": {"model": "@network"}}],
        "evaluator": {"_target_": "SupervisedEvaluator", "device": "@device", "val_data_loader": "@dataloader",
                      "network": "@network", "inferer": "@inferer", "postprocessing": "@postprocessing",
                      "val_handlers": "@handlers", "amp": True},
        "initialize": ["$monai.utils.set_determinism(seed=123)"], "run": ["$@evaluator.run()"]})
    config["postprocessing"]["transforms"][1]["device"] = "@device"
    (bundle / "configs" / "inference.json").write_text(json.dumps(config))
    reference = monai_run(bundle, image)[0]
    ours = radview_segment(bundle, image, tmp_path / "labels.nii.gz")
    assert min(dice_per_label(ours, reference, (0, 1, 2)).values()) >= 0.99
