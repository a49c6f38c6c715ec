"""The inference engine: exact output geometry, progress, cancel, TTA, clear errors for bad models/inputs."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ai.engine import export, model_grid, run_segmentation, select_device
from ai.registry import load_model
from tests.ai.conftest import write_model
from viewer.core.errors import Cancelled, ModelError
from viewer.core.progress import CancelToken
from viewer.core.volume import Volume


def _oblique_ct():
    a = np.deg2rad(15)
    direction = np.array([[-np.cos(a), -np.sin(a), 0], [-np.sin(a), np.cos(a), 0], [0, 0, 1]])
    rng = np.random.default_rng(0)
    arr = rng.integers(-1000, 400, (23, 41, 37)).astype(np.int16)
    return Volume(arr, spacing=(1.3, 0.9, 2.7), origin=(12.0, -30.0, 5.0), direction=direction, modality="CT",
                  units="HU")


def test_labels_land_exactly_on_the_input_grid(tiny_model_dir):
    vol = _oblique_ct()
    result = run_segmentation(load_model(str(tiny_model_dir)), [vol], device="cpu", return_probabilities=True)
    assert result.labels.same_grid(vol, tol=1e-9)
    assert result.labels.array.dtype == np.uint8 and result.labels.array.shape == vol.array.shape
    assert result.probabilities.same_grid(vol) and result.probabilities.array.dtype == np.float32
    assert 0 <= result.probabilities.array.min() and result.probabilities.array.max() <= 1 + 1e-5


def test_progress_is_monotone_and_cancel_leaves_nothing(tiny_model_dir):
    model = load_model(str(tiny_model_dir))
    seen = []
    run_segmentation(model, [_oblique_ct()], device="cpu", progress=lambda f, m: seen.append(f))
    assert seen == sorted(seen) and seen[-1] == 1.0
    token = CancelToken()

    def cancel_at_first_window(fraction, message):
        if "window" in message:
            token.cancel()

    with pytest.raises(Cancelled):
        run_segmentation(model, [_oblique_ct()], device="cpu", progress=cancel_at_first_window, cancel=token)


def test_tta_runs_and_keeps_geometry(tiny_model_dir):
    vol = _oblique_ct()
    result = run_segmentation(load_model(str(tiny_model_dir)), [vol], device="cpu", tta=True)
    assert result.labels.same_grid(vol)


def test_tta_is_the_mean_over_every_combination_of_mirror_axes(tiny_model_dir):
    from ai.engine import mirror_combinations, predict, preprocess

    model = load_model(str(tiny_model_dir))
    model.card.mirror_axes = [0, 2]
    assert mirror_combinations([2, 0]) == [(), (0,), (2,), (0, 2)]
    x, _ = preprocess(model, [_oblique_ct()])
    runs = []
    for axes in mirror_combinations(model.mirror_axes):
        dims = tuple(3 - a for a in axes)  # grid axis x=0 is array dim 3 of (C, z, y, x)
        p = predict(model, np.ascontiguousarray(np.flip(x, dims)), device="cpu")
        runs.append(np.flip(p, dims))
    assert len(runs) == 4 and not np.allclose(runs[0], runs[3], atol=1e-3)  # the flips do differ
    np.testing.assert_allclose(predict(model, x, device="cpu", tta=True), np.mean(runs, axis=0), atol=1e-5)


def test_uncertainty_reports_passes_and_honours_cancel(tiny_model_dir):
    from ai.explain import uncertainty

    model = load_model(str(tiny_model_dir))
    seen, token = [], CancelToken()
    unc = uncertainty(model, [_oblique_ct()], progress=lambda f, m: seen.append(m))
    assert unc.array.max() > 0 and any(m.startswith("pass 2/2") for m in seen)  # identity + one mirror

    def cancel_in_pass_2(fraction, message):
        if message.startswith("pass 2/"):
            token.cancel()

    with pytest.raises(Cancelled):
        uncertainty(model, [_oblique_ct()], progress=cancel_in_pass_2, cancel=token)


def test_grad_cam_runs_tile_by_tile_with_progress_and_cancel(tiny_model_dir):
    from ai.explain import grad_cam

    arr = np.random.default_rng(2).integers(-1000, 400, (30, 60, 60)).astype(np.int16)
    vol = Volume(arr, spacing=(1.5, 1.5, 2.5), origin=(0, 0, 0), modality="CT", units="HU")  # 23 x 23 x 19 model grid
    model = load_model(str(tiny_model_dir))
    region = vol.with_array(np.ones(vol.array.shape, np.uint8))
    seen, token = [], CancelToken()
    cam = grad_cam(model, [vol], 1, roi=region, progress=lambda f, m: seen.append((f, m)))
    tiles = [m for _, m in seen if m.startswith("Grad-CAM tile")]
    assert len(tiles) > 1 and tiles[-1].split()[-1].split("/")[0] == tiles[-1].split("/")[-1]  # every tile
    assert [f for f, _ in seen] == sorted(f for f, _ in seen) and seen[-1][0] == 1.0
    assert cam.same_grid(vol) and cam.array.max() > 0

    def cancel_at_first_tile(fraction, message):
        if message.startswith("Grad-CAM tile"):
            token.cancel()

    with pytest.raises(Cancelled):
        grad_cam(model, [vol], 1, roi=region, progress=cancel_at_first_tile, cancel=token)


def test_tta_without_mirror_axes_says_so(tiny_model_dir):
    from ai.engine import NO_MIRRORING

    model = load_model(str(tiny_model_dir))
    model.card.mirror_axes = []
    assert run_segmentation(model, [_oblique_ct()], device="cpu", tta=True).warnings == [NO_MIRRORING]
    assert run_segmentation(model, [_oblique_ct()], device="cpu").warnings == []


def test_modality_mismatch_is_a_clear_error(tmp_path):
    model = load_model(str(write_model(tmp_path / "petct", modalities=("PT", "CT"))))
    with pytest.raises(ModelError, match="needs PT and CT, got CT$"):
        run_segmentation(model, [_oblique_ct()], device="cpu")
    ct = _oblique_ct()
    pet = ct.with_array(ct.array.clip(0, None) / 100, modality="PT", units="SUVbw")
    with pytest.raises(ModelError, match=r"needs PT and CT, got CT and PT: give them in this order \(PT, CT\)$"):
        run_segmentation(model, [ct, pet], device="cpu")
    with pytest.raises(ModelError, match="needs PT and CT, got CT and CT$"):
        run_segmentation(model, [ct, ct], device="cpu")


def test_suv_normalisation_needs_pet_in_suv(tmp_path):
    model = load_model(str(write_model(tmp_path / "pet", modalities=("PT",),
                                       normalization=[{"kind": "suv", "max": 20}])))
    rng = np.random.default_rng(0)
    pet = Volume(rng.random((12, 20, 20), np.float32) * 5000, spacing=(4.0, 4.0, 4.0), origin=(0, 0, 0),
                 modality="PT", units="Bq/mL", description="PET AC")
    with pytest.raises(ModelError, match="needs PET in SUVbw .* PET AC is in Bq/mL"):
        run_segmentation(model, [pet], device="cpu")
    pet = pet.with_array(pet.array / 1000, units="SUVbw")
    assert run_segmentation(model, [pet], device="cpu").labels.same_grid(pet)


@pytest.mark.parametrize("changes, message", [
    ({"inputs": [{"modality": "CT", "name": "ct"}, {"modality": "PT", "name": "pet"}],
      "normalization": [{"kind": "ct_window", "min": -250, "max": 350}, {"kind": "zscore"}]},
     "the card lists 2 input channel\\(s\\) \\(CT \\+ PT\\) but the network takes 1"),
    ({"labels": {"0": "background", "1": "a", "2": "b", "3": "c"}},
     "labels 0..3 need 4 output channels but the network gives 3"),
])
def test_card_disagreeing_with_its_network_is_refused_at_load(tmp_path, changes, message):
    folder = write_model(tmp_path / "m", **changes)
    with pytest.raises(ModelError, match=message) as err:
        load_model(str(folder))
    assert err.value.path == str(folder / "model.json")


def test_traced_network_rejecting_its_input_names_the_card(tmp_path):
    folder = write_model(tmp_path / "ts", fmt="torchscript", inputs=[{"modality": "CT", "name": "ct"}] * 2,
                         normalization=[{"kind": "ct_window", "min": -250, "max": 350}] * 2)
    model = load_model(str(folder))  # a traced network hides its layers: the first window tells
    rejected = "the network rejects a \\(\\d, 2, 16, 16, 16\\) input patch .*channels"
    with pytest.raises(ModelError, match=rejected) as err:
        run_segmentation(model, [_oblique_ct(), _oblique_ct()], device="cpu")
    assert err.value.path == str(folder / "model.json")


def test_broken_model_folders_name_the_problem(tmp_path, tiny_model_dir):
    (tiny_model_dir / "model.pt").unlink()
    with pytest.raises(ModelError, match="model.pt"):
        load_model(str(tiny_model_dir))
    (tiny_model_dir / "model.pt").write_text("not weights")
    with pytest.raises(ModelError, match="not a PyTorch weights file"):
        load_model(str(tiny_model_dir))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ModelError, match="model.json is missing"):
        load_model(str(empty))
    with pytest.raises(ModelError, match="no model with id"):
        load_model("no_such_model")
    padded = write_model(tmp_path / "padded", window_padding="reflect")
    with pytest.raises(ModelError, match="window_padding 'reflect' is not one of constant, replicate"):
        load_model(str(padded))


def test_torchscript_model_runs(tmp_path):
    model = load_model(str(write_model(tmp_path / "ts", fmt="torchscript")))
    vol = _oblique_ct()
    assert run_segmentation(model, [vol], device="cpu").labels.same_grid(vol)


def test_unavailable_device_is_refused():
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(ModelError, match="no CUDA"):
        select_device("cuda")
    assert select_device("auto").type in ("cpu", "mps")


def test_roi_limits_the_work_and_keeps_the_grid(tiny_model_dir):
    vol = _oblique_ct()
    model = load_model(str(tiny_model_dir))
    centre = vol.index_to_world(np.array(vol.size) / 2)
    box = (centre - 10, centre + 10)
    result = run_segmentation(model, [vol], device="cpu", roi=box, return_probabilities=True)
    assert result.labels.same_grid(vol)
    zyx = np.argwhere(result.labels.array > 0)
    assert 0 < len(zyx) < (run_segmentation(model, [vol], device="cpu").labels.array > 0).sum()
    world = vol.index_to_world(zyx[:, ::-1].astype(float))
    assert np.all(world >= box[0] - 4.0) and np.all(world <= box[1] + 4.0)  # within one model voxel
    far = vol.index_to_world(np.zeros(3))
    with pytest.raises(ModelError, match="does not overlap"):
        run_segmentation(model, [vol], device="cpu", roi=(far - 500, far - 400))


@pytest.mark.parametrize("orientation, grid", [("LPS", "axis_aligned"), ("RAS", "monai"), ("", "monai")])
def test_roi_keeps_exactly_the_voxels_inside_it_on_any_model_grid(orientation, grid):
    vol = _oblique_ct()
    model_vol = model_grid(vol, vol.spacing, orientation=orientation, grid=grid)
    probs = np.zeros((2, *model_vol.array.shape), np.float32)
    probs[1] = 1.0
    centre = model_vol.index_to_world(np.array(model_vol.size) / 2)
    box = (centre - 8, centre + 8)
    labels, _, _ = export(probs, model_vol, model_vol, with_probabilities=False, keep=box)
    world = model_vol.index_to_world(np.argwhere(np.ones(probs.shape[1:], bool))[:, ::-1].astype(float))
    inside = np.all((world >= box[0]) & (world <= box[1]), axis=1).reshape(probs.shape[1:])
    assert inside.sum() > 100 and np.array_equal(labels.array == 1, inside)


def test_broken_nnunet_folder_gets_a_clear_message(tmp_path):
    folder = tmp_path / "Dataset001__nnUNetTrainer__nnUNetPlans__3d_fullres"
    folder.mkdir()
    (folder / "dataset.json").write_text("{}")
    (folder / "plans.json").write_text("{}")
    with pytest.raises(ModelError, match="nnU-Net v2 dataset.json has no labels"):
        load_model(str(folder))


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


@pytest.mark.skipif(not _cuda_available(), reason="no CUDA GPU on this machine")
def test_engine_runs_on_cuda_like_on_the_cpu(tiny_model_dir):
    """Smoke test on a CUDA GPU (skipped without one): same grid, the CPU's labels, probabilities within AMP's
    rounding, and TTA runs."""
    vol = _oblique_ct()
    model = load_model(str(tiny_model_dir))
    cpu = run_segmentation(model, [vol], device="cpu", return_probabilities=True)
    gpu = run_segmentation(model, [vol], device="cuda", return_probabilities=True)
    assert select_device("cuda").type == "cuda"
    assert gpu.labels.same_grid(vol, tol=1e-9) and gpu.labels.array.dtype == np.uint8
    assert (gpu.labels.array == cpu.labels.array).mean() >= 0.99
    np.testing.assert_allclose(gpu.probabilities.array, cpu.probabilities.array, atol=2e-2)
    assert run_segmentation(model, [vol], device="cuda", tta=True).labels.same_grid(vol)


def test_a_model_id_with_several_versions_installed(caplog):
    """A fine-tuned version beside its built-in parent: the bare id keeps the built-in and says how to choose,
    ID@VERSION picks either, an unknown version names the installed ones."""
    from ai.registry import BUILTIN_DIR, find_model, user_models_dir
    from tests.ai.conftest import copy_builtin_model

    model_id = "pet-lesion-detector"
    builtin = BUILTIN_DIR / model_id
    parent_version = json.loads((builtin / "model.json").read_text())["version"]
    tuned = copy_builtin_model(model_id, user_models_dir() / "tuned", version=f"{parent_version}-ft.1")
    with caplog.at_level("WARNING", logger="ai.registry"):
        assert find_model(model_id) == builtin
    assert f"2 versions of model {model_id} are installed" in caplog.text and f"{model_id}@VERSION" in caplog.text
    assert find_model(f"{model_id}@{parent_version}-ft.1") == tuned
    assert find_model(f"{model_id}@{parent_version}") == builtin
    assert load_model(f"{model_id}@{parent_version}-ft.1").card.version == f"{parent_version}-ft.1"
    with pytest.raises(ModelError, match=f"model '{model_id}' has no version '9.9' \\(installed: .*-ft.1"):
        find_model(f"{model_id}@9.9")


def test_a_coarse_grid_straddling_the_image_edge_sees_the_image_not_air(tiny_model_dir):
    """20 slices of 2 mm on a 3 mm model grid: the last model slice is mostly image. It takes the edge slice's
    values (MONAI's "border" padding), so the network does not see air there and the image's last slice is
    segmented like the others."""
    from ai.engine import preprocess

    arr = np.full((20, 24, 24), 40, np.int16)  # soft tissue everywhere
    vol = Volume(arr, spacing=(1.0, 1.0, 2.0), origin=(0.0, 0.0, -804.5), modality="CT", units="HU")
    card = json.loads((tiny_model_dir / "model.json").read_text())
    (tiny_model_dir / "model.json").write_text(json.dumps({**card, "spacing": [3.0, 3.0, 3.0]}))
    x, grid = preprocess(load_model(str(tiny_model_dir)), [vol])
    assert grid.size[2] == 14  # 40 mm / 3 mm, rounded up: the last voxel's centre lies beyond the last slice's
    assert np.allclose(x, x[0, 0, 0, 0])  # every model voxel holds soft tissue, none air
    probs = np.zeros((3, *x.shape[1:]), np.float32)
    probs[1] = 1.0
    labels, _, _ = export(probs, grid, vol, with_probabilities=False)
    assert np.all(labels.array == 1)


def test_border_padding_stops_at_the_field_of_view_of_an_oblique_image():
    from viewer.core.resample import resample_to

    vol = _oblique_ct()
    vol = vol.with_array(np.full(vol.array.shape, 100, np.int16))
    grid = model_grid(vol, (3.0, 3.0, 3.0))  # axis-aligned: its corners lie outside the rotated image
    on_grid = resample_to(vol, grid, default=-1024, border=True).array
    centres = grid.index_to_world(np.argwhere(np.ones(on_grid.shape, bool))[:, ::-1].astype(float))
    index = vol.world_to_index(centres)
    half = np.abs(np.linalg.inv(vol.index_to_world_matrix[:3, :3]) @ np.diag(grid.spacing)).sum(axis=1) / 2
    lo, hi = -0.5 - half, np.asarray(vol.size) - 0.5 + half
    inside = np.all((index >= lo) & (index <= hi), axis=1).reshape(on_grid.shape)
    assert 0 < (~inside).sum() and np.all(on_grid[inside] == 100) and np.all(on_grid[~inside] == -1024)
    with pytest.raises(ValueError, match="identity"):
        import SimpleITK as sitk

        resample_to(vol, grid, border=True, transform=sitk.Euler3DTransform())


@pytest.mark.parametrize("fmt, card_padding, padding", [("builtin", "replicate", "edge"), ("builtin", None, "zeros"),
                                                         ("torchscript", "replicate", "edge"),
                                                         ("torchscript", None, "zeros")])
def test_a_slab_thinner_than_the_patch_is_padded_as_the_model_was_trained(tmp_path, fmt, card_padding, padding):
    """A card's window_padding says how a thin slab is padded: "replicate" (radview train's cards: its patches
    repeat the image's edge, ai.training.sampling.cut) sees no wall of zeros; without it, MONAI's zeros."""
    import torch

    from ai.engine import predict

    card = {"window_padding": card_padding} if card_padding else {}
    model = load_model(str(write_model(tmp_path / fmt, fmt=fmt, **card)))
    seen = []

    class Recorder(torch.nn.Module):
        def forward(self, x):
            seen.append(x.clone())
            return torch.zeros((x.shape[0], 3, *x.shape[2:]))

    model.network = Recorder()
    x = np.full((1, 5, 16, 16), 0.7, np.float32)  # 5 slices on a 16-slice patch
    predict(model, x, device="cpu")
    batch = model.to_network_order(torch.cat(seen))  # back to (B, C, z, y, x)
    assert batch.shape[2:] == (16, 16, 16) and torch.all(batch[:, :, 5:10] == 0.7)  # the slab, centred
    outside = torch.cat([batch[:, :, :5], batch[:, :, 10:]], dim=2)
    assert torch.all(outside == (0.7 if padding == "edge" else 0.0))
