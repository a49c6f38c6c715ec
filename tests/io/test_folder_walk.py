"""load_volume on a DICOM folder lists the folder's files once (a deep archive costs one walk, not two)."""

from __future__ import annotations

from viewer.core.io import dicom_headers, load_volume


def test_load_volume_walks_a_dicom_folder_once(make_series, zpos, monkeypatch):
    folder = make_series(zpos([0, 3, 6]))[0].parent
    walks = []
    real_iter_files = dicom_headers.iter_files
    monkeypatch.setattr(dicom_headers, "iter_files", lambda path: walks.append(path) or real_iter_files(path))
    vol = load_volume(folder)
    assert vol.array.shape[0] == 3
    assert walks == [folder]
