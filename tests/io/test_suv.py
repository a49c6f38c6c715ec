"""SUVbw from the radiopharmaceutical tags, decay-corrected to series time."""

import math

import pydicom
import pytest

from viewer.core.io.suv import suv_bw_factor, suv_factor_from_dataset


def test_suv_factor_by_hand():
    # 70 kg, 370 MBq F-18 injected 60 min before the series: D(t) = 370e6 * 2^(-3600/6586.2)
    decayed = 370e6 * 2 ** (-3600 / 6586.2)
    assert decayed == pytest.approx(253.3e6, rel=1e-3)
    factor = suv_bw_factor(70, 370e6, 6586.2, 3600)
    assert factor == pytest.approx(70000 / decayed)
    # 5000 Bq/mL in that patient is SUV ~1.38
    assert 5000 * factor == pytest.approx(1.3816, rel=1e-3)


def _pet(**info):
    ds = pydicom.Dataset()
    ds.Units, ds.DecayCorrection, ds.PatientWeight = "BQML", "START", "70"
    ds.SeriesDate, ds.SeriesTime = "20260101", "100000"
    item = pydicom.Dataset()
    item.RadionuclideTotalDose, item.RadionuclideHalfLife = "370000000", "6586.2"
    item.RadiopharmaceuticalStartDateTime = "20260101090000"
    for k, v in info.items():
        setattr(item, k, v)
    ds.RadiopharmaceuticalInformationSequence = [item]
    return ds


def test_suv_factor_from_tags_uses_series_time():
    factor, why = suv_factor_from_dataset(_pet())
    assert why == ""
    assert factor == pytest.approx(70000 / (370e6 * math.pow(2, -3600 / 6586.2)))


def test_missing_weight_falls_back_with_a_reason():
    ds = _pet()
    del ds.PatientWeight
    factor, why = suv_factor_from_dataset(ds)
    assert factor is None and "PatientWeight" in why


def test_demo_pet_suv_matches_truth_within_one_percent(demo_study):
    import json

    import numpy as np

    from viewer.core.io import load_volume

    pet = load_volume(demo_study.pet_dir)
    assert pet.units == "SUVbw" and pet.modality == "PT"
    truth = json.loads(demo_study.truth.read_text())
    for lesion in truth["lesions"]:
        idx = np.rint(pet.world_to_index(lesion["center_pet_mm"])).astype(int)
        r = 4
        box = pet.array[idx[2] - r: idx[2] + r + 1, idx[1] - r: idx[1] + r + 1, idx[0] - r: idx[0] + r + 1]
        assert float(box.max()) == pytest.approx(lesion["suv_max"], rel=0.01), lesion["name"]


def _edited_pet_copy(demo_study, tmp_path, edit):
    """The demo PET series copied with ``edit(dataset)`` applied to every file."""
    out = tmp_path / "pet"
    out.mkdir()
    for f in sorted(demo_study.pet_dir.iterdir()):
        ds = pydicom.dcmread(f)
        edit(ds)
        ds.save_as(out / f.name)
    return out


def test_pet_without_weight_loads_in_bq_per_ml_with_a_warning(demo_study, tmp_path):
    import numpy as np

    from viewer.core.io import load_volume

    suv = load_volume(demo_study.pet_dir)
    ds0 = pydicom.dcmread(sorted(demo_study.pet_dir.iterdir())[0])
    factor, _ = suv_factor_from_dataset(ds0)
    pet = load_volume(_edited_pet_copy(demo_study, tmp_path, lambda ds: delattr(ds, "PatientWeight")))
    assert pet.units == "Bq/mL"
    assert any("SUV not computed" in w and "PatientWeight" in w for w in pet.warnings)
    # the same voxels, one factor apart: nothing else changed in the conversion
    np.testing.assert_allclose(pet.array * factor, suv.array, rtol=1e-5, atol=1e-5)


def test_pet_in_counts_is_labelled_counts_not_bq_per_ml(demo_study, tmp_path):
    from viewer.core.io import load_volume

    def to_counts(ds):
        ds.Units = "CNTS"

    pet = load_volume(_edited_pet_copy(demo_study, tmp_path, to_counts))
    assert pet.units == "counts"
    assert any("CNTS" in w for w in pet.warnings)


