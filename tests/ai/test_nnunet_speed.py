"""The CPU speed-ups of radview's nnU-Net path keep the network's results: the channels-last inference copy of a
real nnunetv2-built network gives its logits (float32 rounding apart), loads every fold, leaves the original
alone."""

from __future__ import annotations

import numpy as np
import pytest

from ai.cpu_network import cpu_inference_network
from ai.formats.nnunet import load_nnunet_folder

torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def tiles(shared_data):
    """Two patch-sized (56, 24, 56) tiles of the real CT, scaled like nnU-Net's CT normalisation."""
    import SimpleITK as sitk

    arr = sitk.GetArrayFromImage(sitk.ReadImage(str(shared_data / "ct_abdomen_3mm.nii.gz"))).astype(np.float32)
    arr = (np.clip(arr, -1000, 1000) - 50) / 300
    x = np.stack([arr[:24, 20:76, 30:86].transpose(1, 0, 2), arr[4:28, 40:96, 50:106].transpose(1, 0, 2)])
    return torch.from_numpy(np.ascontiguousarray(x[:, None]))


def test_cpu_network_gives_the_networks_logits_for_every_fold(nnunet_folder, tiles):
    model = load_nnunet_folder(nnunet_folder, folds=[0, 1])
    fast = cpu_inference_network(model.network)
    names = {type(m).__name__ for m in fast.modules()}
    assert "InstanceNorm3d" not in names and {"SampleNorm", "Pointwise"} <= names
    assert fast.encoder.stages[0][0].convs[0].conv.weight.is_contiguous(memory_format=torch.channels_last_3d)
    with torch.inference_mode():
        for weights in model.fold_weights:
            model.network.load_state_dict(weights)
            fast.load_state_dict(weights)
            exact = model.network(tiles)
            got = fast(tiles.contiguous(memory_format=torch.channels_last_3d))
            assert got.shape == exact.shape
            assert (got - exact).abs().max() < 1e-3 * exact.abs().max()
            assert (got.argmax(1) == exact.argmax(1)).float().mean() > 0.9999
        # the copy is independent: loading a fold into it leaves the model's own network as it was
        fast.load_state_dict(model.fold_weights[0])
        assert not torch.equal(model.network(tiles), fast(tiles.contiguous(memory_format=torch.channels_last_3d)))


@pytest.mark.parametrize("affine", [True, False])
def test_channels_last_instance_norm_is_as_accurate_as_atens(affine):
    """Blocks of squared deviations (sizes that do not divide the voxels) give InstanceNorm3d's result, to float32
    rounding of a float64 reference, with and without affine parameters."""
    torch.manual_seed(0)
    norm = torch.nn.InstanceNorm3d(48, affine=affine, eps=1e-5)
    if affine:
        torch.nn.init.normal_(norm.weight)
        torch.nn.init.normal_(norm.bias)
    x = torch.randn(3, 48, 17, 29, 23) * 4 + 20  # mean far from 0: cancellation would show
    fast = cpu_inference_network(torch.nn.Sequential(norm))
    with torch.inference_mode():
        want = torch.nn.Sequential(norm).double()(x.double()).float()
        norm.float()
        aten = norm(x)
        got = fast(x.contiguous(memory_format=torch.channels_last_3d))
    assert type(fast[0]).__name__ == "SampleNorm"
    assert (got - want).abs().max() <= 2 * (aten - want).abs().max() + 1e-6
