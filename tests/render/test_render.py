"""Offscreen rendering with the viewer's pipeline: radiological orientation, aspect, labels in world space."""

import numpy as np
import pytest
import SimpleITK as sitk
from PIL import Image

from viewer.cli import main
from viewer.core.io import load_volume, save_volume
from viewer.core.volume import Volume

LIVER = 5  # in the shared TotalSegmentator label map


def _png(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB")).astype(np.int16)


@pytest.fixture(scope="module")
def shared_ct(shared_data):
    return load_volume(shared_data / "ct_abdomen_3mm.nii.gz")


@pytest.fixture(scope="module")
def shared_labels(shared_data):
    return load_volume(shared_data / "ct_abdomen_3mm_labels.nii.gz")


def _liver_only(labels: Volume) -> Volume:
    return labels.with_array((labels.array == LIVER).astype(np.uint8))


def _overlay_mask(with_labels, without):
    return np.abs(with_labels - without).sum(axis=2) > 30


def test_axial_shows_patient_right_on_image_left(shared_ct, shared_labels, tmp_path, artifacts):
    from viewer.render.offscreen import render_png

    k = 15
    plain = _png(render_png(shared_ct, tmp_path / "a.png", slice_index=k, preset="ct_abdomen"))
    over = _png(render_png(shared_ct, artifacts / "render_axial_liver.png", slice_index=k, preset="ct_abdomen",
                           labels=_liver_only(shared_labels)))
    mask = _overlay_mask(over, plain)
    ys, xs = np.nonzero(mask)
    assert mask.sum() > 1000
    assert xs.mean() < plain.shape[1] / 2  # liver (patient right) on the image's left half


def test_window_level_changes_pixels_the_right_way(shared_ct, tmp_path):
    from viewer.render.offscreen import render_png

    narrow = _png(render_png(shared_ct, tmp_path / "n.png", window=80, level=40))
    lung = _png(render_png(shared_ct, tmp_path / "l.png", preset="ct_lung"))
    # the lung window raises air-filled structures out of black: many more non-black pixels
    assert (lung.sum(axis=2) > 60).sum() > (narrow.sum(axis=2) > 60).sum()
    assert not np.array_equal(narrow, lung)


def test_coronal_aspect_is_physical_for_anisotropic_voxels(tmp_path):
    from viewer.render.offscreen import render_png

    arr = np.full((20, 64, 64), -1000, np.int16)
    arr[5:15, 16:48, 16:48] = 500  # a box 32 x 10 voxels in coronal; voxels 1 mm x 4 mm -> 32 mm x 40 mm
    vol = Volume(arr, spacing=(1.0, 1.0, 4.0), modality="CT", units="HU")
    img = _png(render_png(vol, tmp_path / "c.png", view="coronal", window=400, level=0, size=400))
    ys, xs = np.nonzero(img.min(axis=2) > 200)  # white box; the corner text is yellowish (blue < 160)
    width, height = xs.max() - xs.min() + 1, ys.max() - ys.min() + 1
    assert height / width == pytest.approx(40 / 32, rel=0.08)


def test_label_overlay_is_aligned_in_world_space_for_flipped_label_file(shared_ct, shared_labels, tmp_path):
    from viewer.render.offscreen import render_png

    liver = _liver_only(shared_labels)
    flipped = sitk.Flip(liver.to_sitk(), [True, False, True])  # voxel order reversed, geometry follows
    path = tmp_path / "flipped.nii.gz"
    sitk.WriteImage(flipped, str(path))
    flipped_vol = load_volume(path)
    assert not np.array_equal(flipped_vol.array, liver.array)
    assert not np.allclose(flipped_vol.direction, liver.direction)
    a = _png(render_png(shared_ct, tmp_path / "a.png", slice_index=15, labels=liver))
    b = _png(render_png(shared_ct, tmp_path / "b.png", slice_index=15, labels=flipped_vol))
    assert np.array_equal(a, b)


def _foreground(img: np.ndarray) -> np.ndarray:
    """Pixels that differ from the background colour (the top-left corner pixel)."""
    return np.abs(img - img[0, 0]).sum(axis=2) > 30


def test_3d_render_is_not_blank(tmp_path, artifacts, shared_ct):
    from viewer.render.offscreen import render_png

    img = _png(render_png(shared_ct, artifacts / "render_3d.png", view="3d", preset="ct_bone", size=300))
    fg = _foreground(img)
    assert fg.mean() > 0.02
    assert img[fg].mean() > img[~fg].mean() + 40  # bone is drawn bright on the dark background


def _left_blob_volume() -> Volume:
    """A CT-like box of soft tissue with a dense ball on the patient's left, stored with flipped x/y axes."""
    arr = np.full((24, 40, 48), -1000, np.int16)
    arr[4:20, 8:32, 6:42] = 40
    arr[8:16, 16:24, 8:16] = 1000  # low x index: with direction diag(-1,-1,1) that is patient LEFT (+x world)
    return Volume(arr, spacing=(2.0, 2.0, 3.0), origin=(50.0, 40.0, 0.0), direction=np.diag([-1.0, -1.0, 1.0]),
                  modality="CT", units="HU")


@pytest.mark.parametrize("mapper", ["cpu", "gpu"])
def test_3d_anterior_view_shows_patient_left_on_screen_right(mapper):
    from vtkmodules.vtkRenderingCore import vtkRenderer, vtkRenderWindow

    from viewer.render.offscreen import window_pixels
    from viewer.render.volume_view import VolumeView

    win = vtkRenderWindow()
    win.SetOffScreenRendering(1)
    win.SetSize(200, 200)
    ren = vtkRenderer()
    win.AddRenderer(ren)
    vv = VolumeView(ren, mapper)
    vv.set_volume(_left_blob_volume())
    assert vv.preset == "ct_bone"
    win.Render()
    assert win.GetMultiSamples() == 0
    bone = window_pixels(win).astype(int).sum(axis=2) > 250
    win.Finalize()
    ys, xs = np.nonzero(bone)
    assert bone.sum() > 30
    assert xs.mean() > 110  # right half of the screen: patient left, seen from the front


def test_a_large_volume_is_ray_cast_from_an_in_plane_decimated_copy_in_the_same_place(monkeypatch):
    """Above MAX_RENDERED_VOXELS the 3D view renders every k-th row and column: voxel (i, j, k) of the copy is voxel
    (2i, 2j, k) of the image in world space, and the dense ball still shows on the patient's left."""
    from vtkmodules.vtkRenderingCore import vtkRenderer, vtkRenderWindow

    from viewer.render import volume_view
    from viewer.render.offscreen import window_pixels

    vol = _left_blob_volume()
    assert volume_view.rendered_copy(vol) is vol  # small: rendered as it is
    monkeypatch.setattr(volume_view, "MAX_RENDERED_VOXELS", vol.array.size // 3)
    copy = volume_view.rendered_copy(vol)
    assert copy.array.shape == (24, 20, 24) and copy.spacing == (4.0, 4.0, 3.0)
    assert np.array_equal(copy.array, vol.array[:, ::2, ::2])
    assert np.allclose(copy.index_to_world((5, 7, 9)), vol.index_to_world((10, 14, 9)))
    win = vtkRenderWindow()
    win.SetOffScreenRendering(1)
    win.SetSize(200, 200)
    ren = vtkRenderer()
    win.AddRenderer(ren)
    vv = volume_view.VolumeView(ren, "cpu")
    vv.set_volume(vol)
    assert vv.volume is vol and vv.image_data.GetDimensions() == (24, 20, 24)
    win.Render()
    bone = window_pixels(win).astype(int).sum(axis=2) > 250
    win.Finalize()
    assert bone.sum() > 30 and np.nonzero(bone)[1].mean() > 110


def test_3d_auto_mapper_uses_cpu_ray_cast_on_software_opengl():
    from vtkmodules.vtkRenderingCore import vtkRenderer, vtkRenderWindow

    from viewer.render.render_window import is_software_opengl
    from viewer.render.volume_view import VolumeView

    win = vtkRenderWindow()
    win.SetOffScreenRendering(1)
    win.SetSize(64, 64)
    ren = vtkRenderer()
    win.AddRenderer(ren)
    vv = VolumeView(ren)
    vv.set_volume(_left_blob_volume())
    seen = []
    ren.AddObserver("EndEvent", lambda obj, _: seen.append(is_software_opengl(obj.GetRenderWindow())))
    win.Render()
    win.Finalize()
    expected = "vtkFixedPointVolumeRayCastMapper" if seen[0] else "vtkOpenGLGPUVolumeRayCastMapper"
    assert vv.mapper_name() == expected


def test_display_world_round_trip_and_letters():
    from vtkmodules.vtkRenderingCore import vtkRenderer, vtkRenderWindow

    from viewer.render.slice_view import SliceView

    win = vtkRenderWindow()
    win.SetOffScreenRendering(1)
    win.SetSize(300, 200)
    ren = vtkRenderer()
    win.AddRenderer(ren)
    vol = Volume(np.zeros((10, 40, 50), np.int16), spacing=(0.8, 0.8, 2.5), origin=(10, -5, 3),
                 direction=np.diag([-1, -1, 1]), modality="CT", units="HU")
    sv = SliceView(ren, "axial")
    sv.set_volume(vol)
    win.Render()
    p = vol.index_to_world((12, 30, sv.slice_index))
    x, y = sv.world_to_display(p)
    assert np.allclose(sv.display_to_world(x, y), p, atol=1e-6)
    assert sv.orientation_labels() == {"left": "R", "right": "L", "top": "A", "bottom": "P"}
    # patient left (+x world) must be further right on screen than patient right
    xl, _ = sv.world_to_display(p + np.array([10.0, 0, 0]))
    assert xl > x
    # a cursor between two slices: the corner text gives the shown slice's own position, not the cursor's
    between = vol.index_to_world((12, 30, 4.4))
    sv.set_cursor(between)
    assert sv.slice_index == 4
    assert sv.slice_position_mm == pytest.approx(vol.index_to_world((12, 30, 4))[2])
    assert sv.slice_position_mm != pytest.approx(between[2])
    win.Finalize()


def test_render_command(shared_data, tmp_path):
    lab = tmp_path / "liver.nii.gz"
    labels = load_volume(shared_data / "ct_abdomen_3mm_labels.nii.gz")
    save_volume(_liver_only(labels), lab)
    out = tmp_path / "r.png"
    assert main(["render", str(shared_data / "ct_abdomen_3mm.nii.gz"), "--out", str(out), "--view", "sagittal",
                 "--labels", str(lab), "--window", "400", "--level", "40", "--size", "256"]) == 0
    assert _png(out).shape == (256, 256, 3) and _png(out).std() > 10
    assert main(["render", str(shared_data / "ct_abdomen_3mm.nii.gz"), "--out", str(out), "--slice", "999"]) == 2


def test_label_surfaces_put_the_liver_on_the_left_of_an_anterior_view(shared_ct, shared_labels, artifacts):
    from vtkmodules.vtkRenderingCore import vtkRenderer, vtkRenderWindow

    from viewer.render.colormaps import label_color
    from viewer.render.offscreen import save_png, window_pixels
    from viewer.render.volume_view import VolumeView

    win = vtkRenderWindow()
    win.SetOffScreenRendering(1)
    win.SetSize(300, 300)
    ren = vtkRenderer()
    win.AddRenderer(ren)
    vv = VolumeView(ren)
    vv.set_volume(shared_ct)
    vv.actor.VisibilityOff()
    vv.set_labels_surfaces(_liver_only(shared_labels), colors={1: (255, 0, 0)})
    win.Render()
    save_png(win, artifacts / "render_liver_surface.png")
    img = window_pixels(win).astype(int)
    win.Finalize()
    red = (img[..., 0] > 100) & (img[..., 1] < 40) & (img[..., 2] < 40)
    assert red.sum() > 500
    assert np.nonzero(red)[1].mean() < 150  # patient right on the screen's left, seen from the front
    assert label_color(LIVER) != (255, 0, 0)


def test_pet_mip_is_dark_on_white_with_the_hot_spot_darkest():
    from vtkmodules.vtkRenderingCore import vtkRenderer, vtkRenderWindow

    from viewer.render.offscreen import window_pixels
    from viewer.render.volume_view import VolumeView

    suv = np.full((30, 40, 40), 0.3, np.float32)
    suv[5:25, 5:35, 5:35] = 1.5
    suv[12:18, 18:24, 18:24] = 12.0  # lesion above the SUV 6 ceiling
    win = vtkRenderWindow()
    win.SetOffScreenRendering(1)
    win.SetSize(160, 160)
    ren = vtkRenderer()
    win.AddRenderer(ren)
    vv = VolumeView(ren)
    vv.set_volume(Volume(suv, spacing=(3.0, 3.0, 3.0), modality="PT", units="SUVbw"))
    assert vv.preset == "pet_mip"
    win.Render()
    grey = window_pixels(win).astype(int).mean(axis=2)
    win.Finalize()
    assert grey[0, 0] > 240  # white background
    assert grey.min() < 30 and grey[75:85, 75:85].mean() < grey[40, 80]  # lesion darkest, in the middle