def test_an_injection_recorded_as_a_time_before_a_scan_after_midnight_is_on_the_day_before():
    """QIBA's pseudo-code: the injection date is not recorded, so take the series' date, but consider spanning
    midnight: injected at 23:30, scanned at 00:30 the next day is one hour of decay, not 'before injection'."""
    ds = _pet(RadiopharmaceuticalStartTime="233000")
    del ds.RadiopharmaceuticalInformationSequence[0].RadiopharmaceuticalStartDateTime
    ds.SeriesDate, ds.SeriesTime = "20260102", "003000"
    factor, note = suv_factor_from_dataset(ds)
    assert factor == pytest.approx(70000 / (370e6 * math.pow(2, -3600 / 6586.2)))
    assert "day before the series" in note
    ds.SeriesTime = "233500"  # the same day: 5 minutes, and nothing to say
    factor, note = suv_factor_from_dataset(ds)
    assert factor == pytest.approx(70000 / (370e6 * math.pow(2, -300 / 6586.2))) and note == ""


def test_a_series_dated_after_its_acquisition_is_decay_corrected_to_the_acquisition():
    """A series reconstructed 2 h after the scan keeps the scan's AcquisitionTime: decay to the series time would
    make every SUV 2.1x too high."""
    from datetime import datetime

    ds = _pet()
    ds.SeriesTime = "120000"  # injected 09:00, acquired 10:00, reconstructed 12:00
    factor, note = suv_factor_from_dataset(ds, [datetime(2026, 1, 1, 10, 5), datetime(2026, 1, 1, 10, 0)])
    assert factor == pytest.approx(70000 / (370e6 * math.pow(2, -3600 / 6586.2)))
    assert "first acquisition (10:00:00)" in note and "series time (12:00:00)" in note
    factor, note = suv_factor_from_dataset(ds)  # no acquisition times: the series time, as recorded
    assert factor == pytest.approx(70000 / (370e6 * math.pow(2, -3 * 3600 / 6586.2))) and note == ""
    # GE records the scan time privately, and QIBA's pseudo-code takes it
    ds.private_block(0x0009, "GEMS_PETD_01", create=True).add_new(0x0D, "DT", "20260101100200")
    factor, note = suv_factor_from_dataset(ds, [datetime(2026, 1, 1, 10, 5), datetime(2026, 1, 1, 10, 0)])
    assert factor == pytest.approx(70000 / (370e6 * math.pow(2, -3720 / 6586.2)))
    assert "GE's scan time (0009,100d) (10:02:00)" in note


def test_a_reconstructed_pet_series_loads_in_suv_at_its_acquisition_time(demo_study, tmp_path):
    """Through the loader: the demo PET (acquired at its series time) with its series time moved 2 h later
    loads with the same SUVs and says which time it used."""
    import shutil

    import numpy as np

    from viewer.core.io import load_volume

    folder = tmp_path / "pet"
    shutil.copytree(demo_study.pet_dir, folder)
    for path in folder.iterdir():
        ds = pydicom.dcmread(path)
        assert ds.AcquisitionTime == ds.SeriesTime
        later = f"{(int(ds.SeriesTime[:2]) + 2) % 24:02d}{ds.SeriesTime[2:]}"
        ds.SeriesTime = later
        ds.save_as(path)
    moved, original = load_volume(folder), load_volume(demo_study.pet_dir)
    np.testing.assert_allclose(moved.array, original.array, rtol=1e-5)
    assert any("decay-corrected to the first acquisition" in w for w in moved.warnings)


