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
        assert np.array_equal(view._plane(ct.array, view._image_cache), view.axes.extract(ct.array, k))
        assert np.array_equal(view._plane(labels.array, view._label_cache), view.axes.extract(labels.array, k))
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
    shown = view._plane(lab, view._label_cache)
    assert np.array_equal(shown, view.axes.extract(lab, k)) and (shown == 7).sum() == 100
    view.wait_for_slice_caches()
    assert view._label_cache.slab(lab, k) is not None  # rebuilt after the edits paused
    assert np.array_equal(view._plane(lab, view._label_cache), view.axes.extract(lab, k))


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
    assert (view._plane(vol.array, view._image_cache) == 300).all()


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
