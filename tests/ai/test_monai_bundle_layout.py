"""MONAI bundles see their input as MONAI does: (C, x, y, z) arrays, reoriented by the bundle's Orientationd
and resampled by its Spacingd; radview's label map equals MONAI's own run of the bundle (tests.ai.bundles)."""

from __future__ import annotations

import numpy as np
import pytest

from ai.engine import context_roi, model_grid, run_segmentation
from ai.registry import load_model
from tests.ai.bundles import POSTPROCESSING, monai_run, write_bundle, write_ct
from viewer.core.io import load_volume

#: a network that marks voxels whose intensity rises along the first array axis (not symmetric in any axis)
NETWORK_DEF = {"_target_": "torch.nn.Conv3d", "in_channels": 1, "out_channels": 2, "kernel_size": [3, 1, 1],
               "padding": [1, 0, 0]}


def write_probe_bundle(folder, transforms):
    """A MONAI bundle whose Conv3d labels 'rising along the first array axis'; returns the folder."""
    import torch

    net = torch.nn.Conv3d(**{k: v for k, v in NETWORK_DEF.items() if k != "_target_"})
    with torch.no_grad():
        net.weight.zero_()
        net.weight[1, 0, :, 0, 0] = torch.tensor([-1.0, 0.0, 1.0])
        net.bias.zero_()
    transforms = [{"_target_": "LoadImaged", "keys": "image"}, {"_target_": "EnsureChannelFirstd", "keys": "image"},
                  *transforms]
    return write_bundle(folder, net, NETWORK_DEF, transforms=transforms, roi_size=[24, 20, 16],
                        labels=["background", "rising"], name="axis probe", postprocessing=POSTPROCESSING)


@pytest.mark.parametrize("transforms, spacing, direction", [
    # Orientationd RAS on an LPS-stored image: MONAI flips x and y before the network
    ([{"_target_": "Orientationd", "keys": "image", "axcodes": "RAS"},
      {"_target_": "Spacingd", "keys": "image", "pixdim": [3.0, 3.0, 3.0]}], (3.0, 3.0, 3.0), None),
    # no Orientationd: the stored axes as they are, here a permuted direction (stored x runs along world z)
    ([{"_target_": "Spacingd", "keys": "image", "pixdim": [3.0, 3.0, 3.0]}], (3.0, 3.0, 3.0),
     (0, 0, 1, 0, 1, 0, -1, 0, 0)),
    # Orientationd PLI on that permuted image, with resampling (3 mm -> 2.2 x 2.7 x 3.7 mm) undone by Invertd
    ([{"_target_": "Orientationd", "keys": "image", "axcodes": "PLI"},
      {"_target_": "Spacingd", "keys": "image", "pixdim": [2.2, 2.7, 3.7]}], (3.0, 3.0, 3.0),
     (0, 0, 1, 0, 1, 0, -1, 0, 0)),
])
def test_bundle_labels_equal_monai_own_pipeline(tmp_path, transforms, spacing, direction):
    bundle = write_probe_bundle(tmp_path / "bundle", transforms)
    path = write_ct(tmp_path / "ct.nii.gz", spacing, direction or (1, 0, 0, 0, 1, 0, 0, 0, 1))
    reference = monai_run(bundle, path)[0]
    ct = load_volume(path)
    ct.modality, ct.units = "CT", "HU"
    ours = run_segmentation(load_model(str(bundle)), [ct], device="cpu").labels.array
    assert ours.shape == reference.shape
    assert 0.2 < reference.mean() < 0.8  # the probe marks a real fraction of the image
    assert np.array_equal(ours, reference)


def test_bundle_card_states_the_monai_layout(tmp_path):
    bundle = write_probe_bundle(tmp_path / "bundle", [
        {"_target_": "Orientationd", "keys": "image", "axcodes": "RAS"},
        {"_target_": "Spacingd", "keys": "image", "pixdim": [3.0, 2.0, 1.5]}])
    card = load_model(str(bundle)).card
    assert (card.orientation, card.grid, card.array_order) == ("RAS", "monai", "xyz")
    assert card.spacing == [3.0, 2.0, 1.5] and card.patch_size == [24, 20, 16]


def test_monai_deprecation_notices_about_the_bundle_go_to_the_log(tmp_path, caplog, recwarn):
    """MONAI warns that Orientationd's default ``labels`` changed: a note for the bundle's author, logged with the
    bundle's name, not a FutureWarning printed on the user's terminal."""
    bundle = write_probe_bundle(tmp_path / "bundle", [{"_target_": "Orientationd", "keys": "image", "axcodes": "RAS"}])
    with caplog.at_level("INFO", logger="ai.formats.monai_bundle"):
        load_model(str(bundle))
    assert not [w for w in recwarn if issubclass(w.category, FutureWarning)]
    assert any("bundle bundle:" in r.getMessage() and "Orientationd" in r.getMessage() for r in caplog.records)


PERMUTED = (0, 0, 1, 0, 1, 0, -1, 0, 0)  # stored x runs along world -z, stored z along world x


@pytest.mark.parametrize("transforms", [
    [],  # the stored (permuted) axes at the stored spacing: grid axis 0 runs along world z
    [{"_target_": "Spacingd", "keys": "image", "pixdim": [3.0, 3.0, 3.0]}],
    [{"_target_": "Orientationd", "keys": "image", "axcodes": "PLI"},  # grid axes along world y, x, z
     {"_target_": "Spacingd", "keys": "image", "pixdim": [1.5, 3.0, 4.5]}],
])
def test_roi_context_is_one_patch_along_every_axis_of_a_bundle_grid(tmp_path, transforms):
    """A small box ROI is widened to the bundle's patch along the model grid's own axes (roi_size is listed in
    MONAI's x, y, z of the reoriented grid), not along world x, y, z."""
    model = load_model(str(write_probe_bundle(tmp_path / "bundle", transforms)))
    ct = load_volume(write_ct(tmp_path / "ct.nii.gz", (2.0, 3.0, 4.0), PERMUTED))
    card = model.card
    centre = ct.index_to_world(np.array(ct.size) / 2)
    roi = context_roi(model, ct, (centre - 3, centre + 3))
    grid = model_grid(ct, card.spacing, roi, orientation=card.orientation, grid=card.grid)
    patch = np.array(card.patch_size)
    assert np.all(patch <= grid.size) and np.all(np.array(grid.size) <= patch + 1), (grid.size, patch)
