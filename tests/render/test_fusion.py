"""Fused volume layer: PET over CT through the registration, colour maps, threshold, blend modes, the CLI."""

import json

import numpy as np
import pytest
from PIL import Image

from viewer.cli import main
from viewer.core.phantom import PET_TO_CT, make_phantom
from viewer.core.registration import Transform
from viewer.core.registration.synthetic import phantom_pet_truth

SIZE = 512
#: SUV below which the fused PET is transparent in these tests: above every organ of the phantom (kidneys 3.0),
#: below every lesion's blurred maximum (the lung nodule's is 4.6).
LESION_THRESHOLD = 3.4
#: Pixels whose colour changes by more than this when the PET is fused count as coloured.
CHANGED = 40


def pet_to_ct_matrix() -> np.ndarray:
    """Fixed (CT) -> moving (PET) 4x4 of the phantom: a PET point p sits at CT point R p + t, so p = R^T (q - t)."""
    return phantom_pet_truth({"pet_to_ct": PET_TO_CT}).matrix


@pytest.fixture(scope="module")
def phantom():
    return make_phantom()


@pytest.fixture
def view(offscreen_slice_view):
    """view(orientation) -> (SliceView, render() -> RGB pixels) in a SIZE x SIZE offscreen window."""
    return lambda orientation: offscreen_slice_view(orientation, SIZE)


def _coloured_world_points(sv, before, after) -> np.ndarray:
    """World points (n, 3) of the pixels whose colour the fused layer changed."""
    rows, cols = np.nonzero(np.abs(after - before).sum(axis=2) > CHANGED)
    return np.array([sv.display_to_world(c, SIZE - 1 - r) for r, c in zip(rows, cols, strict=True)]).reshape(-1, 3)


@pytest.mark.parametrize("orientation", ["axial", "coronal", "sagittal"])
def test_fused_pet_colours_each_lesion_and_nothing_far_from_the_lesions(phantom, view, orientation, artifacts):
    """Through the known PET->CT transform, PET above threshold shows exactly where truth.json puts the lesions."""
    lesions = phantom.truth["lesions"]
    assert min(les["suv_max"] for les in lesions) > LESION_THRESHOLD + 1
    sv, render = view(orientation)
    sv.set_volume(phantom.ct)
    sv.reset_camera()
    for les in lesions:
        centre = np.asarray(les["center_mm"], float)
        sv.set_fusion(None)
        sv.set_cursor(centre)
        sv.set_crosshair_visible(False)
        before = render()
        sv.set_fusion(phantom.pet, pet_to_ct_matrix(), colormap="hot", opacity=0.7, window=(0.0, 15.0),
                      threshold=LESION_THRESHOLD)
        after = render()
        Image.fromarray(after.astype(np.uint8)).save(artifacts / f"fusion_{orientation}_{les['name']}.png")
        points = _coloured_world_points(sv, before, after)
        assert len(points) > 20, les["name"]
        x, y = (int(round(v)) for v in sv.world_to_display(centre))
        r, g, b = after[SIZE - 1 - y, x]
        assert r > b + 80, (les["name"], (r, g, b))  # 'hot' at SUV 5-12 of 0-15: red to yellow
        in_plane = np.ones(3, bool)
        in_plane[{"axial": 2, "coronal": 1, "sagittal": 0}[orientation]] = False
        # every coloured pixel lies within the lesion plus the PET blur (FWHM 7 mm), none far from it
        distance = np.linalg.norm((points - centre)[:, in_plane], axis=1)
        assert distance.max() < les["radius_mm"] + 8, (les["name"], distance.max())
        # and the colour is centred on the lesion (the PET grid is 4 mm; the transform moves it ~5 mm)
        assert np.linalg.norm((points.mean(axis=0) - centre)[in_plane]) < 2.0, les["name"]


def test_the_transform_moves_the_overlay_onto_the_lesion(phantom, view):
    """Without the registration (identity) the liver lesion's colour lands several mm off; with it, on it."""
    les = phantom.truth["lesions"][0]
    centre = np.asarray(les["center_mm"], float)
    sv, render = view("axial")
    sv.set_volume(phantom.ct)
    sv.set_cursor(centre)
    sv.set_crosshair_visible(False)
    before = render()
    offsets = {}
    for name, transform in (("identity", None), ("registered", Transform.from_matrix(pet_to_ct_matrix()))):
        sv.set_fusion(phantom.pet, transform, threshold=LESION_THRESHOLD, opacity=0.7)
        sv.set_crosshair_visible(False)
        points = _coloured_world_points(sv, before, render())
        offsets[name] = np.linalg.norm((points.mean(axis=0) - centre)[:2])
    assert offsets["registered"] < 2.0 < 4.0 < offsets["identity"], offsets


