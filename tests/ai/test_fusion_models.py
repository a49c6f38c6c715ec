"""The shipped PET/CT fusion models: cards exact and honest, fp16 weights, and a lesion Dice floor on a held-out
real-CT-derived PET/CT study (seed 30002 of ai.training.fusion_comparison's HELD_OUT, never trained on), with its
CT rendered as in training and with the real scan's own CT (HELD_OUT_SCAN)."""

from __future__ import annotations

import pytest

from ai.training.fusion_comparison import STRATEGIES
from ai.training.tasks import dice

#: the held-out study (5 lesions: liver, bone, lung, soft tissue, node) and the lesion Dice each model must reach
HELD_OUT_SEED = 30002
#: measured (1.3.0, thin slabs padded by their edge as in training) rendered 0.254 / 0.455 / 0.390, with the scan's
#: own CT 0.312 / 0.552 / 0.295 (padded with zeros, before: 0.245 / 0.587 / 0.297 and 0.269 / 0.585 / 0.298; the mean
#: over the 6 held-out studies rose for feature-level, 0.718 -> 0.733, while this one fell)
FLOORS = {("input", "rendered"): 0.21, ("feature", "rendered"): 0.4, ("decision", "rendered"): 0.25,
          ("input", "scan"): 0.23, ("feature", "scan"): 0.5, ("decision", "scan"): 0.25}


@pytest.fixture(scope="module", params=["rendered", "scan"])
def study(request):
    """(the held-out study with its CT rendered, or with the real scan's own CT, "rendered" or "scan")."""
    from ai.training.pet_ct_lesions import make_pet_ct_case
    from ai.training.pet_phantom import REAL_CT
    from viewer.core.io import load_volume

    real_hu = load_volume(REAL_CT) if request.param == "scan" else None
    return make_pet_ct_case(HELD_OUT_SEED, "real", real_hu=real_hu), request.param


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_shipped_fusion_model_card_and_weights(strategy):
    import torch

    from ai.registry import find_model, load_model

    model = load_model(f"pet-ct-lesions-{strategy}")
    card = model.card
    assert card.modalities == ["CT", "PT"] and [n["kind"] for n in card.normalization] == ["ct_window", "suv"]
    assert card.labels == {0: "background", 1: "lesion"}
    folder = find_model(card.id)
    weights = torch.load(folder / card.weights, weights_only=True)
    assert all(v.dtype == torch.float16 for v in weights.values() if v.is_floating_point())
    assert (folder / card.weights).stat().st_size < 15e6
    names = {m["name"] for m in card.metrics}
    assert {"dice_lesion", "lesion_sensitivity", "lesion_false_positives_per_study"} <= names
    assert all("validation" in m["data"] and "pet_ct_lesions" in m["data"] for m in card.metrics)
    assert "undertrained" in card.limitations
    chosen = card.postprocessing  # chosen on the validation cases (ai.training.postprocessing), never on held-out data
    assert set(chosen["labels"]) <= {"lesion"} and "pet_ct_lesions" in chosen["chosen_on"]
    assert "seed 3000" not in chosen["chosen_on"]
    (comparison,) = [c for c in card.comparisons if c["name"].startswith("PET/CT fusion strategies")]
    assert [r["model"].split()[0] for r in comparison["sets"][0]["runs"]] == [f"pet-ct-lesions-{s}" for s in STRATEGIES]


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_shipped_fusion_model_meets_its_floor_on_a_held_out_real_ct_derived_study(strategy, study):
    from ai.engine import run_segmentation
    from ai.registry import load_model

    case, ct_kind = study
    labels = run_segmentation(load_model(f"pet-ct-lesions-{strategy}"), [case.ct, case.pet], device="cpu").labels
    assert labels.same_grid(case.ct)
    assert dice(labels.array == 1, case.mask.array == 1) >= FLOORS[strategy, ct_kind]
