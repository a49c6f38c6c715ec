"""Each step of radview's nnU-Net pipeline against nnunetv2's own function on real CT data.

resampling (isotropic and separate-z), export argmax, normalisation, tile positions and Gaussian weights: if
any of these drifts from nnU-Net, labels stop matching nnUNetPredictor.
"""

from __future__ import annotations

import numpy as np
import pytest

from ai.formats.nnunet_predict import gaussian_weights, pad_to_tile, tile_starts
from ai.formats.nnunet_preprocess import nonzero_bbox, normalize_channel
from ai.formats.nnunet_resample import ResampleSpec, resample_image, resample_logits_to_labels

nnunet_resampling = pytest.importorskip("nnunetv2.preprocessing.resampling.default_resampling")


@pytest.fixture(scope="module")
def ct(shared_data):
    """A (1, 24, 40, 36) float32 crop of the real abdominal CT, z-score normalised."""
    import SimpleITK as sitk

    arr = sitk.GetArrayFromImage(sitk.ReadImage(str(shared_data / "ct_abdomen_3mm.nii.gz")))
    crop = arr[3:27, 30:70, 40:76].astype(np.float32)
    return ((crop - crop.mean()) / crop.std())[None]


@pytest.mark.parametrize(("spacing", "target"), [((3.0, 3.0, 3.0), (2.5, 3.6, 3.3)),  # isotropic: order 3 in 3D
                                                 ((6.0, 1.5, 1.5), (6.0, 2.0, 1.2)),  # separate z, same slices
                                                 ((7.0, 1.5, 1.5), (5.0, 1.8, 1.8))])  # separate z, nearest across
def test_image_resampling_matches_nnunet(ct, spacing, target):
    shape = nnunet_resampling.compute_new_shape(ct.shape[1:], spacing, target)
    theirs = nnunet_resampling.resample_data_or_seg_to_shape(ct, shape, spacing, target, is_seg=False, order=3,
                                                             order_z=0, force_separate_z=None)
    ours = resample_image(ct, shape, spacing, target, ResampleSpec(3, 0, None))
    assert ours.dtype == np.float32 and ours.shape == theirs.shape
    assert np.abs(ours - theirs).max() < 1e-4


@pytest.mark.parametrize(("current", "original"), [((3.6, 3.0, 3.6), (3.0, 3.0, 3.0)),
                                                   ((5.0, 1.8, 1.8), (7.0, 1.5, 1.5))])
def test_export_argmax_matches_nnunet(ct, current, original):
    import torch

    rng = np.random.default_rng(0)
    # smooth real-looking logits: the CT crop and shifted copies plus noise, 4 classes
    logits = np.concatenate([np.roll(ct, s, axis=2) + rng.normal(0, 0.3, ct.shape) for s in (0, 3, 7, 11)])
    logits = logits.astype(np.float16)  # nnU-Net's sliding window returns float16 logits
    shape = nnunet_resampling.compute_new_shape(logits.shape[1:], current, original)
    theirs = nnunet_resampling.resample_data_or_seg_to_shape(logits, shape, current, original, is_seg=False,
                                                             order=1, order_z=0, force_separate_z=None).argmax(0)
    ours, top = resample_logits_to_labels(torch.from_numpy(logits), shape, current, original, ResampleSpec(1, 0, None),
                                          with_max_probability=True, slab=5)
    assert ours.shape == tuple(shape) and (ours == theirs).mean() > 0.99999
    assert top.min() >= 0.25 and top.max() <= 1.0


def test_normalisations_match_nnunet(ct):
    from nnunetv2.preprocessing.normalization import default_normalization_schemes as schemes

    raw = ct[0] * 200 + 40
    props = {"mean": 36.8, "std": 22.2, "percentile_00_5": -50.0, "percentile_99_5": 76.0}
    mask = raw > -100
    seg = np.where(mask, 0, -1)
    for name, use_mask in [("CTNormalization", False), ("ZScoreNormalization", False),
                           ("ZScoreNormalization", True), ("RescaleTo01Normalization", False)]:
        theirs = getattr(schemes, name)(use_mask_for_norm=use_mask, intensityproperties=props).run(raw.copy(), seg)
        ours = normalize_channel(raw.copy(), name, props, mask if use_mask else None)
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-5, err_msg=name)


def test_tiles_gaussian_and_padding_match_nnunet():
    import torch
    from acvl_utils.cropping_and_padding.padding import pad_nd_image
    from nnunetv2.inference.sliding_window_prediction import compute_gaussian, compute_steps_for_sliding_window

    for size, tile in [((110, 64, 30), (64, 64, 24)), ((53, 24, 53), (56, 24, 56)), ((200, 161, 97), (128, 96, 80))]:
        padded = [max(s, t) for s, t in zip(size, tile, strict=True)]
        assert tile_starts(padded, tile) == compute_steps_for_sliding_window(padded, tile, 0.5)
    tile = (56, 24, 56)
    theirs = compute_gaussian(tile, 1 / 8, 10, device=torch.device("cpu")).float()
    assert torch.equal(gaussian_weights(tile), theirs)
    data = torch.arange(2 * 53 * 20 * 50, dtype=torch.float32).reshape(2, 53, 20, 50)
    ours, back = pad_to_tile(data, tile)
    theirs, their_back = pad_nd_image(data, tile, "constant", {"value": 0}, True)
    assert torch.equal(ours, theirs) and torch.equal(ours[back], data)


def test_crop_box_matches_nnunet_crop_to_nonzero(ct):
    from nnunetv2.preprocessing.cropping.cropping import crop_to_nonzero

    data = np.zeros((2, 30, 40, 50), np.float32)
    data[0, 4:20, 6:30, 10:45] = ct[0, :16, :24, :35]
    data[1, 10:25, 2:8, 1:5] = 1.0
    data[0, 8:12, 10:14, 20:24] = 0  # a hole: filled by nnU-Net, does not change the box
    _, _, bbox = crop_to_nonzero(data.copy())
    assert nonzero_bbox(data) == [list(map(int, b)) for b in bbox]
