"""Damaged DICOM: no crash, no raw exception (issue 10 part 2).

Over 400 damaged files made from pydicom's test files in every transfer syntax radview reads
(truncations, byte flips in header and pixel data, garbled DS/IS numbers, deleted tags), each loaded
in runner processes that report a crash as the case's result: a crash or an untyped error fails the test.
"""

from __future__ import annotations

import random
from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataelem import RawDataElement
from pydicom.tag import Tag

from tests.io.isolated_cases import run_parallel
from viewer.core.errors import CorruptFileError, DamagedHeaderError
from viewer.core.io import load_volume, scan
from viewer.core.io.dicom_decode import decoder_guard
from viewer.core.io.info import report

#: One small file per transfer syntax (and photometric kind) the readers support.
SOURCES = {
    "implicit LE": "MR_small_implicit.dcm",
    "explicit LE": "CT_small.dcm",
    "explicit BE": "MR_small_bigendian.dcm",
    "deflate": "image_dfl.dcm",
    "RLE": "MR_small_RLE.dcm",
    "RLE multi-frame": "emri_small_RLE.dcm",
    "RLE colour": "SC_rgb_rle.dcm",
    "JPEG baseline colour": "SC_rgb_jpeg_dcmtk.dcm",
    "JPEG extended": "JPGExtended.dcm",
    "JPEG lossless": "JPEG-LL.dcm",
    "JPEG-LS": "MR_small_jpeg_ls_lossless.dcm",
    "JPEG-LS near-lossless": "JPEGLSNearLossless_08.dcm",
    "JPEG 2000 lossless": "MR_small_jp2klossless.dcm",
    "JPEG 2000": "JPEG2000.dcm",
    "JPEG 2000 colour": "US1_J2KR.dcm",
    "native colour": "SC_rgb.dcm",
}
NUMERIC = ("ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing", "SliceThickness",
           "RescaleIntercept", "RescaleSlope", "InstanceNumber", "SeriesNumber", "NumberOfFrames", "WindowCenter")
GARBAGE = (b"1>", b"6k6406", b"nan", b"1e999", b"-", b"\\\\", b"12\\x", b"--3", b"0x1F", b"1,5")
#: Elements whose garbled value is ignored (they only order or label slices, or hint the display).
LENIENT = {"InstanceNumber", "SeriesNumber", "WindowCenter"}
DELETED = ("Rows", "Columns", "BitsAllocated", "PixelSpacing", "ImagePositionPatient", "PhotometricInterpretation",
           "SamplesPerPixel", "BitsStored", "PixelRepresentation")


def _truncated(data: bytes, rng: random.Random) -> bytes:
    return data[: rng.randrange(132, len(data))]


def _flipped(data: bytes, rng: random.Random, start: int, most: int = 8) -> bytes:
    """``data`` with 1 to ``most`` bytes from ``start`` on changed at random."""
    out = bytearray(data)
    for _ in range(rng.randint(1, most)):
        k = rng.randrange(start, len(out))
        out[k] ^= rng.randrange(1, 256)
    return bytes(out)


def _garbled(src: Path, rng: random.Random, out: Path, keyword: str | None = None, garbage: bytes = b"") -> str:
    """One DS/IS element (``keyword`` or a random one present) rewritten with a non-numeric value
    (``garbage`` or a random one; raw bytes, unvalidated); returns its keyword."""
    ds = pydicom.dcmread(src)
    present = [k for k in NUMERIC if k in ds] or ["PixelSpacing"]  # added when the file has none of them
    keyword = keyword or rng.choice(present)
    tag = Tag(pydicom.datadict.tag_for_keyword(keyword))
    garbage = garbage or rng.choice(GARBAGE)
    garbage += b" " * (len(garbage) % 2)
    implicit, little = ds.original_encoding
    ds._dict[tag] = RawDataElement(  # noqa: SLF001 - bytes pydicom would refuse to write from a value
        tag, pydicom.datadict.dictionary_VR(tag), len(garbage), garbage, 0, implicit, little)
    ds.save_as(out)
    return keyword


def _deleted(src: Path, rng: random.Random, out: Path, keyword: str | None = None) -> None:
    """The file without one image element (``keyword`` or a random one present)."""
    ds = pydicom.dcmread(src)
    del ds[keyword or rng.choice([k for k in DELETED if k in ds])]
    ds.save_as(out)


