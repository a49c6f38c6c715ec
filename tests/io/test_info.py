"""`radview info` on NIfTI files: header geometry and the modality from the first slices, not all voxels."""

import gzip
import shutil
import time

import numpy as np
import pytest
import SimpleITK as sitk

from viewer.core.io.image_files import read_image_file
from viewer.core.io.info import describe

FIELDS = ("modality", "size", "spacing", "origin", "direction", "units", "warnings")


def _fields_of_whole_file(path) -> dict:
    """The info fields as the whole-file read gives them (what `radview info` printed before)."""
    vol = read_image_file(path)
    return {"modality": vol.modality, "size": list(vol.size), "spacing": list(vol.spacing),
            "origin": list(vol.origin), "direction": [float(v) + 0.0 for v in vol.direction.ravel()],
            "units": vol.units, "warnings": vol.warnings}


def _ct_like(shape) -> np.ndarray:
    """int16 HU: air (-1000) around an elliptic body of soft tissue with noise."""
    nz, ny, nx = shape
    yy, xx = np.mgrid[:ny, :nx]
    body = ((xx - nx / 2) / (0.43 * nx)) ** 2 + ((yy - ny / 2) / (0.31 * ny)) ** 2 <= 1
    tissue = np.random.default_rng(0).normal(40, 20, (ny, nx)).astype(np.int16)
    return np.where(body, tissue, np.int16(-1000))[np.newaxis].repeat(nz, axis=0)


def _write_gzipped_nifti(array: np.ndarray, path):
    """``array`` as .nii.gz compressed by gzip, as dcm2niix/pigz write them (one stream, readable from its start)."""
    img = sitk.GetImageFromArray(array)
    img.SetSpacing((0.7, 0.7, 1.25))
    img.SetOrigin((-180.0, -170.0, 30.0))
    raw = path.with_suffix("")  # .nii
    sitk.WriteImage(img, str(raw))
    with open(raw, "rb") as src, gzip.open(path, "wb", compresslevel=1) as dst:
        shutil.copyfileobj(src, dst)
    raw.unlink()
    return path


def test_info_on_a_large_nifti_reads_a_few_slices_and_gives_the_same_fields(tmp_path):
    path = _write_gzipped_nifti(_ct_like((400, 512, 512)), tmp_path / "big.nii.gz")
    t0 = time.process_time()
    info = describe(path)[0]
    info_s = time.process_time() - t0
    t0 = time.process_time()
    whole = _fields_of_whole_file(path)
    whole_s = time.process_time() - t0
    assert {k: info[k] for k in FIELDS} == whole
    assert info["size"] == [512, 512, 400] and (info["modality"], info["units"]) == ("CT", "HU")
    assert info_s < whole_s / 10, (info_s, whole_s)


@pytest.mark.parametrize("shape", [(30, 40, 50), (1, 40, 50), (1, 30, 40, 50)], ids=["3d", "2d", "4d_one_time"])
@pytest.mark.parametrize("values", ["ct", "mr"])
def test_info_fields_equal_the_whole_file_read(tmp_path, shape, values):
    array = _ct_like(shape[-3:]) if values == "ct" else np.random.default_rng(1).integers(0, 900, shape[-3:])
    array = array.astype(np.int16).reshape(shape)
    img = sitk.GetImageFromArray(array[0] if len(shape) == 3 and shape[0] == 1 else array, isVector=False)
    path = tmp_path / "img.nii"
    sitk.WriteImage(img, str(path))
    info = describe(path)[0]
    assert {k: info[k] for k in FIELDS} == _fields_of_whole_file(path)
    assert info["modality"] == ("CT" if values == "ct" else "OT")
