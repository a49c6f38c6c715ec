"""Export a segmentation from the GUI (NIfTI/NRRD + audit JSON, DICOM SEG) and open DICOM SEG as editable."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.ui.conftest import view_pixels
from viewer.core.io.labelmap import load_label_names, load_labelmap
from viewer.ui.export_dialog import export_filters, with_extension

pytestmark = pytest.mark.gui


def _coloured(rgb: np.ndarray) -> int:
    """Pixels tinted by a label overlay (the grey CT has R == G == B)."""
    return int((np.abs(rgb[..., 0] - rgb[..., 1]) + np.abs(rgb[..., 1] - rgb[..., 2]) > 40).sum())


def test_gui_export_writes_exact_labels_and_the_audit_beside(viewer, open_and_wait, demo_study, tmp_path,
                                                           export_and_wait):
    vol = open_and_wait(viewer, demo_study.ct_dir)
    seg = viewer.segment_panel.new_segmentation("lesion")
    centre = np.array([-60.0, -5.0, viewer.views["axial"].slice_view.slice_position_mm])
    painted = viewer.session.paint(seg, 2, centre, 10)
    labels_path, audit_path = export_and_wait(viewer, tmp_path / "lesion.nrrd")
    back = load_labelmap(labels_path)
    assert back.same_grid(vol) and np.array_equal(back.array, seg.array)
    doc = json.loads(audit_path.read_text())
    assert audit_path.name == "lesion.audit.json" and doc["segmentation"]["name"] == "lesion"
    (entry,) = doc["entries"]
    assert entry["author"] == {"kind": "human", "user": viewer.session.user} and entry["voxels"] == painted
    assert "exported" in viewer.statusBar().currentMessage()
    reopened = viewer.open_labels(str(labels_path))
    assert np.array_equal(reopened.array, seg.array) and viewer.segment_panel.segmentation is reopened


def test_dicom_seg_round_trip_through_the_gui_is_editable(viewer, open_and_wait, demo_study, tmp_path,
                                                         export_and_wait):
    vol = open_and_wait(viewer, demo_study.ct_dir)
    axial = viewer.views["axial"]
    baseline = _coloured(view_pixels(axial))  # crosshair and orientation letters
    original = viewer.open_labels(str(demo_study.labels))
    names = load_label_names(demo_study.label_names)
    assert original.table.names() == names
    seg_path, audit_path = export_and_wait(viewer, tmp_path / "demo_seg.dcm")
    assert audit_path.name == "demo_seg.audit.json"
    viewer.state.set_labels(None)
    assert _coloured(view_pixels(axial)) == baseline
    imported = viewer.open_labels(str(seg_path))
    assert imported is not None and imported is not original
    assert np.array_equal(imported.array, original.array)
    assert imported.table.names() == {k: v for k, v in names.items() if k <= int(original.array.max())}
    assert viewer.segment_panel.segmentation is imported
    assert _coloured(view_pixels(axial)) > baseline + 500  # the imported labels are shown
    # editable: a brush stroke changes it and is one undo step
    centre = np.array([0.0, 0.0, axial.slice_view.slice_position_mm])
    before = imported.array.copy()
    assert viewer.session.paint(imported, 1, centre, 5) > 0
    viewer.segment_panel.undo()
    assert np.array_equal(imported.array, before)
    assert vol.meta["format"] == "dicom"


def test_export_needs_a_segmentation_and_offers_seg_only_for_dicom(viewer, open_and_wait, shared_data):
    vol = open_and_wait(viewer, shared_data / "ct_abdomen_3mm.nii.gz")
    assert viewer.export_segmentation("/nonexistent/x.nii.gz") is None
    assert viewer.statusBar().currentMessage() == "no segmentation to export"
    assert export_filters(vol) == ["NIfTI (*.nii.gz)", "NRRD (*.nrrd)"]
    assert with_extension("/tmp/labels", "NRRD (*.nrrd)") == "/tmp/labels.nrrd"
    assert with_extension("/tmp/labels.nii.gz", "NRRD (*.nrrd)") == "/tmp/labels.nii.gz"


def test_opening_a_non_seg_dicom_as_segmentation_reports_the_file(viewer, open_and_wait, demo_study, pydicom_file):
    open_and_wait(viewer, demo_study.ct_dir)
    before = dict(viewer.session.segmentations)
    assert viewer.open_labels(str(pydicom_file("CT_small.dcm"))) is None
    message = viewer.statusBar().currentMessage()
    assert "CT_small.dcm" in message and "not a DICOM Segmentation" in message
    assert viewer.session.segmentations == before and viewer.isVisible()


def test_gui_segmentations_remember_their_image_for_sessions_and_recovery(viewer, open_and_wait, demo_study):
    from viewer.core.session import Session

    open_and_wait(viewer, demo_study.ct_dir)
    seg = viewer.segment_panel.new_segmentation("drawn in the GUI")
    assert seg.source == str(demo_study.ct_dir)
    viewer.session.paint(seg, 1, viewer.state.cursor, 6)
    viewer.session.flush()
    (recovered,) = Session().recover()  # as after a crash: the journal names the image to re-open
    assert recovered.source == str(demo_study.ct_dir) and np.array_equal(recovered.array, seg.array)


def test_views_draw_labels_in_their_table_colours(viewer, open_and_wait, demo_study):
    open_and_wait(viewer, demo_study.ct_dir)
    seg = viewer.segment_panel.new_segmentation("blue")
    seg.table.ensure(7)
    seg.table.labels[7].color = (0, 0, 255)
    axial = viewer.views["axial"]
    centre = axial.slice_view.cursor
    viewer.session.paint(seg, 7, centre, 15)
    viewer.state.set_labels(seg.as_volume())
    x, y = (int(round(v)) for v in axial.slice_view.world_to_display(centre + [5.0, 5.0, 0.0]))
    pixels = view_pixels(axial)
    r, g, b = pixels[pixels.shape[0] - 1 - y, x]
    assert b > r + 60 and b > g + 60, (r, g, b)  # blue from the table, not the palette's cyan for 7