def make_damaged(out: Path) -> list[Path]:
    """The damaged files, deterministic (seeded), named after their source and damage."""
    out.mkdir(parents=True, exist_ok=True)
    files = []
    for kind, name in SOURCES.items():
        src = Path(get_testdata_file(name))
        data = src.read_bytes()
        pixels = data.rfind(b"\xe0\x7f\x10\x00") if b"\xe0\x7f\x10\x00" in data else len(data) // 2
        rng = random.Random(name)
        stem = kind.replace(" ", "_")
        for k in range(6):
            variants = {
                "truncated": _truncated(data, rng),
                "header-flip": _flipped(data[:pixels], rng, 132) + data[pixels:],
                "pixel-flip": _flipped(data, rng, pixels),
            }
            for damage, content in variants.items():
                path = out / f"{stem}-{damage}-{k}.dcm"
                path.write_bytes(content)
                files.append(path)
            path = out / f"{stem}-garbled-{k}.dcm"
            files.append(path.rename(path.with_name(f"{stem}-garbled-{k}-{_garbled(src, rng, path)}.dcm")))
        for k in range(20 if "RLE" in kind else 0):  # more damaged RLE segments: pylibjpeg-rle panics on such data
            path = out / f"{stem}-rle-flip-{k}.dcm"
            path.write_bytes(_flipped(data, rng, max(pixels, len(data) - 4000), most=30))
            files.append(path)
        for k in range(3):
            path = out / f"{stem}-deleted-{k}.dcm"
            _deleted(src, rng, path)
            files.append(path)
    return files


@pytest.fixture(scope="module")
def damaged(tmp_path_factory) -> list[dict]:
    files = make_damaged(tmp_path_factory.mktemp("damaged"))
    return run_parallel("load", [str(f) for f in files])


def test_at_least_400_cases_over_every_transfer_syntax(damaged):
    assert len(damaged) >= 400
    syntaxes = {pydicom.dcmread(get_testdata_file(n), stop_before_pixels=True).file_meta.TransferSyntaxUID
                for n in SOURCES.values()}
    assert len(syntaxes) >= 10


def test_no_damaged_file_crashes_the_process(damaged):
    crashed = [(r["case"], r["message"]) for r in damaged if r["outcome"] == "crash"]
    assert not crashed


def test_every_damaged_file_gives_a_typed_error_naming_it(damaged):
    untyped = [(Path(r["case"]).name, r["error_type"], r["message"]) for r in damaged if r["outcome"] == "untyped"]
    assert not untyped
    unnamed = [(Path(r["case"]).name, r["message"]) for r in damaged
               if r["outcome"] == "typed" and Path(r["case"]).name not in r["message"]]
    assert not unnamed


def test_a_garbled_number_is_ignored_only_where_it_cannot_misplace_the_image(damaged):
    """Sort/label numbers (InstanceNumber, SeriesNumber) and display hints are ignored with a warning;
    geometry, rescale and frame counts make the file damaged."""
    opened = {Path(r["case"]).stem.split("-")[-1] for r in damaged if "-garbled-" in r["case"] and r["outcome"] == "ok"}
    assert opened <= LENIENT
    renumbered = [r for r in damaged if r["case"].endswith("-InstanceNumber.dcm") and r["outcome"] == "ok"]
    assert renumbered and all(any("InstanceNumber ignored" in w for w in r["warnings"]) for r in renumbered)


@pytest.mark.parametrize("keyword", ["ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing",
                                     "RescaleSlope", "RescaleIntercept", "NumberOfFrames", "SpacingBetweenSlices"])
def test_a_garbled_number_that_places_or_scales_the_image_is_named_in_the_error(tmp_path, keyword):
    """The issue's '6k6406' in each DS/IS element that positions, sizes or rescales the image."""
    path = tmp_path / "bad.dcm"
    _garbled(Path(get_testdata_file("CT_small.dcm")), random.Random(0), path, keyword, b"6k6406")
    with pytest.raises(DamagedHeaderError, match=rf"bad.dcm: {keyword} "):
        load_volume(path)


