"""PET fused over CT in the real main window under Xvfb: hot colours in every MPR view exactly at the phantom's
lesions (truth.json centres, through the known PET->CT transform), the CT unchanged far from them."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.render.test_fusion import CHANGED, LESION_THRESHOLD, pet_to_ct_matrix
from tests.ui.conftest import view_pixels

pytestmark = pytest.mark.gui


def test_pet_colours_over_ct_at_the_lesions_in_all_views(viewer, open_and_wait, demo_study, artifacts):
    from viewer.core.io import load_volume
    from viewer.core.registration import Transform
    from viewer.ui.app import grab_window

    ct = open_and_wait(viewer, demo_study.ct_dir)
    pet = load_volume(demo_study.pet_dir)
    lesions = json.loads(demo_study.truth.read_text())["lesions"]
    liver = next(les for les in lesions if les["name"] == "liver_lesion")
    centre = np.asarray(liver["center_mm"], float)
    viewer.state.set_cursor(centre)
    transform = Transform.from_matrix(pet_to_ct_matrix())
    for name, view in viewer.views.items():
        if name not in ("axial", "coronal", "sagittal") or view.slice_view.volume is not ct:
            continue
        view.slice_view.set_crosshair_visible(False)
        before = view_pixels(view)
        view.slice_view.set_fusion(pet, transform, colormap="hot", opacity=0.7, window=(0.0, 15.0),
                                   threshold=LESION_THRESHOLD)
        view.slice_view.set_crosshair_visible(False)
        after = view_pixels(view)
        h = after.shape[0]
        x, y = (int(round(v)) for v in view.slice_view.world_to_display(centre))
        r, g, b = after[h - 1 - y, x]
        assert r > b + 80, (name, (r, g, b))  # hot colour at the lesion centre
        rows, cols = np.nonzero(np.abs(after - before).sum(axis=2) > CHANGED)
        points = np.array([view.slice_view.display_to_world(c, h - 1 - r) for r, c in zip(rows, cols, strict=True)])
        distance = np.linalg.norm(points - centre, axis=1)
        assert len(points) > 20 and distance.max() < liver["radius_mm"] + 8, (name, distance.max())
    grab_window(viewer, artifacts / "fused_pet_over_ct_window.png")