def test_pet_stored_as_suv_or_as_philips_counts_loads_in_suv(demo_study, tmp_path):
    """QIBA's pseudo-code: Units GML are SUVbw already (factor 1); Philips counts (Units CNTS) carry their SUVbw
    scale factor in the private (7053,1000). Both give the demo PET's SUVs, and say how."""
    import numpy as np

    from viewer.core.io import load_volume

    suv = load_volume(demo_study.pet_dir)
    ds0 = pydicom.dcmread(sorted(demo_study.pet_dir.iterdir())[0])
    factor, _ = suv_factor_from_dataset(ds0)

    def to_gml(ds):  # the stored values rescaled to SUV
        ds.Units = "GML"
        ds.RescaleSlope = f"{float(ds.RescaleSlope) * factor:.10g}"

    def to_philips_counts(ds):
        ds.Units = "CNTS"
        ds.private_block(0x7053, "Philips PET Private Group", create=True).add_new(0x00, "DS", f"{factor:.10g}")

    for edit, says in ((to_gml, "Units GML"), (to_philips_counts, "Philips scale factor")):
        folder = tmp_path / edit.__name__
        folder.mkdir()
        pet = load_volume(_edited_pet_copy(demo_study, folder, edit))
        assert pet.units == "SUVbw" and any(says in w for w in pet.warnings)
        np.testing.assert_allclose(pet.array, suv.array, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("edit, why", [
    ({"CorrectedImage": ["DECY", "NORM"]}, "not attenuation-corrected"),  # a NAC reconstruction
    ({"DecayCorrection": "LATER"}, "DecayCorrection 'LATER' is none of START, ADMIN, NONE"),
])
def test_no_suv_for_values_that_are_not_quantitative(edit, why):
    ds = _pet()
    ds.CorrectedImage = ["ATTN", "DECY"]
    assert suv_factor_from_dataset(ds)[0] is not None
    for keyword, value in edit.items():
        setattr(ds, keyword, value)
    factor, reason = suv_factor_from_dataset(ds)
    assert factor is None and why in reason


@pytest.mark.parametrize("where, keyword, value, why", [
    ("image", "PatientWeight", "70000", "70000 kg is not a body weight"),  # grams
    ("injection", "RadionuclideTotalDose", "370", "370 Bq is below any PET dose"),  # MBq
])
def test_a_weight_or_dose_in_the_wrong_unit_gets_no_suv(where, keyword, value, why):
    ds = _pet()
    setattr(ds if where == "image" else ds.RadiopharmaceuticalInformationSequence[0], keyword, value)
    factor, reason = suv_factor_from_dataset(ds)
    assert factor is None and why in reason


def test_values_not_decay_corrected_get_each_image_s_own_decay():
    """DecayCorrection NONE: each image's activity refers to its own acquisition. A bed acquired 10 min after the
    first has its dose decayed 10 min more; images without an acquisition time take the series time."""
    from datetime import datetime

    from viewer.core.io.suv import series_suv_factors

    ds = _pet()
    ds.DecayCorrection = "NONE"
    first, second = datetime(2026, 1, 1, 10, 0), datetime(2026, 1, 1, 10, 10)
    factors, note = series_suv_factors(ds, [first, first, second, None])
    start = 70000 / (370e6 * math.pow(2, -3600 / 6586.2))
    assert factors[:2] == [pytest.approx(start)] * 2 and factors[3] == pytest.approx(start)  # series time 10:00
    assert factors[2] == pytest.approx(start * math.pow(2, 600 / 6586.2))
    assert "DecayCorrection NONE" in note
    ds.DecayCorrection = "START"  # one time for all
    assert series_suv_factors(ds, [first, first, second, None])[0] == [pytest.approx(start)] * 4


def test_a_pet_series_not_decay_corrected_loads_bed_by_bed(demo_study, tmp_path):
    """The demo PET relabelled DecayCorrection NONE, its upper half acquired 10 min later: the lower half keeps its
    SUVs, the upper half's are 2^(600 / half-life) higher (the same activity, measured later, means more)."""
    import numpy as np

    from viewer.core.io import load_volume

    def second_bed_later(ds):
        ds.DecayCorrection = "NONE"
        if int(ds.InstanceNumber) > 38:
            ds.AcquisitionTime = "101000"

    original = load_volume(demo_study.pet_dir)
    beds = load_volume(_edited_pet_copy(demo_study, tmp_path, second_bed_later))
    z_later = [k for k in range(beds.array.shape[0]) if beds.index_to_world((0, 0, k))[2]
               >= original.index_to_world((0, 0, 38))[2]]
    assert 0 < len(z_later) < beds.array.shape[0] and beds.units == "SUVbw"
    ratio = np.ones(beds.array.shape[0])
    ratio[z_later] = math.pow(2, 600 / 6586.2)
    np.testing.assert_allclose(beds.array, original.array * ratio[:, None, None].astype(np.float32), rtol=1e-5,
                               atol=1e-5)


def test_an_enhanced_pet_frame_is_timed_by_its_own_frame_content():
    """DecayCorrection NONE decays each image's dose to its acquisition: an enhanced (multi-frame) object's frame
    by its FrameAcquisitionDateTime, else the object's own time."""
    from datetime import datetime
    from pathlib import Path

    import numpy as np
    from pydicom.sequence import Sequence

    from viewer.core.io.dicom_geometry import SliceRef
    from viewer.core.io.dicom_headers import DicomHeader
    from viewer.core.io.dicom_series import _acquired

    ds = pydicom.Dataset()
    ds.NumberOfFrames, ds.AcquisitionDateTime = 2, "20260101100000"
    content = pydicom.Dataset()
    content.FrameAcquisitionDateTime = "20260101101500"
    frame = pydicom.Dataset()
    frame.FrameContentSequence = Sequence([content])
    ds.PerFrameFunctionalGroupsSequence = Sequence([frame, pydicom.Dataset()])
    header = DicomHeader(Path("pet.dcm"), ds)
    refs = [SliceRef(header, k, np.zeros(3), np.array([1.0, 0, 0, 0, 1, 0]), (1.0, 1.0)) for k in (0, 1)]
    assert [_acquired(r) for r in refs] == [datetime(2026, 1, 1, 10, 15), datetime(2026, 1, 1, 10, 0)]
