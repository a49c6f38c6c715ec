"""`radview synthesize` end to end with a tiny trained MR -> CT model: the synthetic flag in the file (NIfTI
descrip, DICOM DERIVED\\SECONDARY + descriptions), read back, kept by resampling and sessions; warnings for
inputs outside the card's anatomy; refusals of wrong modalities and of non-translation models."""

from __future__ import annotations

import json

import nibabel
import numpy as np
import pydicom
import pytest

from ai.registry import load_model
from ai.translation import check_anatomy, run_translation
from tests.ai.synthesis_fixture import tiny_head, write_translation_model
from viewer.cli import main
from viewer.core.errors import ModelError
from viewer.core.io import load_volume, save_volume
from viewer.core.resample import resample_to
from viewer.core.volume import Volume

STATEMENT = "SYNTHETIC CT from MR by tiny-mr-to-ct-test 0.0.1"


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return write_translation_model(tmp_path_factory.mktemp("translation") / "tiny-mr-to-ct")


@pytest.fixture
def head(tmp_path):
    """(MR file with no modality recorded, the MR Volume, the true CT) of a tiny head off-centre."""
    mr, ct = tiny_head(40, 4.5, shift_mm=(5, -3, 2), seed=7)
    return save_volume(mr, tmp_path / "mr.nii.gz"), mr, ct


def test_nifti_output_is_on_the_input_grid_in_hu_and_says_synthetic_in_its_header(model_dir, head, tmp_path, capsys):
    path, mr, ct = head
    out = tmp_path / "sct.nii.gz"
    assert main(["synthesize", str(path), "--model", str(model_dir), "--out", str(out), "--device", "cpu"]) == 0
    assert STATEMENT in capsys.readouterr().out
    assert bytes(nibabel.load(out).header["descrip"]).decode().startswith(STATEMENT)  # in the file itself
    sct = load_volume(out)
    assert sct.synthetic == STATEMENT and sct.is_synthetic  # read back flagged
    assert sct.same_grid(load_volume(path)) and sct.array.dtype == np.int16 and sct.units == "HU"
    # the tiny model learned the mapping: far better than a constant, tissue values about right
    mae, baseline = np.abs(sct.array - ct.array.astype(float)).mean(), np.abs(ct.array - np.median(ct.array)).mean()
    assert mae < 0.6 * baseline
    assert abs(np.median(sct.array[ct.array == 35]) - 35) < 150
    assert abs(np.median(sct.array[ct.array == -1000]) + 1000) < 100


def test_dicom_export_is_derived_secondary_and_describes_itself_synthetic(model_dir, head, tmp_path):
    path, *_ = head
    out = tmp_path / "sct_dicom"
    assert main(["synthesize", str(path), "--model", str(model_dir), "--out", str(out), "--device", "cpu"]) == 0
    files = sorted(out.iterdir())
    assert len(files) == 40
    ds = pydicom.dcmread(files[0])
    assert list(ds.ImageType)[:2] == ["DERIVED", "SECONDARY"]
    assert ds.DerivationDescription == STATEMENT
    assert ds.SeriesDescription.startswith("SYNTHETIC CT") and ds.Modality == "CT"
    back = load_volume(out)
    assert back.synthetic == STATEMENT and back.same_grid(load_volume(path), tol=1e-3)


def test_non_empty_dicom_folder_is_refused_and_left_alone(model_dir, head, tmp_path, capsys):
    path, *_ = head
    out = tmp_path / "busy"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    assert main(["synthesize", str(path), "--model", str(model_dir), "--out", str(out), "--device", "cpu"]) == 2
    assert "not empty" in capsys.readouterr().err
    assert [p.name for p in out.iterdir()] == ["keep.txt"]


def test_input_outside_the_cards_anatomy_gets_a_warning_not_silence(model_dir, tmp_path, capsys):
    body, _ = tiny_head(80, 5.0)  # 400 mm field of view: a body, not a head
    path = save_volume(body, tmp_path / "body_mr.nii.gz")
    assert main(["synthesize", str(path), "--model", str(model_dir), "--out", str(tmp_path / "s.nii.gz"),
                 "--device", "cpu"]) == 0
    err = capsys.readouterr().err
    assert "radview: warning:" in err and "field of view 400 x 400 x 400 mm" in err and "brain" in err


