"""NIfTI/NRRD/MHA: RAS->LPS at the boundary, exact round trips of voxels and geometry."""

import numpy as np
import pytest

from viewer.core.errors import UnsupportedFormatError
from viewer.core.io import load_volume, save_volume


def test_shared_nifti_is_lps_with_flipped_direction(shared_data):
    vol = load_volume(shared_data / "ct_abdomen_3mm.nii.gz")
    assert vol.size == (122, 101, 30)
    assert np.allclose(vol.spacing, (3, 3, 3))
    assert np.allclose(vol.direction, np.diag([-1, -1, 1]))
    assert vol.array.dtype == np.int16


@pytest.mark.parametrize("ext", [".nii", ".nii.gz", ".nrrd", ".mha"])
def test_round_trip_keeps_voxels_and_geometry(shared_data, tmp_path, ext):
    vol = load_volume(shared_data / "ct_abdomen_3mm.nii.gz")
    back = load_volume(save_volume(vol, tmp_path / f"out{ext}"))
    assert np.array_equal(back.array, vol.array)
    assert back.same_grid(vol, tol=1e-5)


def test_unknown_output_extension_is_refused(shared_data, tmp_path):
    vol = load_volume(shared_data / "ct_abdomen_3mm.nii.gz")
    with pytest.raises(UnsupportedFormatError, match="out.png"):
        save_volume(vol, tmp_path / "out.png")


def test_world_point_of_a_voxel_matches_nibabel_ras(shared_data):
    import nibabel

    vol = load_volume(shared_data / "ct_abdomen_3mm.nii.gz")
    img = nibabel.load(shared_data / "ct_abdomen_3mm.nii.gz")
    ijk = np.array([10, 20, 5])
    ras = img.affine @ np.r_[ijk, 1]
    lps = vol.index_to_world(ijk)
    assert np.allclose(lps, [-ras[0], -ras[1], ras[2]], atol=1e-3)


def test_nifti_ct_is_recognised_as_hu_with_a_warning(shared_data):
    """NIfTI records no modality: air at -1000 makes it CT in HU, and the reader says it inferred that."""
    vol = load_volume(shared_data / "ct_abdomen_3mm.nii.gz")
    assert (vol.modality, vol.units) == ("CT", "HU")
    assert any("look like CT" in w for w in vol.warnings)


def test_non_ct_nifti_stays_arbitrary(shared_data, demo_study):
    labels = load_volume(shared_data / "ct_abdomen_3mm_labels.nii.gz")
    mr = load_volume(demo_study.mr)
    assert (labels.modality, labels.units) == ("OT", "arbitrary")
    assert (mr.modality, mr.units) == ("OT", "arbitrary")


def test_scan_lists_an_image_file_with_its_slice_count(shared_data):
    from viewer.core.io import scan

    (found,) = scan(shared_data / "ct_abdomen_3mm.nii.gz")
    assert found.n_slices == 30 and found.n_files == 1
