"""Label export with exact geometry and the audit log beside it; measurements saved with the session."""

from __future__ import annotations

import json

import numpy as np
import pydicom
import pytest

from viewer.core.audit import audit_path_for, segment_algorithms
from viewer.core.errors import LabelMapError
from viewer.core.io import load_volume
from viewer.core.io.labelmap import load_label_names, load_labelmap
from viewer.core.io.seg import read_dicom_seg
from viewer.core.labels import PROV_HUMAN, PROV_MODEL
from viewer.core.measurements import measure, roi_statistics, slice_of
from viewer.core.segmentation_files import export_segmentation, open_segmentation
from viewer.core.session import Session


@pytest.mark.parametrize("name", ["edited.nii.gz", "edited.nrrd"])
def test_export_keeps_voxels_and_geometry_and_writes_the_audit_beside(session, ct, shared_data, tmp_path, name):
    reference = load_labelmap(shared_data / "ct_abdomen_3mm_labels.nii.gz", reference=ct).array
    names = load_label_names(shared_data / "totalsegmentator_total_labels.json")
    seg = session.add_ai_segmentation(ct, reference, names, "tiny_unet", "1.2")
    changed = session.paint(seg, 0, ct.index_to_world((60, 50, 15)), 6.0)  # a person erases a little
    assert changed > 0
    labels_path, audit_path = export_segmentation(session, seg, tmp_path / name)
    back = load_labelmap(labels_path)
    assert back.same_grid(ct, tol=1e-4)  # direction diag(-1,-1,1) and 3 mm spacing survive
    np.testing.assert_array_equal(back.array, seg.array)
    assert back.array.dtype == np.uint8
    assert load_label_names(labels_path.with_name(labels_path.name.split(".")[0] + ".json")) == seg.table.names()
    assert audit_path == tmp_path / "edited.audit.json"
    doc = json.loads(audit_path.read_text())
    assert doc["format"] == "radview-audit" and doc["segmentation"]["labels_file"] == name
    model, edit = doc["entries"]
    assert model["author"] == {"kind": "model", "id": "tiny_unet", "version": "1.2"}
    assert model["voxels"] == int((reference > 0).sum())
    assert edit["author"] == {"kind": "human", "user": "dr_test"} and edit["voxels"] == changed
    assert edit["when"].endswith("+00:00")
    liver = next(row for row in doc["labels"] if row["name"] == names[5])
    assert liver["human_voxels"] == 0 and liver["ai_voxels"] == int((seg.array == 5).sum())


def test_audit_of_one_segmentation_leaves_out_edits_of_another(session, ct, tmp_path):
    a = session.new_segmentation(ct, "a")
    b = session.new_segmentation(ct, "b")
    na = session.paint(a, 1, ct.index_to_world((60, 50, 15)), 6.0)
    nb = session.paint(b, 2, ct.index_to_world((30, 40, 10)), 9.0)
    _, audit_a = export_segmentation(session, a, tmp_path / "a.nii.gz")
    _, audit_b = export_segmentation(session, b, tmp_path / "b.nrrd")
    assert [e["voxels"] for e in json.loads(audit_a.read_text())["entries"]] == [na]
    assert [e["voxels"] for e in json.loads(audit_b.read_text())["entries"]] == [nb]


def test_undo_and_redo_are_audited_on_their_own_segmentation(session, ct, tmp_path):
    a = session.new_segmentation(ct, "a")
    b = session.new_segmentation(ct, "b")
    session.paint(a, 1, ct.index_to_world((60, 50, 15)), 6.0)
    nb = session.paint(b, 2, ct.index_to_world((30, 40, 10)), 9.0)
    session.undo()  # undoes b's stroke
    session.redo()
    _, audit_a = export_segmentation(session, a, tmp_path / "a.nii.gz")
    _, audit_b = export_segmentation(session, b, tmp_path / "b.nii.gz")
    doc_a, doc_b = json.loads(audit_a.read_text()), json.loads(audit_b.read_text())
    assert [e["action"].split(":")[0] for e in doc_b["entries"]] == ["paint label 2 sphere r=9.0 mm", "undo", "redo"]
    assert all(e["voxels"] == nb and e["when"] for e in doc_b["entries"])
    assert len(doc_a["entries"]) == 1 and doc_a.get("unattributed_entries", 0) == 0


def test_dicom_seg_export_from_the_session_round_trips_with_provenance(session, shared_data, tmp_path):
    ct = session.open(shared_data / "ct_abdomen_dicom")
    model_out = np.zeros(ct.array.shape, np.uint8)
    model_out[8:12, 200:260, 200:260] = 1
    model_out[5:9, 300:330, 100:140] = 2
    seg = session.add_ai_segmentation(ct, model_out, {1: "liver", 2: "spleen"}, "tiny_unet", "1.2")
    session.paint(seg, 1, ct.index_to_world((230, 230, 12)), 4.0)  # the liver is corrected by hand
    session.paint(seg, 3, ct.index_to_world((100, 400, 3)), 5.0)  # a new label drawn by hand
    algorithms = segment_algorithms(session, seg)
    assert algorithms[1] == {"algorithm_type": "SEMIAUTOMATIC", "name": "tiny_unet", "version": "1.2"}
    assert algorithms[2]["algorithm_type"] == "AUTOMATIC" and algorithms[3] == {"algorithm_type": "MANUAL"}
    out, audit = export_segmentation(session, seg, tmp_path / "labels.dcm")
    labels, names, info = read_dicom_seg(out, reference=ct)
    np.testing.assert_array_equal(labels.array, seg.array)
    assert names == {1: "liver", 2: "spleen", 3: "label_3"}
    types = {n: s["algorithm_type"] for n, s in info["segments"].items()}
    assert types == {1: "SEMIAUTOMATIC", 2: "AUTOMATIC", 3: "MANUAL"}
    assert info["segments"][2]["algorithm_name"] == "tiny_unet"
    assert pydicom.dcmread(out).ContentCreatorName.family_name == "dr_test"
    assert audit == tmp_path / "labels.audit.json" and len(json.loads(audit.read_text())["entries"]) == 3
    reopened = open_segmentation(session, ct, out)  # mixed authors: opened as drawn by hand
    np.testing.assert_array_equal(reopened.array, seg.array)
    assert reopened.table.names() == names and reopened.name == seg.name
    assert (reopened.provenance[reopened.array > 0] == PROV_HUMAN).all()


