"""FusionState without Qt: display settings, propose / accept / undo of one registration step, landmarks, the
demo PET's known offset recovered, and fused sessions saved and reopened with their transform."""

from __future__ import annotations

import json

import numpy as np
import pytest

from viewer.core.errors import ColourImageError, RegistrationError
from viewer.core.fusion import FusionDisplay, FusionState
from viewer.core.phantom import PET_TO_CT, make_phantom
from viewer.core.registration import Transform
from viewer.core.registration.synthetic import phantom_pet_truth
from viewer.core.volume import Volume


@pytest.fixture(scope="module")
def phantom():
    return make_phantom()


def true_ct_to_pet(points) -> np.ndarray:
    """The demo PET's documented offset (PET p -> CT R p + t) as fixed (CT) -> moving (PET) points."""
    return phantom_pet_truth({"pet_to_ct": PET_TO_CT}).fixed_to_moving(points)


def fused(phantom) -> FusionState:
    state = FusionState()
    state.set_fixed(phantom.ct)
    state.set_moving(phantom.pet)
    return state


def test_pet_starts_hot_over_suv_0_to_6_and_mr_grey(phantom):
    pet = FusionDisplay.for_volume(phantom.pet)
    assert (pet.colormap, pet.window, pet.blend) == ("hot", (0.0, 6.0), "alpha")
    assert pet.threshold == pytest.approx(0.6)
    assert FusionDisplay.for_volume(phantom.mr).colormap == "gray"


@pytest.mark.parametrize("change, word", [({"colormap": "jet"}, "colour map"), ({"blend": "mix"}, "blend"),
                                          ({"opacity": 1.5}, "opacity"), ({"window": (4, 2)}, "window"),
                                          ({"tile_mm": 0}, "tile")])
def test_display_refuses_bad_values_naming_them(change, word):
    with pytest.raises(ValueError, match=word):
        FusionDisplay(**change)


def test_display_round_trips_through_json():
    display = FusionDisplay(colormap="inferno", opacity=0.7, window=(1.0, 9.0), threshold=2.5, blend="checkerboard",
                            tile_mm=12.0)
    assert FusionDisplay.from_json(json.loads(json.dumps(display.to_json()))) == display


def test_display_changes_emit_once_and_only_on_change(phantom):
    state = fused(phantom)
    seen = []
    state.display_changed.connect(lambda: seen.append(state.display))
    state.set_display(colormap="rainbow", opacity=0.8)
    state.set_display(colormap="rainbow")
    assert [(d.colormap, d.opacity) for d in seen] == [("rainbow", 0.8)]


def test_moving_cannot_be_the_fixed_image_and_a_new_fixed_drops_the_pair(phantom):
    state = fused(phantom)
    with pytest.raises(RegistrationError, match="is the fixed image"):
        state.set_moving(phantom.ct)
    state.add_landmark("fixed", (0, 0, 0))
    state.set_fixed(phantom.mr)
    assert state.moving is None and not state.active and state.landmark_pairs == 0
    with pytest.raises(ColourImageError, match="fusion needs a greyscale image"):
        state.set_moving(Volume(np.zeros((2, 2, 2, 3), np.uint8)))


def test_a_proposal_is_shown_then_accepted_and_one_step_undone(phantom):
    state = fused(phantom)
    events = []
    state.transform_changed.connect(lambda: events.append(state.shown_transform.description))
    shift = np.eye(4)
    shift[:3, 3] = (5.0, 0.0, 0.0)
    first, second = Transform.from_matrix(shift, "first"), Transform.from_matrix(np.eye(4), "second")
    state.propose(first)
    assert state.shown_transform is first and state.transform.description == "identity"
    state.reject()
    assert state.shown_transform.description == "identity" and not state.can_undo
    state.propose(first)
    state.accept()
    state.propose(second)
    state.accept()
    assert state.transform is second and state.can_undo
    assert state.undo() and state.transform is first
    assert not state.undo() and state.transform is first  # one undo step only
    assert events == ["first", "identity", "first", "first", "second", "second", "first"]
    with pytest.raises(RegistrationError, match="no registration result"):
        state.accept()


