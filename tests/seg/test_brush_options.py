"""Brush options on the real CT: 2D disc in a view's plane, threshold paint, editable area, overwrite rules.

Every expected voxel count is computed here independently (voxel-centre distances in mm from the
index grid and spacing), not with the code under test.
"""

import numpy as np
import pytest

from viewer.core import label_tools as lt
from viewer.core.editing import stroke_points, writable

LIVER, KIDNEY = 5, 2  # ids in the reference label map
EDGE_IJK = (91, 37, 6)  # (x, y, z) index where liver, right kidney and background meet


@pytest.fixture
def organs(session, ct, shared_data):
    """A segmentation holding the reference liver (5) and right kidney (2) of the real CT."""
    from viewer.core.io import load_volume

    ref = load_volume(shared_data / "ct_abdomen_3mm_labels.nii.gz").array
    return session.new_segmentation(ct, "organs", labels=np.where(np.isin(ref, [LIVER, KIDNEY]), ref, 0),
                                    names={LIVER: "liver", KIDNEY: "kidney_right"})


def _ball(vol, ijk, r_mm, flat_axis=None):
    """Independent reference: voxels whose centres lie within r_mm of voxel ijk (optionally one plane)."""
    z, y, x = np.indices(vol.array.shape)
    sx, sy, sz = vol.spacing
    d2 = ((x - ijk[0]) * sx) ** 2 + ((y - ijk[1]) * sy) ** 2 + ((z - ijk[2]) * sz) ** 2
    ball = d2 <= r_mm**2
    if flat_axis is not None:
        ball &= (x, y, z)[flat_axis] == ijk[flat_axis]
    return ball


def test_axial_disc_paints_one_slice_with_the_exact_in_plane_circle(session, ct):
    seg = session.new_segmentation(ct, "disc")
    ijk = (60, 50, 15)
    centre = ct.index_to_world(np.add(ijk, (0.3, -0.2, 0.4)))  # off-centre: snaps to slice 15's plane
    n = session.paint(seg, 1, ct.index_to_world(ijk), 7.5, shape="disc", orientation="axial")
    expected = _ball(ct, ijk, 7.5, flat_axis=2)
    assert n == expected.sum() == 21  # i^2 + j^2 <= 6.25 in 3 mm voxels
    assert np.array_equal(seg.array == 1, expected)
    assert len(session.history) == 1
    session.undo()
    session.paint(seg, 1, centre, 7.5, shape="disc", orientation="axial")
    assert np.flatnonzero((seg.array == 1).any(axis=(1, 2))).tolist() == [15]


def test_coronal_and_sagittal_discs_on_anisotropic_voxels(session, shared_data):
    vol = session.open(shared_data / "ct_abdomen_dicom")  # 0.977 x 0.977 x 2.0 mm
    seg = session.new_segmentation(vol, "aniso")
    ijk = (256, 250, 10)
    session.paint(seg, 1, vol.index_to_world(ijk), 5.0, shape="disc", orientation="coronal")
    coronal = _ball(vol, ijk, 5.0, flat_axis=1)
    assert np.array_equal(seg.array == 1, coronal)
    # in mm, not voxels: 5 mm reach 5 voxels either side along x but only 2 slices along z
    assert (seg.array[10, 250] == 1).sum() == 11 and (seg.array[:, 250, 256] == 1).sum() == 5
    session.paint(seg, 2, vol.index_to_world(ijk), 5.0, shape="disc", orientation="sagittal")
    sagittal = _ball(vol, ijk, 5.0, flat_axis=0)
    assert np.array_equal(seg.array == 2, sagittal)  # overwrites the unlocked label 1 where they cross
    assert np.array_equal(seg.array == 1, coronal & ~sagittal)
    with pytest.raises(ValueError, match="orientation"):
        session.paint(seg, 1, vol.index_to_world(ijk), 5.0, shape="disc", orientation="oblique")
    with pytest.raises(ValueError, match="shape"):
        session.paint(seg, 1, vol.index_to_world(ijk), 5.0, shape="cube")


def test_threshold_paint_and_erase_keep_out_of_range_voxels(session, ct):
    seg = session.new_segmentation(ct, "threshold")
    ijk = EDGE_IJK
    ball = _ball(ct, ijk, 12.0)
    in_range = (ct.array >= 0) & (ct.array <= 100)
    n = session.paint(seg, 1, ct.index_to_world(ijk), 12.0, intensity_range=(0, 100))
    assert n == (ball & in_range).sum() and 0 < n < ball.sum()
    assert np.array_equal(seg.array == 1, ball & in_range)
    session.paint(seg, 1, ct.index_to_world(ijk), 12.0)  # fill the whole ball
    session.erase(seg, ct.index_to_world(ijk), 12.0, intensity_range=(50, 3000))
    assert np.array_equal(seg.array == 1, ball & ~(ct.array >= 50))


