"""Batch output names: the input's name without extension, parent folders prefixed only where names collide."""

from __future__ import annotations

from pathlib import Path

import pytest

from viewer.batch.naming import input_stem, output_names
from viewer.core.errors import InputError


def test_stem_drops_the_image_extension_and_keeps_a_dicom_folder_name():
    assert [input_stem(Path(p)) for p in ("/d/ct.nii.gz", "/d/ct.NII", "/d/mr.nrrd", "/d/pet.mha", "/d/x.dcm",
                                          "/d/series_3", "/d/.nii.gz")] == \
        ["ct", "ct", "mr", "pet", "x", "series_3", ".nii.gz"]


def test_colliding_names_get_their_parent_folders_and_the_others_stay_plain():
    names = output_names([Path("/data/p1/ct.nii.gz"), Path("/data/p2/ct.nii.gz"), Path("/data/p3/mr.nrrd"),
                          Path("/other/p1/CT.nii")])
    assert names == ["data_p1_ct", "p2_ct", "mr", "other_p1_CT"]  # case-insensitive: CT collides with ct
    assert len({n.casefold() for n in names}) == len(names)


def test_a_dicom_folder_and_a_file_of_the_same_name_do_not_overwrite_each_other():
    assert output_names([Path("/a/case7"), Path("/b/case7.nii.gz")]) == ["a_case7", "b_case7"]


def test_an_input_given_twice_is_an_error_naming_it():
    with pytest.raises(InputError, match="given twice"):
        output_names([Path("/a/ct.nii.gz"), Path("/a/../a/ct.nii.gz")])
