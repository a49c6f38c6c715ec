"""The rotating PET MIP of the side-by-side layout: frames in world orientation, turning around the long axis."""

from __future__ import annotations

import numpy as np
import pytest

from viewer.core.errors import Cancelled
from viewer.core.mip import rotating_mip
from viewer.core.progress import CancelToken
from viewer.core.volume import Volume


def spots_volume() -> Volume:
    """A 4 mm cube with a bright spot at the patient's left (superior) and a dimmer one anterior, both small."""
    arr = np.zeros((40, 40, 40), np.float32)
    vol = Volume(arr, (4, 4, 4), (-78, -78, -78), modality="PT", units="SUVbw")
    for xyz, value in (((50, 0, 40), 5.0), ((0, -50, 0), 3.0)):
        i, j, k = np.rint(vol.world_to_index(xyz)).astype(int)
        arr[k - 1:k + 2, j - 1:j + 2, i - 1:i + 2] = value
    return vol


def where(frame: np.ndarray, value: float, pixel_mm: float) -> tuple[float, float]:
    """(mm below the top, mm right of the centre) of the pixels showing ``value``."""
    rows, cols = np.nonzero(np.isclose(frame, value))
    return rows.mean() * pixel_mm, (cols.mean() - (frame.shape[1] - 1) / 2) * pixel_mm


def test_frames_start_anterior_and_turn_towards_the_patients_left():
    frames, px = rotating_mip(spots_volume(), 4)
    assert px == 4.0 and len(frames) == 4
    left_row, left_col = where(frames[0], 5.0, px)
    front_row, front_col = where(frames[0], 3.0, px)
    assert left_col == pytest.approx(50, abs=4) and abs(front_col) < 4  # front view: patient's left on the right
    assert left_row < front_row - 30  # superior at the top
    assert abs(where(frames[1], 5.0, px)[1]) < 4  # seen from the left: the left spot faces the viewer
    assert where(frames[1], 3.0, px)[1] == pytest.approx(-50, abs=4)  # ... and anterior is on the screen's left
    assert where(frames[2], 5.0, px)[1] == pytest.approx(-50, abs=4)  # from behind: left is on the left


def test_oblique_volumes_are_projected_in_world_orientation():
    vol = spots_volume()
    flipped = Volume(vol.array[:, :, ::-1].copy(), vol.spacing, (78, -78, -78), np.diag([-1.0, 1.0, 1.0]),
                     "PT", "SUVbw")  # the same anatomy stored right-to-left
    frames, px = rotating_mip(flipped, 1)
    assert where(frames[0], 5.0, px)[1] == pytest.approx(50, abs=4)


def test_cancel_stops_between_frames():
    token = CancelToken()
    seen = []

    def progress(fraction, message):
        seen.append(fraction)
        token.cancel()

    with pytest.raises(Cancelled):
        rotating_mip(spots_volume(), 8, progress=progress, cancel=token)
    assert seen == [1 / 8]