def test_colours_threshold_and_blend_modes():
    """Below the threshold and NaN transparent; checkerboard opaque; difference spans 0-1; styles validated."""
    from viewer.render.layers.fusion import FusionColours, FusionStyle

    values = np.array([[np.nan, 0.5, 1.9, 2.1, 6.0, 50.0]], np.float32)
    rgba = FusionColours(FusionStyle(colormap="hot", window=(0.0, 6.0), threshold=2.0)).rgba(values)
    assert rgba[0, :, 3].tolist() == [0, 0, 0, 255, 255, 255]
    assert rgba[0, 4].tolist() == rgba[0, 5].tolist() == [255, 255, 255, 255]  # top of 'hot', clamped above
    board = FusionColours(FusionStyle(colormap="inferno", window=(1.0, 6.0), blend="checkerboard"))
    assert board.rgba(values)[0, :, 3].tolist() == [0, 255, 255, 255, 255, 255]  # only NaN (image tiles) clear
    assert board.rgba(np.array([[0.5, 1.0]], np.float32))[0].tolist() == [[0, 0, 4, 255]] * 2  # below: lowest
    diff = FusionColours(FusionStyle(colormap="gray", window=(0.0, 6.0), blend="difference"))
    assert diff.rgba(np.array([[0.0, 1.0]], np.float32))[0, :, 0].tolist() == [0, 255]
    rainbow = FusionColours(FusionStyle(colormap="rainbow", window=(0.0, 1.0), threshold=0.0))
    assert rainbow.rgba(np.array([[0.0, 1.0]], np.float32))[0, :, :3].tolist() == [[0, 0, 255], [255, 0, 0]]
    for bad in ({"colormap": "jet"}, {"blend": "add"}, {"opacity": 1.5}, {"window": (5.0, 1.0)}, {"tile_mm": 0}):
        with pytest.raises(ValueError):
            FusionStyle(**bad)


def test_checkerboard_and_difference_on_screen(phantom, view, artifacts):
    """Checkerboard: tiles of tile_mm alternate image and opaque PET; difference: |CT - PET| normalised, opaque."""
    sv, render = view("axial")
    sv.set_volume(phantom.ct)
    sv.set_crosshair_visible(False)
    plain = render()
    sv.set_fusion(phantom.pet, pet_to_ct_matrix(), blend="checkerboard", tile_mm=30.0, colormap="rainbow")
    sv.set_crosshair_visible(False)
    board = render()
    Image.fromarray(board.astype(np.uint8)).save(artifacts / "fusion_checkerboard.png")
    changed = np.abs(board - plain).sum(axis=2) > CHANGED
    centre = np.array(sv.world_to_display(sv.cursor)).round().astype(int)
    px_per_mm = SIZE / (2 * sv.renderer.GetActiveCamera().GetParallelScale())
    tile_px = int(30.0 * px_per_mm)
    # along a row through the body, changed runs alternate with unchanged runs about one tile long
    row = changed[SIZE - 1 - centre[1], centre[0] - 2 * tile_px: centre[0] + 2 * tile_px]
    runs = np.diff(np.flatnonzero(np.diff(row.astype(int)))).tolist()
    assert len(runs) >= 2 and all(abs(r - tile_px) <= 3 for r in runs), (runs, tile_px)
    sv.set_fusion_style(blend="difference", colormap="gray", opacity=1.0)
    diff = render()
    Image.fromarray(diff.astype(np.uint8)).save(artifacts / "fusion_difference.png")
    assert np.abs(diff - plain).sum(axis=2).mean() > CHANGED  # opaque: the CT is replaced
    assert sv.fusion_style.blend == "difference"