def test_a_head_gets_no_anatomy_warning_and_a_dicom_body_part_elsewhere_does(model_dir, head):
    _, mr, _ = head
    card = load_model(str(model_dir)).card
    assert check_anatomy(card, mr) == []
    abdomen = mr.with_array(mr.array)
    abdomen.meta["body_part"] = "ABDOMEN"
    assert "body part ABDOMEN" in " ".join(check_anatomy(card, abdomen))


def test_unrecorded_modality_is_taken_as_mr_with_a_warning(model_dir, head):
    path, *_ = head
    result = run_translation(load_model(str(model_dir)), [load_volume(path)], device="cpu")
    assert any("records no modality: taken as MR" in w for w in result.warnings)


def test_wrong_modality_is_a_typed_error_naming_the_file(model_dir, head, tmp_path, capsys):
    _, _, ct = head
    path = save_volume(ct, tmp_path / "ct.nii.gz")  # reads back as CT (values in HU)
    assert main(["synthesize", str(path), "--model", str(model_dir), "--out", str(tmp_path / "s.nii.gz")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"radview: error: {path}: model tiny-mr-to-ct-test translates MR images") and "\n" not in err
    assert not (tmp_path / "s.nii.gz").exists()


def test_segmentation_model_is_refused_by_synthesize_and_translation_model_by_segment(model_dir, tiny_model_dir, head,
                                                                                      tmp_path, capsys):
    path, *_ = head
    assert main(["synthesize", str(path), "--model", str(tiny_model_dir), "--out", str(tmp_path / "s.nii.gz")]) == 2
    assert "is a segmentation model, not a translation model" in capsys.readouterr().err
    assert main(["segment", str(path), "--model", str(model_dir), "--out", str(tmp_path / "l.nii.gz")]) == 2
    assert "is a translation model" in capsys.readouterr().err


def test_card_without_a_valid_output_is_refused(model_dir, head, tmp_path):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(model_dir, broken)
    card = json.loads((broken / "model.json").read_text())
    card["output"] = {"kind": "sigmoid", "units": "HU", "modality": "CT"}
    (broken / "model.json").write_text(json.dumps(card))
    with pytest.raises(ModelError, match="output kind 'sigmoid' is not 'linear'"):
        run_translation(load_model(str(broken)), [head[1]], device="cpu")


def test_flag_survives_resampling_and_every_image_format(tmp_path):
    vol = Volume(np.full((6, 8, 10), -1000, np.int16), (2.0, 2.0, 3.0), modality="CT", units="HU",
                 synthetic=STATEMENT)
    grid = Volume(np.zeros((4, 4, 4), np.uint8), (3.0, 3.0, 3.0))
    assert resample_to(vol, grid).synthetic == STATEMENT
    assert resample_to(grid.with_array(grid.array.copy()), vol).synthetic == ""  # acquired stays acquired
    for ext in ("nii.gz", "nii", "nrrd", "mha"):
        assert load_volume(save_volume(vol, tmp_path / f"v.{ext}")).synthetic == STATEMENT, ext
    acquired = load_volume(save_volume(vol.with_array(vol.array, synthetic=""), tmp_path / "a.nii.gz"))
    assert acquired.synthetic == "" and not acquired.is_synthetic


def test_session_keeps_an_in_memory_synthetic_volume_flagged(tmp_path):
    from viewer.core.session import Session

    session = Session(home=tmp_path / "home")
    vol = Volume(np.full((6, 8, 10), -1000, np.int16), modality="CT", units="HU", synthetic=STATEMENT,
                 description="made in the app")
    session.add_volume(vol)
    session.save(tmp_path / "session")
    images = json.loads((tmp_path / "session" / "session.json").read_text())["images"]
    assert len(images) == 1 and images[0].endswith("synthetic_0.nii.gz")
    reopened = Session(home=tmp_path / "home2")
    reopened.load(tmp_path / "session")
    assert [v.synthetic for v in reopened.volumes] == [STATEMENT]


def test_models_lists_a_translation_model_with_its_output_and_anatomy(model_dir, capsys):
    import os
    import shutil

    shutil.copytree(model_dir, os.path.join(os.environ["RADVIEW_HOME"], "models", "tiny"))
    assert main(["models"]) == 0
    listing = capsys.readouterr().out
    assert "tiny-mr-to-ct-test 0.0.1  translation  inputs: MR  output: CT in HU, trained on brain" in listing
    assert main(["models", "--json"]) == 0
    tiny = {m["id"]: m for m in json.loads(capsys.readouterr().out)["models"]}["tiny-mr-to-ct-test"]
    assert tiny["output"]["units"] == "HU" and tiny["anatomy"] == "brain"
