"""Card post-processing (ai.postprocess) and its choice on validation cases (ai.training.postprocessing)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ai.model import LoadedModel, ModelCard
from ai.postprocess import label_map, label_rules
from viewer.core.errors import ModelError
from viewer.core.volume import Volume

LABELS = {0: "background", 1: "lesion"}


def binary(p1: np.ndarray) -> np.ndarray:
    """(2, ...) class probabilities from the lesion probability."""
    return np.stack([1 - p1, p1]).astype(np.float32)


def test_without_rules_the_label_map_is_the_argmax():
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(4), size=(5, 6, 7)).transpose(3, 0, 1, 2).astype(np.float32)
    assert np.array_equal(label_map(probs, (1, 1, 1), {}), probs.argmax(0))


def test_threshold_sets_where_a_label_is_taken():
    p = np.array([0.2, 0.45, 0.55, 0.75, 0.85], np.float32).reshape(1, 1, 5)
    assert label_map(binary(p), (1, 1, 1), {1: {"threshold": 0.8}}).ravel().tolist() == [0, 0, 0, 0, 1]
    assert label_map(binary(p), (1, 1, 1), {1: {"threshold": 0.4}}).ravel().tolist() == [0, 1, 1, 1, 1]


def test_a_thresholded_label_competes_with_the_argmax_of_the_others():
    # per voxel (background, 1, 2); label 1 has threshold 0.3, label 2 none (a candidate where it is the argmax)
    probs = np.array([[0.2, 0.38, 0.42],  # both candidates: the more probable, 2
                      [0.5, 0.35, 0.15],  # background is the argmax, 1 passes its threshold: 1
                      [0.1, 0.2, 0.7],  # 1 below its threshold, 2 the argmax: 2
                      [0.6, 0.25, 0.15]], np.float32).T.reshape(3, 1, 1, 4)  # no candidate: background
    assert label_map(probs, (1, 1, 1), {1: {"threshold": 0.3}}).ravel().tolist() == [2, 1, 2, 0]


def test_components_smaller_than_the_volume_become_background():
    p = np.zeros((20, 20, 20), np.float32)
    p[2:4, 2:4, 2:4] = 0.9  # 8 voxels of 2 x 2 x 3 mm = 96 mm3
    p[10:15, 10:15, 10:15] = 0.9  # 125 voxels = 1500 mm3
    p[16, 16, 16] = p[17, 17, 17] = 0.9  # 2 voxels touching at a corner: one 26-connected component of 24 mm3
    out = label_map(binary(p), (2, 2, 3), {1: {"min_component_mm3": 100}})
    assert out[2:4, 2:4, 2:4].sum() == 0 and out[10:15, 10:15, 10:15].all() and out[16:18, 16:18, 16:18].sum() == 0
    kept = label_map(binary(p), (2, 2, 3), {1: {"min_component_mm3": 20}})
    assert kept[16, 16, 16] == kept[17, 17, 17] == 1 and kept[2:4, 2:4, 2:4].all()


def test_only_the_largest_component_is_kept_ties_included():
    p = np.zeros((20, 20, 20), np.float32)
    p[1:4, 1:4, 1:4] = 0.9  # 27 voxels
    p[10:15, 10:15, 10:15] = 0.9  # 125 voxels: the organ
    out = label_map(binary(p), (2, 2, 3), {1: {"largest_component": True}})
    assert out[1:4, 1:4, 1:4].sum() == 0 and out[10:15, 10:15, 10:15].all() and out.sum() == 125
    p[16:19, 16:19, 1:4] = 0.9  # 27 voxels more; with the largest removed, two components tie
    p[10:15, 10:15, 10:15] = 0.1
    tied = label_map(binary(p), (2, 2, 3), {1: {"largest_component": True}})
    assert tied.sum() == 54
    assert np.array_equal(label_map(binary(np.zeros_like(p)), (1, 1, 1), {1: {"largest_component": True}}),
                          np.zeros(p.shape, np.uint8))


def test_a_dropped_blob_takes_its_next_most_probable_label_never_one_kept_whole():
    probs = np.zeros((3, 12, 12, 24), np.float32)  # background, liver, spleen
    probs[0] = 1.0
    probs[:, 2:8, 2:8, 2:10] = np.array([0.0, 0.9, 0.1])[:, None, None, None]  # the liver
    probs[:, 2:8, 2:8, 14:22] = np.array([0.0, 0.1, 0.9])[:, None, None, None]  # the spleen
    probs[:, 3:5, 3:5, 18:20] = np.array([0.0, 0.6, 0.4])[:, None, None, None]  # liver inside the spleen
    whole = {1: {"largest_component": True}, 2: {"largest_component": True}}
    out = label_map(probs, (1, 1, 1), whole)
    assert np.all(out[2:8, 2:8, 2:10] == 1) and np.all(out[2:8, 2:8, 14:22] == 2)  # the blob became spleen
    probs[:, 3:5, 3:5, 18:20] = np.array([0.05, 0.55, 0.4])[:, None, None, None]
    probs[:, 10:12, 2:4, 18:20] = np.array([0.0, 0.3, 0.7])[:, None, None, None]  # spleen apart from the spleen
    out = label_map(probs, (1, 1, 1), whole)
    assert np.all(out[3:5, 3:5, 18:20] == 2) and np.all(out[10:12, 2:4, 18:20] == 0)  # not back to the liver
    assert np.all(label_map(probs, (1, 1, 1), {1: {"largest_component": True}})[10:12, 2:4, 18:20] == 2)


def test_a_component_the_network_half_believes_in_is_dropped_before_the_largest_is_kept():
    probs = np.zeros((3, 12, 12, 24), np.float32)  # background, liver, kidney
    probs[0] = 1.0
    probs[:, 2:8, 2:8, 2:10] = np.array([0.05, 0.9, 0.05])[:, None, None, None]  # the liver, sure
    probs[:, 3:6, 3:6, 10:13] = np.array([0.05, 0.3, 0.65])[:, None, None, None]  # a kidney guessed beside it
    probs[:, 9:11, 9:11, 20:22] = np.array([0.4, 0.0, 0.6])[:, None, None, None]  # a smaller one in the background
    guessed = label_map(probs, (1, 1, 1), {2: {"largest_component": True}})
    assert np.all(guessed[3:6, 3:6, 10:13] == 2)  # the largest kidney blob is kept as the kidney
    rule = {2: {"min_component_confidence": 0.7, "largest_component": True}}
    out = label_map(probs, (1, 1, 1), rule)
    assert not np.any(out == 2)  # both blobs' medians (0.65, 0.6) are under 0.7: no kidney at all
    assert np.all(out[3:6, 3:6, 10:13] == 1) and np.all(out[9:11, 9:11, 20:22] == 0)  # their next likeliest labels
    probs[:, 3:6, 3:6, 10:12] = np.array([0.0, 0.05, 0.95])[:, None, None, None]  # most of the first blob is sure
    assert np.all(label_map(probs, (1, 1, 1), rule)[3:6, 3:6, 10:13] == 2)  # median 0.95: kept whole
    assert np.array_equal(label_map(probs, (1, 1, 1), {2: {"min_component_confidence": 0.0}}), probs.argmax(0))


def test_choice_on_validation_drops_a_blob_where_the_organ_is_absent():
    from ai.training.cases import Case
    from ai.training.config import PostprocessingSearch
    from ai.training.postprocessing import choose

    cases = []
    for seed in range(3):
        image, organ = case_image(seed)
        image.array[image.array == np.float32(0.9)] = 0.0
        if seed == 2:  # a slab without the organ, where the network half believes in a blob (p ~ 0.67)
            image.array[:] = 0.0
            image.array[2:5, 26:30, 2:6] = 0.68
            organ = organ.with_array(np.zeros_like(organ.array))
        cases.append(Case(name=f"slab{seed}", images=[image], labels=organ))
    search = PostprocessingSearch(thresholds=[], min_component_mm3=[0], min_component_confidence=[0, 0.5, 0.8],
                                  largest_component=[False, True])
    block = choose(LoadedModel(card(), logit_of_the_image()), cases, search, device="cpu")
    assert block["labels"]["lesion"] == {"min_component_mm3": 0, "min_component_confidence": 0.8}
    assert block["validation_dice"]["postprocessed"]["lesion"] == 1.0 > block["validation_dice"]["argmax"]["lesion"]
    assert block["search"]["min_component_confidence"] == [0, 0.5, 0.8]


def card(**changes) -> ModelCard:
    return ModelCard(**{"id": "pp-test", "version": "1.0.0", "name": "post-processing test", "task": "segmentation",
                        "inputs": [{"modality": "OT", "name": "x"}], "normalization": [{"kind": "none"}],
                        "labels": dict(LABELS), "spacing": [2.0, 2.0, 2.0], "patch_size": [16, 16, 16],
                        "mirror_axes": [], **changes})


@pytest.mark.parametrize("block, message", [
    ({"labels": {"tumour": {"threshold": 0.5}}}, "does not have"),
    ({"labels": {"lesion": {"threshold": 1.5}}}, "in \\(0, 1\\)"),
    ({"labels": {"lesion": {"min_component_mm3": -1}}}, ">= 0"),
    ({"labels": {"lesion": {"largest_only": True}}}, "must be an object of"),
    ({"labels": {"lesion": {"largest_component": "yes"}}}, "true or false"),
    ({"labels": {"lesion": {"min_component_confidence": 1.0}}}, "in \\[0, 1\\)"),
    ([0.5], "is not an object"),
])
def test_a_bad_postprocessing_block_is_refused_naming_the_card(tmp_path, block, message):
    path = tmp_path / "model.json"
    path.write_text(json.dumps({**card().to_json(), "postprocessing": block}))
    with pytest.raises(ModelError, match=message) as err:
        ModelCard.from_file(path)
    assert str(path) in str(err.value)


def logit_of_the_image():
    """A network whose lesion logit is 4 x (image - 0.5) and background logit 0: p(lesion) = sigmoid of it."""
    import torch

    class LogitOfTheImage(torch.nn.Module):
        def forward(self, x):
            return torch.cat([torch.zeros_like(x), 4 * (x - 0.5)], dim=1)

    return LogitOfTheImage()


def case_image(seed: int) -> tuple[Volume, Volume]:
    """(image, labels) on a 2 mm grid: a true lesion ball of value 1.5 (p ~ 0.98) and four small bright specks of
    value 0.9 (p ~ 0.83, not lesions), over a background of 0 (p ~ 0.12)."""
    rng = np.random.default_rng(seed)
    z, y, x = np.mgrid[:24, :32, :32]
    c = rng.integers(10, 20, 3)
    lesion = (z - c[0]) ** 2 + (y - c[1]) ** 2 + (x - c[2]) ** 2 <= 16
    image = np.where(lesion, 1.5, 0.0).astype(np.float32)
    for _ in range(4):
        k, j, i = rng.integers(1, 23), rng.integers(1, 5), rng.integers(1, 31)
        image[k, j, i] = 0.9
    geometry = {"spacing": (2.0, 2.0, 2.0), "origin": (0.0, 0.0, 0.0)}
    return (Volume(image, modality="OT", units="arbitrary", **geometry),
            Volume(lesion.astype(np.uint8), modality="SEG", units="label", **geometry))


def test_engine_applies_the_cards_postprocessing():
    from ai.engine import run_segmentation

    image, truth = case_image(0)
    plain = run_segmentation(LoadedModel(card(), logit_of_the_image()), [image], device="cpu")
    assert plain.labels.array.sum() == truth.array.sum() + 4  # the specks are lesion by argmax
    rules = {"labels": {"lesion": {"threshold": 0.9}}}
    kept = run_segmentation(LoadedModel(card(postprocessing=rules), logit_of_the_image()), [image], device="cpu",
                            return_probabilities=True)
    assert np.array_equal(kept.labels.array, truth.array)
    speck = np.argwhere(image.array == np.float32(0.9))[0]
    # the probability map holds the chosen label's probability: background's at a dropped speck
    assert kept.probabilities.array[tuple(speck)] == pytest.approx(1 - 1 / (1 + np.exp(-1.6)), abs=1e-3)


def test_choice_on_validation_drops_what_the_argmax_gets_wrong():
    from ai.training.cases import Case
    from ai.training.config import PostprocessingSearch
    from ai.training.postprocessing import choose

    cases = [Case(name=f"case{s}", images=[img], labels=lab) for s in range(3) for img, lab in [case_image(s)]]
    block = choose(LoadedModel(card(), logit_of_the_image()), cases,
                   PostprocessingSearch(thresholds=[0.5, 0.9], min_component_mm3=[0, 100]), device="cpu")
    rule = block["labels"]["lesion"]
    assert rule.get("threshold") == 0.9 or rule["min_component_mm3"] == 100  # either removes the specks exactly
    dice = block["validation_dice"]
    assert dice["postprocessed"]["lesion"] == 1.0 > dice["argmax"]["lesion"]
    assert "3 case(s)" in block["chosen_on"]


def test_choice_on_validation_keeps_only_the_largest_component_of_an_organ():
    from ai.training.cases import Case
    from ai.training.config import PostprocessingSearch
    from ai.training.postprocessing import choose

    cases = []
    for seed in range(3):
        image, organ = case_image(seed)
        image.array[image.array == np.float32(0.9)] = 0.0
        image.array[2:5, 26:30, 2:6] = 1.5  # a 48-voxel (384 mm3) false organ, as sure as the true one
        cases.append(Case(name=f"organ{seed}", images=[image], labels=organ))
    search = PostprocessingSearch(thresholds=[0.5], min_component_mm3=[0], largest_component=[False, True])
    block = choose(LoadedModel(card(), logit_of_the_image()), cases, search, device="cpu")
    assert block["labels"]["lesion"] == {"min_component_mm3": 0, "largest_component": True}
    assert block["validation_dice"]["postprocessed"]["lesion"] == 1.0 > block["validation_dice"]["argmax"]["lesion"]
    without = choose(LoadedModel(card(), logit_of_the_image()), cases,
                     PostprocessingSearch(thresholds=[0.5], min_component_mm3=[0]), device="cpu")
    assert without["labels"] == {}  # largest_component defaults to [false]: the lesion configs search as before


def test_keeping_the_largest_component_needs_only_to_help_a_tuned_setting_needs_min_gain():
    from ai.training.cases import Case
    from ai.training.config import PostprocessingSearch
    from ai.training.postprocessing import MIN_GAIN, choose

    image, organ = case_image(0)
    image.array[image.array == np.float32(0.9)] = 0.0
    image.array[1, 1, 1] = 1.5  # one false voxel: Dice 0.998 instead of 1, a gain below MIN_GAIN
    cases = [Case(name="organ", images=[image], labels=organ)]
    model = LoadedModel(card(), logit_of_the_image())
    largest = choose(model, cases, PostprocessingSearch(thresholds=[], min_component_mm3=[0],
                                                        largest_component=[False, True]), device="cpu")
    gain = largest["validation_dice"]["postprocessed"]["lesion"] - largest["validation_dice"]["argmax"]["lesion"]
    assert largest["labels"] == {"lesion": {"min_component_mm3": 0, "largest_component": True}} and 0 < gain < MIN_GAIN
    tuned = choose(model, cases, PostprocessingSearch(thresholds=[], min_component_mm3=[0, 10]), device="cpu")
    assert tuned["labels"] == {}


def test_nothing_is_chosen_when_the_argmax_is_already_right():
    from ai.training.cases import Case
    from ai.training.config import PostprocessingSearch
    from ai.training.postprocessing import choose

    image, truth = case_image(0)
    image.array[image.array == np.float32(0.9)] = 0.0
    block = choose(LoadedModel(card(), logit_of_the_image()), [Case(name="clean", images=[image], labels=truth)],
                   PostprocessingSearch(), device="cpu")
    assert block["labels"] == {} and block["validation_dice"]["argmax"]["lesion"] == 1.0
    assert label_rules(block, LABELS) == {}


def test_a_card_reader_is_told_each_rule_and_what_it_was_chosen_on():
    from ai.postprocess import describe

    block = {"labels": {"lesion": {"threshold": 0.8, "min_component_mm3": 1000}}, "chosen_on": "6 case(s): a; b"}
    assert describe(block) == ("lesion: probability >= 0.8 and components >= 1000 mm3 "
                               "(chosen on validation: 6 case(s): a; b)")
    assert describe({"labels": {}}) == describe(None) == ""
    assert describe({"labels": {"liver": {"min_component_mm3": 0, "largest_component": True}}}) == (
        "liver: largest component only")
    assert describe({"labels": {"kidney_left": {"min_component_confidence": 0.7, "largest_component": True}}}) == (
        "kidney_left: components of median probability >= 0.7 and largest component only")
