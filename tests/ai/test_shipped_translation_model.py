"""The shipped MR -> CT model (mr-to-ct-synth): loads by id, is a flagged translation model, and on the MNI152 T1
(nilearn) gives brain tissue HU inside the brain and air outside it - the floor below its card's numbers."""

from __future__ import annotations

import numpy as np
import pytest

from ai.registry import find_model, load_model
from ai.training.brain_mr_ct import mni_t1

MODEL_ID = "mr-to-ct-synth"
#: the reference CT atlas holds 12-53 HU (1st-99th percentile) inside the brain, median 38
BRAIN_MEDIAN_HU = (10.0, 70.0)


@pytest.fixture(scope="module")
def synthetic():
    from ai.translation import run_translation

    mr = mni_t1(2)
    return mr, run_translation(load_model(MODEL_ID), [mr], device="cpu")


def test_the_shipped_model_is_a_small_fp16_brain_translation_model():
    import torch

    model = load_model(MODEL_ID)
    card = model.card
    assert card.task == "translation" and card.anatomy == "brain"
    assert card.output["modality"] == "CT" and card.output["units"] == "HU"
    assert any(c["name"].startswith("compared with") for c in card.comparisons)  # pix2pix vs cyclegan
    weights = find_model(MODEL_ID) / card.weights
    assert weights.stat().st_size < 10 * 2**20
    tensors = torch.load(weights, map_location="cpu", weights_only=True).values()
    assert {t.dtype for t in tensors if t.is_floating_point()} == {torch.float16}


def test_brain_gets_tissue_hu_and_the_rest_air_on_the_mni_t1(synthetic):
    mr, result = synthetic
    made = result.volume
    assert made.same_grid(mr) and made.is_synthetic and made.synthetic.startswith("SYNTHETIC CT from MR")
    brain = mr.array > 0.1
    hu = made.array.astype(np.float32)
    assert BRAIN_MEDIAN_HU[0] <= np.median(hu[brain]) <= BRAIN_MEDIAN_HU[1]
    assert np.mean(np.abs(hu[brain] - 38.0) < 100) >= 0.75  # most of the brain within 100 HU of brain tissue
    far = mr.array == 0
    assert np.mean(hu[far] <= -900) >= 0.95  # outside the (skull-stripped) brain: air
    assert not result.warnings or all("anatomy" not in w for w in result.warnings)  # a head: no anatomy warning