def test_rust_decoder_panic_becomes_a_typed_error(tmp_path):
    """pylibjpeg-rle panics (a BaseException) on damaged RLE segments; the guard names the file instead."""
    from pydicom.pixels import pixel_array

    data = Path(get_testdata_file("MR_small_RLE.dcm")).read_bytes()
    rng = random.Random(7)
    panicked = False
    for _ in range(200):
        bad = bytearray(data)
        for _ in range(5):
            bad[rng.randrange(len(bad) - 4000, len(bad))] = rng.randrange(256)
        (tmp_path / "damaged_rle.dcm").write_bytes(bad)
        try:
            with decoder_guard(tmp_path / "damaged_rle.dcm"):
                pixel_array(pydicom.dcmread(tmp_path / "damaged_rle.dcm"), decoding_plugin="pylibjpeg")
        except CorruptFileError as err:
            if "PanicException" in str(err):
                panicked = True
                assert "damaged_rle.dcm" in str(err)
                break
    assert panicked, "no damaged segment made the Rust decoder panic: the guard went untested"


def _mixed_folder(root: Path) -> tuple[Path, list[str]]:
    """A folder of two good series (CT_small copies, MR_small), four damaged files and a text file."""
    from tests.io.conftest import write_series, z_positions

    write_series(Path(get_testdata_file("CT_small.dcm")), root / "ct", z_positions([0, 5, 10]))
    (root / "mr.dcm").write_bytes(Path(get_testdata_file("MR_small.dcm")).read_bytes())
    data = Path(get_testdata_file("MR_small_RLE.dcm")).read_bytes()
    (root / "cut.dcm").write_bytes(data[: len(data) // 3])
    _garbled(Path(get_testdata_file("CT_small.dcm")), random.Random(3), root / "garbled.dcm", "PixelSpacing")
    _deleted(Path(get_testdata_file("MR_small.dcm")), random.Random(1), root / "deleted.dcm", "Rows")
    (root / "short.dcm").write_bytes(data[:60])  # cut before the DICM magic: named .dcm, so still damaged
    (root / "notes.txt").write_text("not an image")  # not DICOM: skipped, not listed
    return root, ["cut.dcm", "garbled.dcm", "deleted.dcm", "short.dcm"]


def test_folder_with_damaged_files_lists_good_series_and_names_each_damaged_file(tmp_path):
    folder, bad = _mixed_folder(tmp_path / "study")
    found = scan(folder)
    assert sorted(s.n_files for s in found) == [1, 3]
    assert sorted(Path(err.path).name for err in found.damaged) == sorted(bad)
    vol = load_volume(folder, series_uid=found[0].series_uid)  # a good series loads, saying what was left out
    assert all(any(name in w and "left out" in w for w in vol.warnings) for name in bad)
    info = report(folder)
    assert len(info["series"]) == 2
    assert sorted(Path(d["file"]).name for d in info["damaged"]) == sorted(bad)
    assert all(d["problem"] for d in info["damaged"])


def test_radview_info_on_a_folder_with_damaged_files_exits_0_and_names_each(tmp_path, capsys):
    from viewer.cli import main

    folder, bad = _mixed_folder(tmp_path / "study")
    assert main(["info", str(folder)]) == 0
    out = capsys.readouterr().out
    damaged_lines = [line for line in out.splitlines() if line.startswith("damaged ")]
    assert sorted(Path(line.split()[1].rstrip(":")).name for line in damaged_lines) == sorted(bad)
    assert out.count("uid ") == 2  # both good series listed


def test_an_unknown_vr_on_a_label_element_does_not_cost_the_image(tmp_path):
    """A byte flip in SOPClassUID's VR ('UI' -> 'U\\xf9'): pydicom cannot convert it; the image still loads."""
    data = Path(get_testdata_file("CT_small.dcm")).read_bytes()
    assert data.count(b"\x08\x00\x16\x00UI") == 1
    (tmp_path / "bad_vr.dcm").write_bytes(data.replace(b"\x08\x00\x16\x00UI", b"\x08\x00\x16\x00U\xf9"))
    assert load_volume(tmp_path / "bad_vr.dcm").array.shape == (1, 128, 128)


def test_info_lists_a_segmentation_beside_a_series_as_not_shown_not_damaged(tmp_path, capsys):
    from viewer.cli import main

    folder, bad = _mixed_folder(tmp_path / "study")
    (folder / "seg.dcm").write_bytes(Path(get_testdata_file("liver_1frame.dcm")).read_bytes())
    info = report(folder)
    assert [Path(d["file"]).name for d in info["not_shown"]] == ["seg.dcm"]
    assert "DICOM SEG" in info["not_shown"][0]["problem"] and len(info["damaged"]) == len(bad)
    assert main(["info", str(folder / "seg.dcm")]) == 2  # alone, the SEG is the error, saying how to open it
    assert "File > Open segmentation" in capsys.readouterr().err