def test_bspline_transform_is_resampled_off_the_caller_thread(phantom, view):
    """A non-linear transform is resampled once onto the fixed grid in a worker; then it shows like a linear one."""
    import SimpleITK as sitk

    bspline = sitk.BSplineTransformInitializer(phantom.ct.to_sitk(), [4, 4, 4])  # zero deformation
    transform = Transform(bspline, "zero B-spline")
    assert not transform.is_linear
    sv, _ = view("coronal")
    sv.set_volume(phantom.ct)
    sv.set_fusion(phantom.pet, transform)
    sv.fusion.wait()
    sv.fusion.update()
    resliced = sv.fusion.values()
    sv.set_fusion(phantom.pet, None)
    direct = sv.fusion.values()
    inside = ~np.isnan(direct) & ~np.isnan(resliced)
    assert inside.mean() > 0.5
    assert np.abs(resliced[inside] - direct[inside]).max() < 0.5  # two linear interpolations, SUV units


def test_cli_render_overlay_writes_the_fused_view(demo_study, tmp_path, artifacts):
    """`radview render CT --overlay PET --overlay-transform T.tfm ...` renders the fused view of the pipeline."""
    from viewer.core.io import load_volume
    from viewer.render.layers.fusion import FusionStyle
    from viewer.render.offscreen import render_png

    tfm = Transform.from_matrix(pet_to_ct_matrix()).save(tmp_path / "pet_to_ct.tfm")
    ct = load_volume(demo_study.ct_dir)
    liver_lesion = json.loads(demo_study.truth.read_text())["lesions"][0]
    k = int(round(ct.world_to_index(liver_lesion["center_mm"])[2]))
    out = artifacts / "cli_render_overlay.png"
    args = ["render", str(demo_study.ct_dir), "--overlay", str(demo_study.pet_dir), "--overlay-transform", str(tfm),
            "--overlay-colormap", "inferno", "--overlay-opacity", "0.6", "--overlay-threshold", "2.5",
            "--out", str(out), "--view", "axial", "--slice", str(k)]
    assert main(args) == 0
    fused = np.asarray(Image.open(out).convert("RGB")).astype(int)
    pet = load_volume(demo_study.pet_dir)
    assert pet.units == "SUVbw"
    same = render_png(ct, tmp_path / "same.png", view="axial", slice_index=k, overlay=pet,
                      overlay_transform=Transform.load(tfm),
                      overlay_style=FusionStyle.for_volume(pet, colormap="inferno", opacity=0.6, threshold=2.5))
    assert np.array_equal(fused, np.asarray(Image.open(same).convert("RGB")).astype(int))
    plain = np.asarray(Image.open(render_png(ct, tmp_path / "plain.png", view="axial", slice_index=k))
                       .convert("RGB")).astype(int)
    assert (np.abs(fused - plain).sum(axis=2) > CHANGED).sum() > 500
    assert main(["render", str(demo_study.ct_dir), "--overlay-opacity", "0.5", "--out", str(tmp_path / "x.png")]) == 2


def test_3d_view_places_the_fused_volume_through_the_transform(phantom, tmp_path, artifacts):
    """In 3D the PET is a second volume placed at R p + t (PET -> CT) and adds its colours to the rendering."""
    from vtkmodules.vtkRenderingCore import vtkRenderer, vtkRenderWindow

    from viewer.render.offscreen import render_png
    from viewer.render.volume_view import VolumeView

    win = vtkRenderWindow()
    win.SetOffScreenRendering(1)
    vv = VolumeView(vtkRenderer())
    win.AddRenderer(vv.renderer)
    vv.set_volume(phantom.ct)
    vv.set_fusion(phantom.pet, Transform.from_matrix(pet_to_ct_matrix()))
    lo, hi = phantom.pet.world_bounds()
    moving_to_fixed = np.linalg.inv(pet_to_ct_matrix())
    expected_centre = (moving_to_fixed @ np.append((lo + hi) / 2, 1.0))[:3]
    bounds = np.asarray(vv.fusion.actor.GetBounds()).reshape(3, 2)
    assert np.allclose(bounds.mean(axis=1), expected_centre, atol=0.5)
    win.Finalize()
    style = {"overlay_transform": pet_to_ct_matrix(), "overlay": phantom.pet}
    plain = np.asarray(Image.open(render_png(phantom.ct, tmp_path / "3d.png", view="3d", preset="ct_bone")))
    fused = np.asarray(Image.open(render_png(phantom.ct, artifacts / "fusion_3d.png", view="3d", preset="ct_bone",
                                             **style)))
    assert (np.abs(fused.astype(int) - plain).sum(axis=2) > CHANGED).sum() > 100