def test_editable_area_inside_and_outside_a_label(session, ct, organs):
    before = organs.array.copy()
    ball = _ball(ct, EDGE_IJK, 12.0)
    assert (ball & (before == LIVER)).sum() > 50 and (ball & (before == 0)).sum() > 50
    centre = ct.index_to_world(EDGE_IJK)
    n = session.paint(organs, 1, centre, 12.0, editable=("inside", LIVER))
    assert n == (ball & (before == LIVER)).sum()
    assert np.array_equal(organs.array == 1, ball & (before == LIVER))
    session.undo()
    assert np.array_equal(organs.array, before)
    session.paint(organs, 1, centre, 12.0, editable=("outside", LIVER))
    assert np.array_equal(organs.array == 1, ball & (before != LIVER))
    assert np.array_equal(organs.array == LIVER, before == LIVER)


def test_overwrite_rules_all_unlocked_background(session, ct, organs):
    before = organs.array.copy()
    ball = _ball(ct, EDGE_IJK, 12.0)
    assert (ball & (before == KIDNEY)).sum() > 50
    centre = ct.index_to_world(EDGE_IJK)
    organs.table.ensure(LIVER).locked = True
    expected = {
        "all": ball,
        "unlocked": ball & (before != LIVER),
        "background": ball & (before == 0),
    }
    for rule, painted in expected.items():
        n = session.paint(organs, 1, centre, 12.0, overwrite=rule)
        assert n == painted.sum(), rule
        assert np.array_equal(organs.array == 1, painted), rule
        session.undo()
        assert np.array_equal(organs.array, before)
    assert len(session.history) == 0 and session.history.can_redo


def test_erase_respects_the_rules_and_its_active_label(session, ct, organs):
    before = organs.array.copy()
    ball = _ball(ct, EDGE_IJK, 12.0)
    centre = ct.index_to_world(EDGE_IJK)
    organs.table.ensure(KIDNEY).locked = True
    session.erase(organs, centre, 12.0)  # default 'unlocked': the locked kidney stays
    assert np.array_equal(organs.array, np.where(ball & (before == LIVER), 0, before))
    session.undo()
    session.erase(organs, centre, 12.0, overwrite="background", active_label=LIVER)  # only its own label
    assert np.array_equal(organs.array, np.where(ball & (before == LIVER), 0, before))
    session.undo()
    organs.table.ensure(KIDNEY).locked = False
    session.erase(organs, centre, 12.0, overwrite="background", active_label=KIDNEY)
    assert np.array_equal(organs.array, np.where(ball & (before == KIDNEY), 0, before))
    session.undo()
    session.erase(organs, centre, 12.0, overwrite="all", editable=("outside", KIDNEY))
    assert np.array_equal(organs.array, np.where(ball & (before != KIDNEY), 0, before))


def test_writable_and_set_label_follow_locks():
    labels = np.array([0, 1, 2, 3], np.uint8)
    assert writable(labels, 1, overwrite="unlocked", locked=[3]).tolist() == [True, True, True, False]
    assert writable(labels, 1, overwrite="all", locked=[3]).all()
    assert writable(labels, 0, overwrite="background", active_label=2).tolist() == [True, False, True, False]
    out = lt.set_label(labels, np.ones(4, bool), 1, locked=[3])
    assert out.tolist() == [1, 1, 1, 3]
    with pytest.raises(ValueError, match="overwrite rule"):
        writable(labels, 1, overwrite="some")


def test_stroke_points_leave_no_gap_wider_than_the_step():
    pts = stroke_points((0, 0, 0), (10, 0, 0), 3.0)
    assert len(pts) == 4 and np.allclose(pts[-1], (10, 0, 0))
    assert np.allclose(np.diff([p[0] for p in [np.zeros(3), *pts]]), 2.5)


def test_tool_masks_committed_as_one_undo_step(session, ct, organs):
    before = organs.array.copy()
    liver, kidney = before == LIVER, before == KIDNEY
    union = lt.tool_mask("logical", ct, before, LIVER, other=KIDNEY, op="union")
    assert np.array_equal(union, liver | kidney)
    session.apply(organs, lt.set_label(before, union, LIVER), "union")
    assert len(session.history) == 1 and (organs.array == LIVER).sum() == (liver | kidney).sum()
    session.undo()
    assert np.array_equal(organs.array, before)
    # fill between slices drawn in the coronal view: the j axis is interpolated, not z
    drawn = np.zeros_like(before)
    drawn[10:14, 40, 50:60] = 1
    drawn[10:14, 46, 52:58] = 1
    filled = lt.tool_mask("interpolate", ct, drawn, 1, orientation="coronal")
    assert all(filled[10:14, j].any() for j in range(40, 47)) and not filled[:, :40].any()
    with pytest.raises(ValueError, match="label tool"):
        lt.tool_mask("paint bucket", ct, before, 1)
