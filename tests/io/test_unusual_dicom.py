"""Colour, MONOCHROME1 and projection DICOM: what the core hands to display and to scalar tools."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
from pydicom.pixels import pixel_array

from tests.io.conftest import write_series, z_positions
from viewer.cli import main
from viewer.core.errors import ColourImageError
from viewer.core.io import load_volume
from viewer.core.presets import auto_window_level, default_colormap


def test_rgb_file_is_an_rgb_volume_equal_to_pydicom(pydicom_file):
    vol = load_volume(pydicom_file("SC_rgb_jpeg_dcmtk.dcm"))  # YBR_FULL JPEG: pydicom converts to RGB
    assert vol.is_rgb and vol.channel_axis == 3 and vol.size == (100, 100, 1)
    assert np.array_equal(vol.array[0], pixel_array(pydicom.dcmread(pydicom_file("SC_rgb_jpeg_dcmtk.dcm"))))
    assert vol.units == "arbitrary" and vol.meta["photometric"] == "YBR_FULL"


def test_palette_colour_is_shown_through_its_lookup_table(pydicom_file):
    vol = load_volume(pydicom_file("OBXXXX1A.dcm"))
    assert vol.is_rgb and vol.array.dtype == np.uint16 and vol.array.shape == (1, 600, 800, 3)
    assert len(np.unique(vol.array[0].reshape(-1, 3), axis=0)) > 1


def test_a_colour_series_of_several_files_stacks_by_position(pydicom_file, tmp_path):
    src = pydicom_file("SC_rgb.dcm")
    ds = pydicom.dcmread(src)
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.save_as(tmp_path / "base.dcm")
    write_series(tmp_path / "base.dcm", tmp_path / "series", z_positions([10, 0, 5]))
    vol = load_volume(tmp_path / "series")
    assert vol.array.shape == (3, 100, 100, 3) and vol.spacing[2] == pytest.approx(5.0)
    assert [int(vol.array[k, 0, 0, 0]) for k in range(3)] == [101, 102, 100]  # sorted by z, not by file


def test_tools_that_need_scalars_refuse_colour_naming_the_image(pydicom_file):
    vol = load_volume(pydicom_file("SC_rgb.dcm"))
    with pytest.raises(ColourImageError, match="SC_rgb.dcm: statistics needs a greyscale image"):
        vol.require_scalar("statistics")
    with pytest.raises(ColourImageError):
        vol.value_at(vol.origin)
    assert vol.rgb_at(vol.origin) == tuple(int(v) for v in vol.array[0, 0, 0])


def test_colour_is_never_windowed(pydicom_file):
    vol = load_volume(pydicom_file("SC_rgb_16bit.dcm"))
    assert auto_window_level(vol) == (65535.0, 65535.0 / 2)
    assert vol.to_sitk().GetNumberOfComponentsPerPixel() == 3


def test_monochrome1_keeps_its_values_and_is_shown_with_the_inverted_grey_map(pydicom_file):
    path = pydicom_file("RG3_UNCI.dcm")
    vol = load_volume(path)
    ds = pydicom.dcmread(path)
    assert "RescaleSlope" not in ds and np.array_equal(vol.array[0], pixel_array(ds))  # stored values, not flipped
    assert vol.inverted_grey and default_colormap(vol) == "gray_inverse"
    assert not load_volume(pydicom_file("CT_small.dcm")).inverted_grey


def test_info_says_where_the_spacing_came_from_and_how_the_image_is_shown(pydicom_file, capsys):
    assert main(["info", str(pydicom_file("6154"))]) == 0
    out = capsys.readouterr().out
    assert "in-plane spacing from ImagerPixelSpacing" in out and "MONOCHROME1: shown inverted" in out
    assert main(["info", str(pydicom_file("US1_J2KR.dcm"))]) == 0
    assert "colour, shown as RGB (no window/level)" in capsys.readouterr().out


def test_statistics_and_ai_refuse_a_colour_image_with_a_clear_message(pydicom_file):
    from ai.engine import check_inputs
    from ai.registry import load_model
    from viewer.core.stats import label_statistics

    vol = load_volume(pydicom_file("US1_UNCR.dcm"))
    with pytest.raises(ColourImageError, match="label statistics needs a greyscale image"):
        label_statistics(vol, np.ones(vol.array.shape[:3], np.uint8))
    with pytest.raises(ColourImageError, match="model abdomen_ct_unet needs a greyscale image"):
        check_inputs(load_model("abdomen_ct_unet"), [vol])


def test_a_retired_photometric_interpretation_is_unsupported_not_damaged(pydicom_file, tmp_path):
    from viewer.core.errors import CorruptFileError, UnsupportedFormatError

    ds = pydicom.dcmread(pydicom_file("SC_rgb.dcm"))
    ds.PhotometricInterpretation = "HSV"
    ds.save_as(tmp_path / "hsv.dcm")
    with pytest.raises(UnsupportedFormatError, match="hsv.dcm: PhotometricInterpretation HSV .*retired") as err:
        load_volume(tmp_path / "hsv.dcm")
    assert not isinstance(err.value, CorruptFileError)


def test_a_volume_holds_scalars_or_rgb_samples_only():
    from viewer.core.volume import Volume

    assert Volume(np.zeros((2, 3, 4, 3), np.uint8)).is_rgb
    assert Volume(np.zeros((2, 3, 4), np.uint8)).channel_axis is None
    with pytest.raises(ValueError, match=r"3D \(z, y, x\) or RGB"):
        Volume(np.zeros((2, 3, 4, 4), np.uint8))  # RGBA, or channels first: refused
