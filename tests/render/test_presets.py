"""Window/level presets and the automatic window per modality."""

import numpy as np
import pytest

from viewer.core.io import load_volume
from viewer.core.presets import auto_window_level, get_preset, looks_like_hu, presets_for, window_presets
from viewer.core.volume import Volume


def test_standard_ct_and_pet_presets():
    p = window_presets()
    assert (p["ct_brain"].window, p["ct_brain"].level) == (80, 40)
    assert (p["ct_lung"].window, p["ct_lung"].level) == (1500, -600)
    assert p["pet_suv_inverse"].colormap == "gray_inverse" and p["pet_suv_hot"].colormap == "hot"
    assert {q.name for q in presets_for("PT")} == {"pet_suv_inverse", "pet_suv_hot"}
    assert all(q.modality == "CT" for q in presets_for("CT")) and len(presets_for("CT")) == 5
    with pytest.raises(ValueError, match="ct_abdomen"):
        get_preset("nope")


def test_nifti_ct_without_modality_gets_the_abdomen_window(shared_data):
    vol = load_volume(shared_data / "ct_abdomen_3mm.nii.gz")  # the reader recognises HU: modality CT
    assert vol.modality == "CT" and vol.units == "HU" and looks_like_hu(vol)
    assert auto_window_level(vol) == (400, 40)
    assert auto_window_level(vol.with_array(vol.array, modality="OT", units="arbitrary")) == (400, 40)


def test_mr_window_spans_its_percentiles_and_pet_is_suv_0_to_6():
    rng = np.random.default_rng(1)
    mr = Volume(rng.uniform(100, 900, (40, 64, 64)).astype(np.float32), modality="MR", units="arbitrary")
    w, level = auto_window_level(mr)
    assert not looks_like_hu(mr)
    assert level - w / 2 == pytest.approx(108, abs=6) and level + w / 2 == pytest.approx(892, abs=6)
    pet = Volume(np.zeros((4, 8, 8), np.float32), modality="PT", units="SUVbw")
    assert auto_window_level(pet) == (6, 3)