def test_the_demo_pet_offset_is_recovered_by_rigid_registration(phantom):
    from viewer.core.registration import register

    state = fused(phantom)
    lesions = np.array([les["center_mm"] for les in phantom.truth["lesions"]])
    before = np.linalg.norm(state.moving_point(lesions) - true_ct_to_pet(lesions), axis=1)
    result = register(state.fixed, state.moving, method="rigid")
    state.propose(result.transform)
    state.accept()
    after = np.linalg.norm(state.moving_point(lesions) - true_ct_to_pet(lesions), axis=1)
    assert before.min() > 4.0  # the offset is visible: ~5 mm and more at the lesions
    assert after.max() < 1.0, after
    back = np.array([state.fixed_point(p) for p in state.moving_point(lesions)])
    np.testing.assert_allclose(back, lesions, atol=1e-6)


def test_landmark_pairs_give_the_true_transform_and_unequal_lists_are_refused(phantom):
    state = fused(phantom)
    points = np.array([[-72.0, -20.0, 0.0], [78.0, 10.0, 105.0], [0.0, 62.0, -60.0], [65.0, 58.0, -40.0]])
    for p, q in zip(points, true_ct_to_pet(points), strict=True):
        state.add_landmark("fixed", p)
        state.add_landmark("moving", q)
    state.add_landmark("fixed", (1, 2, 3))
    with pytest.raises(RegistrationError, match="5 fixed landmarks but 4 moving"):
        state.register_landmarks()
    assert state.remove_last_landmark("fixed") and state.landmark_pairs == 4
    result = state.register_landmarks("rigid")
    assert result.fre_mm < 1e-3
    probe = np.array([[10.0, -30.0, 20.0]])
    np.testing.assert_allclose(state.moving_point(probe), true_ct_to_pet(probe), atol=1e-3)
    assert state.candidate is result.transform  # proposed, not yet accepted


def test_bspline_has_no_way_back_to_fixed_points(phantom):
    import SimpleITK as sitk

    state = fused(phantom)
    grid = sitk.Image([4, 4, 4], sitk.sitkFloat32)
    state.set_transform(Transform(sitk.BSplineTransformInitializer(grid, [2, 2, 2]), "bspline"))
    assert state.fixed_point((0, 0, 0)) is None
    np.testing.assert_allclose(state.moving_point((0, 0, 0)), (0, 0, 0))


def test_a_fused_session_reopens_with_its_transform_display_and_landmarks(demo_study, tmp_path):
    from viewer.core.session import Session
    from viewer.core.session_file import FUSION_TRANSFORM_FILE

    session = Session(home=tmp_path / "home")
    ct = session.open(demo_study.ct_dir)
    state = FusionState()
    state.set_fixed(ct)
    pet = session.open(demo_study.pet_dir)
    session.volumes.remove(pet)  # the moving image is kept by the fusion, not as a session image
    state.set_moving(pet)
    moved = Transform.identity().compose_nudge((3.0, -2.0, 4.0), (0.0, 0.0, 2.0), (0.0, 0.0, 0.0))
    state.set_transform(moved)
    state.set_display(colormap="inferno", threshold=2.5, blend="checkerboard", tile_mm=15.0)
    state.add_landmark("fixed", (1.0, 2.0, 3.0))
    session.fusion = state
    folder = tmp_path / "saved"
    session.save(folder)
    doc = json.loads((folder / "session.json").read_text())
    assert doc["fusion"]["transform"] == FUSION_TRANSFORM_FILE and (folder / FUSION_TRANSFORM_FILE).is_file()
    assert doc["fusion"]["moving"] == str(demo_study.pet_dir)
    session.close()

    reopened = Session(home=tmp_path / "home2")
    reopened.load(folder)
    again = reopened.fusion
    assert again.fixed is reopened.volumes[0] and again.moving.modality == "PT"
    probe = np.array([[-72.0, -20.0, 0.0], [50.0, 30.0, -40.0]])
    np.testing.assert_allclose(again.transform.matrix, moved.matrix, atol=1e-9)
    np.testing.assert_allclose(again.moving_point(probe), state.moving_point(probe), atol=1e-6)
    assert again.display == state.display
    np.testing.assert_allclose(again.landmarks["fixed"], [[1.0, 2.0, 3.0]])
    assert not again.can_undo  # a reopened session starts a fresh undo history
    reopened.close()


def test_a_session_without_fusion_saves_none(demo_study, tmp_path):
    from viewer.core.session import Session

    session = Session(home=tmp_path / "home")
    session.open(demo_study.ct_dir)
    session.save(tmp_path / "s")
    assert json.loads((tmp_path / "s" / "session.json").read_text())["fusion"] is None
    Session(home=tmp_path / "home2").load(tmp_path / "s")
    session.close()
