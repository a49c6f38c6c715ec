"""x-major slice copies: sagittal views read the same pixels from them, and never show stale voxels after edits."""

import numpy as np
import pytest
from vtkmodules.vtkRenderingCore import vtkRenderer

from viewer.core.volume import Volume
from viewer.render.slice_cache import XMajorCache, x_major_copy
from viewer.render.slice_view import SliceView


@pytest.fixture
def ct_and_labels(shared_data):
    from viewer.core.io import load_volume

    ct = load_volume(shared_data / "ct_abdomen_3mm.nii.gz")  # direction diag(-1, -1, 1): flipped in-plane axes
    labels = load_volume(shared_data / "ct_abdomen_3mm_labels.nii.gz")
    return ct, labels.with_array(labels.array.astype(np.uint8))


def test_x_major_copy_holds_the_x_slices_contiguously():
    a = np.arange(5 * 7 * 70, dtype=np.int16).reshape(5, 7, 70)  # fewer z slices than one copy block
    b = np.arange(40 * 3 * 4, dtype=np.int16).reshape(40, 3, 4)  # 40 z slices: two copy blocks
    for arr in (a, b):
        copy = x_major_copy(arr)
        assert copy.flags.c_contiguous and copy.shape == (arr.shape[2], arr.shape[0], arr.shape[1])
        for k in range(arr.shape[2]):
            assert np.array_equal(copy[k], arr[:, :, k])


def test_sagittal_slices_from_the_copies_equal_the_strided_ones(ct_and_labels):
    ct, labels = ct_and_labels
    view = SliceView(vtkRenderer(), "sagittal")
    view.set_volume(ct)
    view.set_labels(labels.array)
    assert view.wait_for_slice_caches()  # sagittal: slice axis x, copies built
    for k in (0, 17, ct.size[0] - 1):
        view.set_slice_index(k)
        assert np.array_equal(view.geometry.plane(ct.array, view.image.cache), view.axes.extract(ct.array, k))
        assert np.array_equal(view.geometry.plane(labels.array, view.labels.cache), view.axes.extract(labels.array, k))
    axial = SliceView(vtkRenderer(), "axial")
    axial.set_volume(ct)
    assert not axial.wait_for_slice_caches()  # axial slices are contiguous already: no copy


def test_label_edits_show_at_once_and_the_copy_is_rebuilt(ct_and_labels):
    ct, labels = ct_and_labels
    lab = labels.array.copy()
    view = SliceView(vtkRenderer(), "sagittal")
    view.set_volume(ct)
    view.set_labels(lab)
    view.wait_for_slice_caches()
    k = 60
    view.set_slice_index(k)
    lab[:, :, k] = 0
    lab[10:20, 30:40, k] = 7  # an in-place edit, then the GUI's update call
    view.update_labels()
    shown = view.geometry.plane(lab, view.labels.cache)
    assert np.array_equal(shown, view.axes.extract(lab, k)) and (shown == 7).sum() == 100
    view.wait_for_slice_caches()
    assert view.labels.cache.slab(lab, k) is not None  # rebuilt after the edits paused
    assert np.array_equal(view.geometry.plane(lab, view.labels.cache), view.axes.extract(lab, k))


def test_a_change_while_copying_discards_that_copy():
    arr = np.zeros((64, 64, 64), np.int16)
    cache = XMajorCache()
    cache.invalidate(arr, delay_s=0.2)
    cache.invalidate(arr, delay_s=0.0)  # the voxels changed again before the first build started
    cache.wait()
    assert cache.ready and cache.slab(arr, 3).shape == (64, 64, 1)
    assert cache.slab(np.zeros_like(arr), 3) is None  # another array: never served from this copy
    cache.invalidate(None)
    assert not cache.ready


def test_progressive_voxels_are_not_served_stale():
    vol = Volume(np.zeros((20, 30, 40), np.int16), spacing=(1, 1, 1), modality="CT", units="HU")
    view = SliceView(vtkRenderer(), "sagittal")
    view.set_volume(vol)
    view.wait_for_slice_caches()
    vol.array[:, :, 5] = 300  # slices land in place
    view.voxels_changed()
    view.set_slice_index(5)
    assert (view.geometry.plane(vol.array, view.image.cache) == 300).all()


