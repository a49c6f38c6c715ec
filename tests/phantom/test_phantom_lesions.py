"""Seed-dependent phantom lesions: seed 0 keeps the demo lesions, other seeds draw their own, hot on PET."""

from __future__ import annotations

import numpy as np

from viewer.core.phantom import LESIONS, make_phantom, phantom_lesions


def test_seed_zero_keeps_the_demo_lesions_and_other_seeds_vary():
    assert phantom_lesions(0) == LESIONS
    drawn = [phantom_lesions(seed) for seed in range(1, 21)]
    assert len({lesions for lesions in drawn}) == 20
    assert {len(lesions) for lesions in drawn} >= {1, 3, 5}
    assert {lesion.organ for lesions in drawn for lesion in lesions} == {"liver", "lung_left", "lung_right", "spleen",
                                                                          "vertebrae"}
    assert phantom_lesions(5) == phantom_lesions(5)
    for lesions in drawn:
        for i, a in enumerate(lesions):
            for b in lesions[i + 1:]:
                assert np.linalg.norm(np.subtract(a.center, b.center)) >= a.radius + b.radius + 10


def test_drawn_lesions_are_in_the_labels_the_pet_and_the_truth():
    ph = make_phantom(4)
    lesions = phantom_lesions(4)
    assert [t["name"] for t in ph.truth["lesions"]] == [lesion.name for lesion in lesions]
    for lesion, truth in zip(lesions, ph.truth["lesions"], strict=True):
        ijk = np.rint(ph.labels.world_to_index(lesion.center)).astype(int)
        assert ph.labels.array[ijk[2], ijk[1], ijk[0]] == 90
        pet_ijk = np.rint(ph.pet.world_to_index(truth["center_pet_mm"])).astype(int)
        assert ph.pet.array[pet_ijk[2], pet_ijk[1], pet_ijk[0]] > 0.5 * truth["suv_max"] > 1.0