def test_a_model_written_dicom_seg_opens_as_model_output(session, shared_data, tmp_path):
    ct = session.open(shared_data / "ct_abdomen_dicom")
    model_out = np.zeros(ct.array.shape, np.uint8)
    model_out[4:9, 250:300, 150:200] = 4
    seg = session.add_ai_segmentation(ct, model_out, {4: "kidney_left"}, "tiny_unet", "1.2")
    out, _ = export_segmentation(session, seg, tmp_path / "ai.dcm")
    reopened = open_segmentation(session, ct, out)
    assert reopened.table.names() == {4: "kidney_left"}  # empty placeholder segments 1-3 are dropped
    assert (reopened.provenance[reopened.array > 0] == PROV_MODEL).all()
    assert session.audit_log()[-1]["author"] == {"kind": "model", "id": "tiny_unet", "version": "1.2"}
    assert reopened.table.labels[4].color == seg.table.labels[4].color


def test_export_refuses_unknown_formats_and_seg_without_dicom(session, ct, tmp_path):
    seg = session.new_segmentation(ct, "x")
    session.paint(seg, 1, ct.index_to_world((60, 50, 15)), 6.0)
    with pytest.raises(LabelMapError, match="written as"):
        export_segmentation(session, seg, tmp_path / "labels.png")
    with pytest.raises(LabelMapError, match="DICOM files"):
        export_segmentation(session, seg, tmp_path / "labels.dcm")
    assert audit_path_for(tmp_path / "x.nrrd").name == "x.audit.json"


def test_coronal_roi_statistics_on_anisotropic_pixels(shared_data):
    vol = load_volume(shared_data / "ct_abdomen_3mm.nii.gz")
    vol.spacing = (1.0, 1.5, 3.0)  # anisotropic pixels on the coronal plane (x: 1 mm, z: 3 mm)
    # rectangle over index x 40..59, z 10..19 on coronal slice y = 50
    a, b = vol.index_to_world((40, 50, 10)), vol.index_to_world((59, 50, 19))
    stats = roi_statistics(vol, a, b, "rectangle", "coronal")
    block = vol.array[10:20, 50, 40:60].astype(float)
    assert stats["voxels"] == block.size and stats["area_mm2"] == pytest.approx(block.size * 1.0 * 3.0)
    assert stats["mean"] == pytest.approx(block.mean()) and stats["max"] == block.max()
    assert stats["slice"] == slice_of(vol, "coronal", a)
    ell = roi_statistics(vol, a, b, "ellipse", "coronal")
    z, x = np.mgrid[10:20, 40:60]
    inside = ((x - 49.5) / 9.5) ** 2 + ((z - 14.5) / 4.5) ** 2 <= 1  # inscribed in the corner voxel centres
    assert ell["voxels"] == inside.sum() and ell["mean"] == pytest.approx(block[inside].mean())


def test_measurements_are_saved_with_the_session_and_restored(session, ct, tmp_path):
    seg = session.new_segmentation(ct, "s")
    session.paint(seg, 1, ct.index_to_world((60, 50, 15)), 6.0)
    ruler = measure("ruler", [ct.index_to_world((10, 20, 15)), ct.index_to_world((10, 40, 15))], ct, "axial")
    angle = measure("angle", [ct.index_to_world(p) for p in ((0, 0, 5), (10, 0, 5), (10, 10, 5))], ct)
    roi = measure("ellipse", [ct.index_to_world((50, 40, 15)), ct.index_to_world((70, 60, 15))], ct, "axial")
    assert ruler.values["length_mm"] == pytest.approx(60.0) and ruler.text == "60.0 mm"
    assert angle.values["angle_deg"] == pytest.approx(90.0)
    assert roi.values["units"] == ct.units and "mm²" in roi.text
    session.measurements += [ruler, angle, roi]
    session.save(tmp_path / "saved")
    restored = Session(home=tmp_path / "home2")
    restored.load(tmp_path / "saved")
    assert restored.measurements == [ruler, angle, roi]
    assert restored.measurements[0].image == ruler.image != ""
    restored.close()


def test_label_file_opens_with_names_and_colours_from_a_colour_table_beside_it(session, ct, shared_data, tmp_path):
    import shutil

    labels = tmp_path / "organs.nii.gz"
    shutil.copy(shared_data / "ct_abdomen_3mm_labels.nii.gz", labels)
    (tmp_path / "organs.ctbl").write_text("# Slicer colour table\n0 background 0 0 0 0\n1 spleen 200 100 50 255\n"
                                          "5 liver 10 20 30 255\n")
    seg = open_segmentation(session, ct, labels)
    np.testing.assert_array_equal(seg.array, load_labelmap(shared_data / "ct_abdomen_3mm_labels.nii.gz").array)
    assert seg.table.names() == {1: "spleen", 5: "liver"}
    assert seg.table.labels[5].color == (10, 20, 30) and seg.name == "organs.nii.gz"
    (tmp_path / "organs.json").write_text('{"1": "milt"}')  # a JSON table wins over the colour table
    assert open_segmentation(session, ct, labels).table.names() == {1: "milt"}