def test_edits_in_a_row_are_copied_once_by_one_thread():
    import threading

    arr = np.zeros((16, 16, 16), np.uint8)
    cache = XMajorCache()
    before = set(threading.enumerate())
    for _ in range(50):  # brush dabs
        cache.invalidate(arr, delay_s=0.2)
    assert len(set(threading.enumerate()) - before) == 1
    assert not cache.ready
    cache.wait()
    assert cache.ready


def test_an_edited_box_is_patched_into_the_current_copy():
    arr = np.zeros((40, 30, 20), np.uint8)
    cache = XMajorCache()
    cache.invalidate(arr)
    cache.wait()
    arr[5:9, 10:12, 3:6] = 4
    cache.update(arr, (slice(5, 9), slice(10, 12), slice(3, 6)))
    assert cache.ready  # patched in place: no rebuild dropped the copy
    for k in range(arr.shape[2]):
        assert np.array_equal(cache.slab(arr, k), arr[:, :, k:k + 1])
    cache.update(np.ones_like(arr), (slice(0, 1),) * 3)  # another array's edit leaves this copy alone
    assert cache.ready and np.array_equal(cache.slab(arr, 0), arr[:, :, 0:1])


def test_an_edit_while_the_copy_is_built_rebuilds_it():
    arr = np.zeros((64, 64, 64), np.uint8)
    cache = XMajorCache()
    cache.invalidate(arr, delay_s=0.2)
    arr[1:3, 1:3, 7] = 9  # before the copy exists: it must not miss this edit
    cache.update(arr, (slice(1, 3), slice(1, 3), slice(7, 8)))
    cache.wait()
    assert cache.ready and np.array_equal(cache.slab(arr, 7), arr[:, :, 7:8])


def test_a_dab_patches_the_sagittal_label_copy_and_shows_at_once(ct_and_labels, tmp_path, artifacts):
    from vtkmodules.util.numpy_support import vtk_to_numpy
    from vtkmodules.vtkRenderingCore import vtkRenderWindow

    from viewer.core.session import Session
    from viewer.render.layers.labels import colour_labels
    from viewer.render.offscreen import save_png, window_pixels

    ct, _ = ct_and_labels
    session = Session(home=tmp_path / "home")
    seg = session.new_segmentation(ct, "drawn")
    win, ren = vtkRenderWindow(), vtkRenderer()
    win.SetOffScreenRendering(1)
    win.SetSize(300, 300)
    win.AddRenderer(ren)
    view = SliceView(ren, "sagittal")
    view.set_volume(ct)
    view.set_labels(seg.as_volume())
    assert view.wait_for_slice_caches()
    win.Render()
    before = window_pixels(win).astype(int)
    centre = ct.index_to_world((view.slice_index, 60, 15))  # (x, y, z) index on the shown sagittal slice
    assert session.paint(seg, 3, centre, 10.0) > 0  # a 10 mm dab
    view.update_labels()  # as the GUI does after each dab
    assert view.labels.cache.ready  # the x-major copy was patched, not dropped for a rebuild
    expected = view.axes.extract(seg.array, view.slice_index)
    assert (expected == 3).sum() > 20
    assert np.array_equal(view.labels.cache.slab(seg.array, view.slice_index)[..., 0],
                          seg.array[:, :, view.slice_index])
    img = view.labels.actor.GetMapper().GetInput()  # the bounding box of coloured pixels
    cols, rows, _ = img.GetDimensions()
    c0, r0 = (round(o / s) for o, s in zip(img.GetOrigin()[:2], view.plane_spacing, strict=True))
    shown = vtk_to_numpy(img.GetPointData().GetScalars()).reshape(rows, cols, 4)
    coloured = colour_labels(expected, view.labels.fill32, view.labels.edge32, outline=True)
    assert np.array_equal(shown, coloured[r0:r0 + rows, c0:c0 + cols])
    coloured[r0:r0 + rows, c0:c0 + cols] = 0
    assert not coloured[..., 3].any()  # nothing visible left out of the box
    win.Render()
    save_png(win, artifacts / "sagittal_after_dab.png")
    assert (np.abs(window_pixels(win).astype(int) - before).sum(axis=2) > 30).sum() > 50  # the dab on screen
    win.Finalize()
    session.close()
