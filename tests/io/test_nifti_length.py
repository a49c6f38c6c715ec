"""A truncated NIfTI is refused with the file named (ITK alone zero-fills its missing end and reports success);
whole files of every layout (NIfTI-1 / -2, both byte orders, plain / gzip / multi-member gzip) still open."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from viewer.cli import main
from viewer.core.errors import CorruptFileError
from viewer.core.io import load_volume
from viewer.core.io.nifti_length import check_nifti_length


def write_nifti(path, *, version=1, big_endian=False):
    """A 20 x 16 x 12 int16 image of known values written with nibabel (the header layouts ITK does not write)."""
    import nibabel as nib

    data = (np.arange(20 * 16 * 12).reshape(20, 16, 12) % 3000 - 1000).astype(">i2" if big_endian else "<i2")
    cls = nib.Nifti1Image if version == 1 else nib.Nifti2Image
    image = cls(data, np.diag([2.0, 2.0, 3.0, 1.0]))
    if big_endian:
        image = cls(data, image.affine, image.header.as_byteswapped(">"))
    nib.save(image, str(path))
    return data


@pytest.mark.parametrize("version", [1, 2])
@pytest.mark.parametrize("big_endian", [False, True])
@pytest.mark.parametrize("name", ["image.nii", "image.nii.gz"])
def test_whole_files_open_and_cut_ones_are_refused_naming_the_file(tmp_path, version, big_endian, name):
    path = tmp_path / name
    data = write_nifti(path, version=version, big_endian=big_endian)
    check_nifti_length(path)
    whole = path.read_bytes()
    path.write_bytes(whole[: len(whole) * 2 // 3])
    with pytest.raises(CorruptFileError, match="truncated") as err:
        check_nifti_length(path)
    assert str(path) in str(err.value)
    if version == 1:  # what ITK reads: the whole file exactly, the cut one refused by load_volume
        path.write_bytes(whole)
        assert np.array_equal(load_volume(path).array, np.asarray(data).transpose(2, 1, 0))
        path.write_bytes(whole[: len(whole) * 2 // 3])
        with pytest.raises(CorruptFileError, match="truncated"):
            load_volume(path)


def test_a_multi_member_gzip_is_whole_and_its_cut_is_not(tmp_path):
    plain = tmp_path / "image.nii"
    write_nifti(plain)
    raw = plain.read_bytes()
    path = tmp_path / "image.nii.gz"
    path.write_bytes(gzip.compress(raw[:5000]) + gzip.compress(raw[5000:]))  # as bgzip writes: several members
    check_nifti_length(path)
    assert load_volume(path).array.shape == (12, 16, 20)
    path.write_bytes(gzip.compress(raw[:5000]) + gzip.compress(raw[5000:])[:-100])
    with pytest.raises(CorruptFileError, match="gzip stream ends early"):
        check_nifti_length(path)
    path.write_bytes(gzip.compress(raw[:5000]))  # a whole first member alone: a complete stream, too short
    with pytest.raises(CorruptFileError, match="holds 5000 of the"):
        check_nifti_length(path)


def test_radview_segment_refuses_a_cut_download_instead_of_segmenting_zeros(tmp_path, shared_data, capsys):
    whole = (shared_data / "ct_abdomen_3mm.nii.gz").read_bytes()
    cut = tmp_path / "ct.nii.gz"
    cut.write_bytes(whole[: len(whole) // 2])
    out = tmp_path / "labels.nii.gz"
    assert main(["segment", str(cut), "--model", "abdomen_ct_unet", "--out", str(out), "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert str(cut) in err and "truncated" in err and not out.exists()
