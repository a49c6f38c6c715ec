"""Colour (RGB) images are shown in their stored colours, never windowed; MONOCHROME1 shows inverted grey."""

import numpy as np
import pytest

from viewer.core.errors import RadviewError
from viewer.core.io import load_volume
from viewer.core.volume import Volume

SIZE = 400


@pytest.fixture
def offscreen_view(offscreen_slice_view):
    """make(volume, orientation) -> (SliceView showing it without crosshair, pixel(world) -> rendered RGB there)."""

    def make(vol: Volume, orientation: str = "axial"):
        sv, render = offscreen_slice_view(orientation, SIZE)
        sv.set_volume(vol)
        sv.set_crosshair_visible(False)

        def pixel(world) -> tuple[int, ...]:
            x, y = (int(round(v)) for v in sv.world_to_display(world))
            return tuple(int(c) for c in render()[SIZE - 1 - y, x])

        return sv, pixel

    return make


def test_rgb_secondary_capture_shows_its_stored_colours_whatever_the_window(pydicom_file, offscreen_view):
    vol = load_volume(pydicom_file("SC_rgb.dcm"))  # real RGB secondary capture: colour bars
    assert vol.is_rgb
    sv, pixel = offscreen_view(vol)
    for index in ((5, 5), (5, 35), (5, 75), (50, 90)):  # (col, row) voxels across the bars
        world = vol.index_to_world((*index, 0))
        stored = tuple(int(c) for c in vol.array[0, index[1], index[0]])
        assert pixel(world) == stored, index
        sv.set_window_level(50, 10)  # no window/level on colour
        sv.set_colormap("hot")
        assert pixel(world) == stored, index
    assert sv.corner.GetText(1) == "RGB"
    assert sv.probe(vol.index_to_world((5, 5, 0))).startswith("RGB (255, 0, 0)")
    with pytest.raises(ValueError, match="colour"):
        sv.set_fusion_style(blend="difference")


def test_rgb_volume_in_the_other_planes_and_not_fusable(offscreen_view):
    rgb = np.zeros((6, 20, 30, 3), np.uint8)
    rgb[..., 0] = 200  # red everywhere, a green block in the upper z half
    rgb[3:, :, :, 1] = 150
    vol = Volume(rgb, spacing=(1.0, 1.0, 2.0))
    sv, pixel = offscreen_view(vol, "sagittal")
    assert pixel(vol.index_to_world((15, 10, 1))) == (200, 0, 0)
    assert pixel(vol.index_to_world((15, 10, 4))) == (200, 150, 0)
    grey = Volume(np.zeros((6, 20, 30), np.int16))
    sv.set_volume(grey)
    with pytest.raises(RadviewError, match="colour"):
        sv.set_fusion(vol)


def test_monochrome1_shows_low_values_white(offscreen_view):
    arr = np.zeros((3, 20, 40), np.uint16)
    arr[:, :, 20:] = 1000
    vol = Volume(arr, modality="DX", meta={"photometric": "MONOCHROME1"})
    sv, pixel = offscreen_view(vol)
    assert sv.colormap == "gray_inverse"
    low, high = pixel(vol.index_to_world((5, 10, 1))), pixel(vol.index_to_world((35, 10, 1)))
    assert min(low) > 200 and max(high) < 50, (low, high)
