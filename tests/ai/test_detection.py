"""Detections: components in world mm (voxel-edge boxes, probability scores and centres), the built-in PET
lesion detector on the demo study, segmentation models used for detection, the card's thresholds, the
registry entry."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ai.detection import card_min_voxels, detections_from_labels, run_detection
from ai.engine import SegmentationResult
from ai.model import ModelCard
from ai.registry import load_model
from tests.ai.conftest import copy_builtin_model, write_model
from tests.ai.synthesis_fixture import write_translation_model
from viewer.cli import main
from viewer.core.errors import ModelError
from viewer.core.phantom import make_phantom
from viewer.core.volume import Volume

MODEL = "pet_lesion_unet"


def test_detections_are_components_in_world_mm():
    arr = np.zeros((10, 20, 20), np.uint8)
    arr[2:5, 3:8, 3:8] = 1
    arr[6:9, 12:18, 12:18] = 1
    vol = Volume(arr, spacing=(2, 2, 3), origin=(10, 20, 30), modality="SEG", units="label")
    prob = np.where(arr > 0, 0.6, 1.0).astype(np.float32)
    prob[3, 5, 5] = 0.9  # the first component's peak, at its centre
    prob[8, 17, 17] = 0.99  # the second's, at a corner: pulls its weighted centre
    found = detections_from_labels(SegmentationResult(vol, {1: "lesion"}, vol.with_array(prob)))
    assert len(found) == 2
    first = next(d for d in found if d["center_mm"][0] < 30)
    second = next(d for d in found if d is not first)
    assert found[0] is second  # highest score first
    assert first["score"] == 0.9 and second["score"] == 0.99
    assert np.allclose(first["center_mm"], vol.index_to_world((5, 5, 3)))
    # the box spans the voxels' outer edges: half a voxel beyond the outermost voxel centres
    assert np.allclose(first["box_mm"][0], vol.index_to_world((2.5, 2.5, 1.5)))
    assert np.allclose(first["box_mm"][1], vol.index_to_world((7.5, 7.5, 4.5)))
    unweighted = vol.index_to_world((14.5, 14.5, 7))
    assert np.all(np.asarray(second["center_mm"]) > unweighted)  # towards the 0.99 corner
    no_prob = detections_from_labels(SegmentationResult(vol, {1: "lesion"}))
    assert all(d["score"] == 1.0 for d in no_prob)
    assert np.allclose(sorted(d["center_mm"][0] for d in no_prob), [20.0, 39.0])


def test_oblique_boxes_enclose_every_voxel_corner():
    a = np.deg2rad(30)
    direction = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    arr = np.zeros((6, 12, 12), np.uint8)
    arr[1:4, 2:9, 3:6] = 2
    vol = Volume(arr, spacing=(1.5, 1.0, 2.0), origin=(-5, 3, 7), direction=direction)
    (d,) = detections_from_labels(SegmentationResult(vol, {2: "nodule"}))
    zyx = np.argwhere(arr == 2)
    corners = np.array([[x + dx, y + dy, z + dz] for z, y, x in zyx for dx in (-0.5, 0.5) for dy in (-0.5, 0.5)
                        for dz in (-0.5, 0.5)])
    world = vol.index_to_world(corners)
    assert np.allclose(d["box_mm"][0], world.min(axis=0), atol=1e-3)
    assert np.allclose(d["box_mm"][1], world.max(axis=0), atol=1e-3)


def test_detect_finds_every_demo_pet_lesion(demo_study, tmp_path):
    """`radview detect` on the demo PET DICOM (phantom seed 0, not trained on): every truth.json lesion is
    found within one PET voxel (4 mm) of its centre, with its box around it, and no false positive."""
    out = tmp_path / "detections.json"
    assert main(["detect", str(demo_study.pet_dir), "--model", MODEL, "--out", str(out), "--device", "cpu"]) == 0
    doc = json.loads(out.read_text())
    assert doc["model"] == {"id": MODEL, "version": load_model(MODEL).card.version, "task": "detection"}
    assert doc["coordinates"] == "LPS mm"
    found = doc["detections"]
    truth = json.loads(demo_study.truth.read_text())["lesions"]
    assert len(truth) == 3 and len(found) == len(truth), found
    for lesion in truth:
        centre = np.asarray(lesion["center_pet_mm"])  # the PET frame: the PET is offset from the CT
        d = min(found, key=lambda d: np.linalg.norm(np.asarray(d["center_mm"]) - centre))
        assert np.linalg.norm(np.asarray(d["center_mm"]) - centre) <= 4.0, (lesion["name"], d)
        assert d["label"] == 1 and d["name"] == "lesion" and 0.5 < d["score"] <= 1.0
        lo, hi = (np.asarray(c) for c in d["box_mm"])
        assert np.all(lo < centre) and np.all(centre < hi)
        assert np.all(hi - lo <= 2 * lesion["radius_mm"] + 3 * 4.0)  # about the lesion's size (blurred PET)


def test_a_card_with_more_min_voxels_drops_a_component_the_default_keeps(tmp_path):
    arr = np.zeros((10, 20, 20), np.uint8)
    arr[1:3, 1:3, 1:3] = 1  # 8 voxels
    arr[5:9, 10:15, 10:15] = 1  # 100 voxels
    result = SegmentationResult(Volume(arr, spacing=(2, 2, 2), modality="SEG", units="label"), {1: "lesion"})
    plain = ModelCard.from_file(write_model(tmp_path / "plain", task="detection") / "model.json")
    strict = ModelCard.from_file(write_model(tmp_path / "strict", task="detection",
                                             detection={"min_voxels": 10}) / "model.json")
    assert card_min_voxels(plain) == 5 and len(detections_from_labels(result, card_min_voxels(plain))) == 2
    (kept,) = detections_from_labels(result, card_min_voxels(strict))
    assert kept["box_mm"][0] == [19.0, 19.0, 9.0]  # the 100-voxel component's


def test_detect_uses_the_cards_min_voxels(demo_study, tmp_path):
    """`radview detect` with the built-in detector whose card asks for 50 voxels: the demo's lung nodule
    (the smallest lesion, about 36 PET voxels found) is no longer a finding, the two larger ones are."""
    folder = copy_builtin_model(MODEL, tmp_path / "strict", detection={"min_voxels": 50})
    out = tmp_path / "detections.json"
    assert main(["detect", str(demo_study.pet_dir), "--model", str(folder), "--out", str(out), "--device", "cpu"]) == 0
    truth = json.loads(demo_study.truth.read_text())["lesions"]
    found = [min(truth, key=lambda t: np.linalg.norm(np.subtract(d["center_mm"], t["center_pet_mm"])))["name"]
             for d in json.loads(out.read_text())["detections"]]
    assert sorted(found) == ["bone_lesion", "liver_lesion"]


@pytest.mark.parametrize("detection", [{"min_voxels": 0}, {"min_voxels": 2.5}, {"min_voxels": "5"},
                                       {"min_voxel": 5}, [5]])
def test_malformed_detection_thresholds_name_the_card(tmp_path, detection):
    folder = write_model(tmp_path / "bad", task="detection", detection=detection)
    with pytest.raises(ModelError, match=r"model\.json: detection"):
        load_model(str(folder))


def test_a_segmentation_model_gives_one_finding_per_organ():
    """A segmentation model used for detection: each organ is one component near its true centroid."""
    ph = make_phantom(3)
    result = run_detection(load_model("abdomen_ct_unet"), [ph.ct], device="cpu")
    assert result.task == "segmentation" and result.model_id == "abdomen_ct_unet"
    for name, label in (("liver", 5), ("spleen", 1), ("kidney_left", 3), ("kidney_right", 2)):
        organ = max((d for d in result.detections if d["name"] == name),
                    key=lambda d: np.prod(np.subtract(d["box_mm"][1], d["box_mm"][0])))  # the main component
        truth = ph.ct.index_to_world(np.argwhere(ph.labels.array == label).mean(axis=0)[::-1])
        assert np.linalg.norm(np.asarray(organ["center_mm"]) - truth) < 10.0, name


def test_models_that_do_not_detect_are_refused(tmp_path):
    folder = write_translation_model(tmp_path / "translator", steps=2)
    with pytest.raises(ModelError, match="is a translation model; detection needs a detection or segmentation"):
        run_detection(load_model(str(folder)), [make_phantom(3).pet], device="cpu")


def test_the_registry_lists_the_detector(capsys):
    assert main(["models", "--json"]) == 0
    models = {m["id"]: m for m in json.loads(capsys.readouterr().out)["models"]}
    assert models[MODEL]["task"] == "detection"
    assert models[MODEL]["modalities"] == ["PT"] and models[MODEL]["labels"] == {"0": "background", "1": "lesion"}
    card = load_model(MODEL).card
    names = {m["name"] for m in card.metrics}
    assert {"sensitivity", "false_positives_per_scan", "centre_error_mm_mean"} <= names
    assert all(m["data"] for m in card.metrics)
