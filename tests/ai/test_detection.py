"""Detections from a model's output: components in world mm, boxes on voxel edges, probability scores/centres."""

from __future__ import annotations

import numpy as np

from ai.detection import detections_from_labels
from ai.engine import SegmentationResult
from viewer.core.volume import Volume


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
