"""The `radview` command line: info JSON shape, convert round trip, render, one-line errors."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from viewer.cli import main
from viewer.core.io import load_volume

RADVIEW = [sys.executable, "-m", "viewer"]


def test_info_json_shape(shared_data, capsys):
    assert main(["info", str(shared_data / "ct_abdomen_dicom"), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    (s,) = data["series"]
    assert data["damaged"] == data["not_shown"] == []
    assert set(s) == {"series_uid", "modality", "description", "size", "spacing", "spacing_source", "origin",
                      "direction", "units", "colour", "photometric", "n_files", "warnings"}
    assert (s["spacing_source"], s["colour"], s["photometric"]) == ("PixelSpacing", "grey", "MONOCHROME2")
    assert s["size"] == [512, 512, 20] and s["n_files"] == 20 and s["units"] == "HU" and len(s["direction"]) == 9
    ref = load_volume(shared_data / "ct_abdomen_dicom")
    assert np.allclose(s["origin"], ref.origin) and np.allclose(s["spacing"], ref.spacing)


def test_info_lists_every_series_of_the_demo_study(demo_study, capsys):
    assert main(["info", str(demo_study.root), "--json"]) == 0
    modalities = sorted(s["modality"] for s in json.loads(capsys.readouterr().out)["series"])
    assert modalities.count("CT") == 1 and modalities.count("PT") == 1
    pet = next(s for s in json.loads(_info(demo_study.pet_dir))["series"])
    assert pet["units"] == "SUVbw" and pet["spacing"] == [4.0, 4.0, 4.0]


def _info(path):
    return subprocess.run([*RADVIEW, "info", str(path), "--json"], capture_output=True, text=True, check=True).stdout


def test_info_table_is_readable(shared_data, capsys):
    assert main(["info", str(shared_data / "ct_abdomen_dicom")]) == 0
    out = capsys.readouterr().out
    assert "CT" in out and "512 512 20" in out


@pytest.mark.parametrize("ext", [".nii.gz", ".nrrd", ".mha"])
def test_convert_keeps_voxels_and_geometry(shared_data, tmp_path, ext):
    out = tmp_path / f"ct{ext}"
    assert main(["convert", str(shared_data / "ct_abdomen_dicom"), str(out)]) == 0
    src, back = load_volume(shared_data / "ct_abdomen_dicom"), load_volume(out)
    assert np.array_equal(src.array, back.array) and back.same_grid(src, tol=1e-4)


def test_demo_data_command_writes_the_study(tmp_path, capsys):
    assert main(["demo-data", str(tmp_path / "demo")]) == 0
    assert (tmp_path / "demo" / "truth.json").is_file()
    assert len(list((tmp_path / "demo" / "ct").iterdir())) == 100


def _cut(src, dst, n):
    """A copy of ``src`` truncated to its first ``n`` bytes (negative: all but the last -n)."""
    dst.write_bytes(Path(src).read_bytes()[:n])
    return dst


@pytest.mark.parametrize(
    "make_bad, expected",
    [
        (lambda p, f: f("MR_truncated.dcm"), "truncated"),
        (lambda p, f: _cut(f("CT_small.dcm"), p / "head.dcm", 400), "ends before the pixel data"),
        (lambda p, f: _cut(f("CT_small.dcm"), p / "tail.dcm", -5000), "ends inside the pixel data"),
        (lambda p, f: f("rtstruct.dcm"), "without pixel data"),
        (lambda p, f: (p / "empty").mkdir() or p / "empty", "holds no files"),
        (lambda p, f: (p / "x.txt").write_text("hi") and p / "x.txt", "not a DICOM"),
    ],
)
def test_errors_are_one_line_with_nonzero_exit(tmp_path, pydicom_file, make_bad, expected):
    bad = make_bad(tmp_path, pydicom_file)
    proc = subprocess.run([*RADVIEW, "convert", str(bad), str(tmp_path / "o.nii")], capture_output=True, text=True)
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0] and Path(bad).name in lines[0]
    assert "Traceback" not in proc.stderr


def test_mixed_series_error_lists_them(tmp_path, capsys, demo_study):
    assert main(["convert", str(demo_study.root), str(tmp_path / "o.nii")]) == 2
    err = capsys.readouterr().err
    assert "series found" in err and "CT" in err and "PT" in err


def test_debug_shows_the_traceback(tmp_path):
    proc = subprocess.run([*RADVIEW, "convert", str(tmp_path / "missing"), "o.nii", "--debug"], capture_output=True,
                          text=True)
    assert proc.returncode != 0 and "Traceback" in proc.stderr
