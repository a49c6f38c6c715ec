"""Whole-label tools in mm on real data, committed through Session.apply as one undo step each."""

import numpy as np
import pytest

from viewer.core import label_tools as lt
from viewer.core.io import load_volume
from viewer.core.session import Session

SPACING = (0.8, 0.8, 2.5)  # x, y, z


def _ball(shape, centre, r_mm, spacing=SPACING):
    z, y, x = np.ogrid[tuple(slice(0, n) for n in shape)]
    return ((x - centre[2]) * spacing[0]) ** 2 + ((y - centre[1]) * spacing[1]) ** 2 + \
        ((z - centre[0]) * spacing[2]) ** 2 <= r_mm**2


def test_grow_and_shrink_are_in_mm_on_anisotropic_grids():
    ball = _ball((40, 80, 80), (20, 40, 40), 10)
    grown = lt.grow(ball, SPACING, 5)
    assert grown.sum() == pytest.approx(_ball((40, 80, 80), (20, 40, 40), 15).sum(), rel=0.08)
    shrunk = lt.shrink(ball, SPACING, 5)
    assert shrunk.sum() == pytest.approx(_ball((40, 80, 80), (20, 40, 40), 5).sum(), rel=0.15)


def test_islands_holes_largest_and_logic():
    m = _ball((40, 80, 80), (20, 40, 40), 10)
    speck = np.zeros_like(m)
    speck[5, 5, 5] = True
    assert not lt.remove_islands(m | speck, SPACING, 5.0)[5, 5, 5]
    assert lt.keep_largest(m | speck).sum() == m.sum()
    hollow = m & ~_ball(m.shape, (20, 40, 40), 5)
    assert lt.fill_holes(hollow).sum() == m.sum()
    assert lt.logical(m, hollow, "subtract").sum() == m.sum() - hollow.sum()
    with pytest.raises(ValueError, match="union"):
        lt.logical(m, m, "xor")


def test_smoothing_removes_a_spike_and_keeps_the_bulk():
    m = _ball((40, 80, 80), (20, 40, 40), 10)
    spiky = m.copy()
    spiky[20, 40, 40:70] = True
    smoothed = lt.smooth(spiky, SPACING, 2.0)
    assert not smoothed[20, 40, 60] and smoothed[20, 40, 40]
    assert lt.smooth(spiky, SPACING, 2.0, "opening")[20, 40, 40]


def test_interpolation_fills_between_drawn_slices():
    m = np.zeros((11, 40, 40), bool)
    m[0, 10:30, 10:30] = True
    m[10, 15:25, 15:25] = True
    filled = lt.interpolate_slices(m)
    assert all(filled[k].any() for k in range(11))
    assert filled[0].sum() > filled[5].sum() > filled[10].sum()


def test_region_grow_on_real_ct_and_one_undo_step(shared_data, tmp_path):
    ct = load_volume(shared_data / "ct_abdomen_3mm.nii.gz")
    labels = load_volume(shared_data / "ct_abdomen_3mm_labels.nii.gz")
    liver = labels.array == 5
    depth = np.where(liver, np.abs(ct.array.astype(float) - np.median(ct.array[liver])) < 20, False)
    k, j, i = np.unravel_index(np.argmax(lt.shrink(liver, ct.spacing, 6) & depth), liver.shape)
    seed = ct.index_to_world((i, j, k))
    lo, hi = np.percentile(ct.array[liver], [5, 95])
    grown = lt.region_grow(ct, seed, lo, hi)
    assert grown[k, j, i] and (grown & liver).sum() > 0.5 * liver.sum()
    s = Session(home=tmp_path)
    seg = s.new_segmentation(ct, "grow")
    s.apply(seg, lt.set_label(seg.array, grown, 1), "region grow")
    assert len(s.history) == 1 and (seg.array == 1).sum() == grown.sum()
    s.undo()
    assert not seg.array.any()
    s.close()


def test_set_label_respects_overwrite_and_editable_area():
    labels = np.zeros((1, 1, 6), np.uint8)
    labels[0, 0, :2] = 2
    mask = np.ones_like(labels, bool)
    assert lt.set_label(labels, mask, 1, overwrite=False).tolist() == [[[2, 2, 1, 1, 1, 1]]]
    editable = np.zeros_like(mask)
    editable[0, 0, 4:] = True
    assert lt.set_label(labels, mask, 1, editable=editable).tolist() == [[[2, 2, 0, 0, 1, 1]]]
