"""Real DICOM written by others: every file of pydicom's test corpus (and pydicom-data), in crash-reporting runners.

Pins issue 10 part 3: radview opens what pydicom decodes (colour as RGB equal to pydicom's, MONOCHROME1
flagged for inverted display, projection images placed with ImagerPixelSpacing), and every other file
gets a typed error that says what it is; nothing crashes or leaks a raw exception.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydicom.data import get_testdata_files

from tests.io.isolated_cases import run_parallel

#: Share of the files pydicom decodes that radview must open.
MIN_COVERAGE = 0.95


@pytest.fixture(scope="module")
def corpus() -> dict[str, dict]:
    files = sorted(f for f in get_testdata_files() if os.path.isfile(f))
    assert len(files) > 200, "pydicom's test files and pydicom-data should both be installed"
    return {Path(r["case"]).name + "|" + r["case"]: r for r in run_parallel("corpus", files)}


def _by_name(corpus, name):
    return next(r for key, r in corpus.items() if key.startswith(name + "|"))


def test_no_file_crashes_or_leaks_an_untyped_error(corpus):
    bad = {k: (r["outcome"], r.get("message")) for k, r in corpus.items() if r["outcome"] in ("crash", "untyped")}
    assert not bad


def test_radview_opens_what_pydicom_decodes(corpus):
    decodable = {k: r for k, r in corpus.items() if r["pydicom_decodes"]}
    opened = [k for k, r in decodable.items() if r["outcome"] == "ok"]
    refused = {k.split("|")[0]: r["error_type"] for k, r in decodable.items() if r["outcome"] != "ok"}
    assert len(opened) / len(decodable) >= MIN_COVERAGE, refused
    # what is refused is refused for what it is (a SEG is a label map), never called damaged
    assert set(refused.values()) <= {"NotAVolumeObjectError"}, refused


def test_opened_pixels_equal_pydicom(corpus):
    differ = [k for k, r in corpus.items() if r["pydicom_decodes"] and r["outcome"] == "ok"
              and not r["pixels_equal_pydicom"]]
    assert not differ


@pytest.mark.parametrize("name", [
    "SC_rgb.dcm", "SC_rgb_expb_16bit_2frame.dcm", "SC_ybr_full_422_uncompressed.dcm", "SC_rgb_small_odd.dcm",
    "SC_rgb_jpeg_dcmtk.dcm", "SC_rgb_jls_lossy_line.dcm", "SC_rgb_rle_32bit.dcm", "US1_J2KI.dcm", "US1_J2KR.dcm",
    "ExplVR_BigEnd.dcm", "OBXXXX1A.dcm", "color3d_jpeg_baseline.dcm",
])
def test_colour_files_are_rgb(corpus, name):
    r = _by_name(corpus, name)
    assert r["outcome"] == "ok" and r["is_rgb"] and r["shape"][-1] == 3


def test_multiframe_colour_keeps_its_frames(corpus):
    assert _by_name(corpus, "color3d_jpeg_baseline.dcm")["shape"] == [120, 480, 640, 3]


@pytest.mark.parametrize("name", ["RG1_UNCI.dcm", "RG1_J2KR.dcm", "RG3_UNCR.dcm", "6154"])
def test_monochrome1_radiographs_open_flagged_for_inverted_display(corpus, name):
    r = _by_name(corpus, name)
    assert r["outcome"] == "ok" and r["photometric"] == "MONOCHROME1" and not r["is_rgb"]


def test_projection_image_is_placed_with_imager_pixel_spacing(corpus):
    r = _by_name(corpus, "6154")  # CR with ImagerPixelSpacing 0.1 mm and no PixelSpacing
    assert r["spacing"][:2] == [0.1, 0.1] and r["spacing_source"] == "ImagerPixelSpacing"
    assert any("ImagerPixelSpacing" in w for w in r["warnings"])


def test_zero_pixel_spacing_is_taken_as_unknown(corpus):
    r = _by_name(corpus, "RG1_UNCI.dcm")  # PixelSpacing 0\0, nothing else
    assert r["spacing"][:2] == [1.0, 1.0] and r["spacing_source"].startswith("none")

