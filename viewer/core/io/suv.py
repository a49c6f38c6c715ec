"""PET SUV body-weight factor from the DICOM tags, read as QIBA's vendor-neutral SUV pseudo-code reads them."""

from __future__ import annotations

import math
from datetime import datetime

import pydicom

F18_HALF_LIFE_S = 6586.2
SECONDS_PER_DAY = 86400.0
#: Beyond these a PatientWeight or a RadionuclideTotalDose is in the wrong unit (grams; MBq), which would put every
#: SUV 1000x or 10^6x off: no SUV then
MAX_WEIGHT_KG = 500.0
MIN_DOSE_BQ = 1e6
#: the private creator of GE's PET scan date and time (0009,xx0d)
GE_PET_CREATOR = "GEMS_PETD_01"
#: the private creator of Philips' PET SUV scale factor (7053,xx00)
PHILIPS_PET_CREATOR = "Philips PET Private Group"
#: PET Units of activity concentration
BQML = ("BQML", "BQ/ML")


def _datetime(date: str, time: str) -> datetime | None:
    """DICOM DA + TM (or a DT in ``time`` when ``date`` is empty) -> datetime."""
    text = (date or "") + (time or "")
    if not text:
        return None
    main, _, frac = text.split("+")[0].partition(".")
    if len(main) < 10:  # at least YYYYMMDDHH
        return None
    value = datetime.strptime(main[:14].ljust(14, "0"), "%Y%m%d%H%M%S")
    return value.replace(microsecond=int((frac + "000000")[:6])) if frac else value


def suv_bw_factor(weight_kg: float, injected_dose_bq: float, half_life_s: float, elapsed_s: float) -> float:
    """Factor converting activity concentration (Bq/mL) to SUVbw.

    SUVbw = C[Bq/mL] * weight[g] / D(t)[Bq], with D(t) = D0 * 2^(-elapsed / half_life), the injected
    dose decay-corrected from injection to the time the image values refer to (see suv_factor_from_dataset).
    Tissue density 1 g/mL, so SUVbw is dimensionless (g/mL).
    """
    if weight_kg <= 0 or injected_dose_bq <= 0 or half_life_s <= 0:
        raise ValueError("weight, dose and half-life must be positive")
    decayed = injected_dose_bq * math.pow(2.0, -elapsed_s / half_life_s)
    return weight_kg * 1000.0 / decayed


def pet_units(ds: pydicom.Dataset) -> str:
    """The Volume units of a PET image's stored (rescaled) values: 'Bq/mL' for BQML, 'counts' for CNTS,
    'arbitrary' for anything else."""
    units = str(ds.get("Units", "")).upper()
    return {"BQML": "Bq/mL", "BQ/ML": "Bq/mL", "CNTS": "counts"}.get(units, "arbitrary")


def acquisition_datetime(ds: pydicom.Dataset) -> datetime | None:
    """When an image (or, given an enhanced object's Frame Content item, a frame) was acquired: its
    FrameAcquisitionDateTime, AcquisitionDateTime, or AcquisitionDate + AcquisitionTime (None when not recorded
    or not readable: one image's damaged time must not cost the series its SUV)."""
    try:
        return (_datetime("", str(ds.get("FrameAcquisitionDateTime", "") or ""))
                or _datetime("", str(ds.get("AcquisitionDateTime", "") or ""))
                or _datetime(str(ds.get("AcquisitionDate", "") or ""), str(ds.get("AcquisitionTime", "") or "")))
    except ValueError:
        return None


def _ge_scan_datetime(ds: pydicom.Dataset) -> datetime | None:
    """GE's private scan date and time (0009,xx0d of "GEMS_PETD_01"): what QIBA's pseudo-code decay-corrects to
    when a series is dated after its acquisition; None when absent or unreadable."""
    try:
        return _datetime("", str(ds.get_private_item(0x0009, 0x0D, GE_PET_CREATOR).value))
    except (KeyError, TypeError, ValueError):
        return None


def _philips_suv_factor(ds: pydicom.Dataset) -> float | None:
    """Philips' SUVbw scale factor of PET counts (private (7053,xx00) of "Philips PET Private Group"), or None."""
    try:
        value = float(ds.get_private_item(0x7053, 0x00, PHILIPS_PET_CREATOR).value)
    except (KeyError, TypeError, ValueError):
        return None
    return value if math.isfinite(value) and value > 0 else None


def series_suv_factors(ds: pydicom.Dataset, times: list[datetime | None]) -> tuple[list[float] | None, str]:
    """Per image of a series whose first image is ``ds`` (``times``: each image's acquisition_datetime) the factor
    of its stored (rescaled) values to SUVbw, or (None, why not), and the note of suv_factor_from_dataset. Values
    decay-corrected to one time (DecayCorrection START, ADMIN) share one factor; values that are not (NONE) each
    refer to their own acquisition, so each image's factor decays the dose to that time (the series time where
    it is not recorded): the last bed of a 30-minute F-18 scan would otherwise read about 17% low."""
    factor, note = suv_factor_from_dataset(ds, [t for t in times if t is not None])
    if factor is None or _decay_correction(ds) != "NONE" or str(ds.get("Units", "")).upper() not in BQML:
        return (None if factor is None else [factor] * len(times)), note
    factors = [suv_factor_from_dataset(ds, at=t) for t in times]
    missing = next((why for f, why in factors if f is None), None)
    return (None, missing) if missing is not None else ([f for f, _ in factors], note)


def _decay_correction(ds: pydicom.Dataset) -> str:
    return str(ds.get("DecayCorrection", "START") or "START").upper()


def suv_factor_from_dataset(ds: pydicom.Dataset, acquired: list[datetime] | None = None,
                            at: datetime | None = None) -> tuple[float | None, str]:
    """(factor, note): the stored (rescaled) values -> SUVbw factor of a PET image, or (None, why not).

    As QIBA's vendor-neutral SUV pseudo-code reads the tags: no SUV for an image that is not attenuation-corrected
    (CorrectedImage without ATTN: a NAC reconstruction); an empty CorrectedImage (Type 2) is not held against it.
    Units GML are SUV already (factor 1); Philips counts (CNTS) carry their factor in a private element. Bq/mL are
    divided by the injected dose decayed to the time the values refer to, which DecayCorrection (Type 1; QIBA also
    asks CorrectedImage for DECY) gives:
    - ADMIN: the injection;
    - START: the series date and time, unless the series is dated after the first of its images' acquisitions
      ``acquired`` (a series reconstructed or processed later): then GE's private scan time, as QIBA reads it, or
      else that first acquisition;
    - NONE: each image's own acquisition, ``at`` (default: the series time; series_suv_factors gives each its own).
    An injection recorded as a time only (RadiopharmaceuticalStartTime) is on the series' day, or the day before
    when that would put it after the series (a scan after midnight). A weight above MAX_WEIGHT_KG or a dose below
    MIN_DOSE_BQ (grams, MBq) gives no SUV. The note says when one of these rules applied ("" otherwise)."""
    units = str(ds.get("Units", "")).upper()
    corrected = {str(v).upper() for v in (ds.get("CorrectedImage") or [])}
    if corrected and "ATTN" not in corrected:
        return None, "not attenuation-corrected (CorrectedImage has no ATTN): its values are not quantitative"
    if units == "GML":
        return 1.0, "values stored as SUV (Units GML), taken as SUVbw as QIBA's pseudo-code does"
    if units == "CNTS":
        philips = _philips_suv_factor(ds)
        if philips is not None:
            return philips, "from the Philips scale factor (7053,1000) of counts (Units CNTS)"
    if units not in BQML:
        return None, f"PET Units are '{units or 'missing'}', not BQML"
    correction = _decay_correction(ds)
    if correction not in ("START", "ADMIN", "NONE"):
        return None, f"DecayCorrection '{correction}' is none of START, ADMIN, NONE"
    dosing = _weight_and_dose(ds)
    if isinstance(dosing, str):
        return None, dosing
    if correction == "ADMIN":
        decay = (0.0, [])
    elif correction == "START":
        decay = _decay_time(ds, acquired, None)
    else:
        decay = _decay_time(ds, None, at)
        if not isinstance(decay, str):
            decay[1].append("values not decay-corrected (DecayCorrection NONE): each image's SUV decays the dose to "
                            "its own acquisition time")
    if isinstance(decay, str):
        return None, decay
    (weight, dose, half_life), (elapsed, notes) = dosing, decay
    return suv_bw_factor(weight, dose, half_life, elapsed), "; ".join(notes)


def _weight_and_dose(ds: pydicom.Dataset) -> tuple[float, float, float] | str:
    """(PatientWeight kg, RadionuclideTotalDose Bq, RadionuclideHalfLife s), or why they cannot be used."""
    weight = ds.get("PatientWeight")
    if not weight or float(weight) <= 0:
        return "PatientWeight missing"
    if float(weight) > MAX_WEIGHT_KG:
        return f"PatientWeight {float(weight):g} kg is not a body weight (grams?)"
    seq = ds.get("RadiopharmaceuticalInformationSequence")
    if not seq:
        return "RadiopharmaceuticalInformationSequence missing"
    dose, half_life = seq[0].get("RadionuclideTotalDose"), seq[0].get("RadionuclideHalfLife")
    if not dose or not half_life:
        return "injected dose or half-life missing"
    if float(dose) < MIN_DOSE_BQ:
        return f"RadionuclideTotalDose {float(dose):g} Bq is below any PET dose (recorded in MBq?)"
    return float(weight), float(dose), float(half_life)


def _decay_time(ds: pydicom.Dataset, acquired: list[datetime] | None,
                at: datetime | None) -> tuple[float, list[str]] | str:
    """(seconds from injection to the time the values refer to: ``at``, else the series time or the first of the
    ``acquired`` when that is earlier; notes on how the times were taken, see suv_factor_from_dataset), or why it
    cannot be known."""
    info = ds.RadiopharmaceuticalInformationSequence[0]
    notes = []
    start = _datetime("", str(info.get("RadiopharmaceuticalStartDateTime", "") or ""))
    dated_by_series = start is None
    if dated_by_series:
        start = _datetime(str(ds.get("SeriesDate", "") or ds.get("StudyDate", "")),
                          str(info.get("RadiopharmaceuticalStartTime", "") or ""))
    reference = at or _datetime(str(ds.get("SeriesDate", "") or ""), str(ds.get("SeriesTime", "") or ""))
    first = min(acquired) if acquired else None
    if reference is not None and first is not None and reference > first:
        scan, what = _ge_scan_datetime(ds), "GE's scan time (0009,100d)"
        if scan is None:
            scan, what = first, "the first acquisition"
        notes.append(f"decay-corrected to {what} ({scan:%H:%M:%S}), not to the later series time "
                     f"({reference:%H:%M:%S})")
        reference = scan
    if start is None or reference is None:
        return "injection or series time missing"
    elapsed = (reference - start).total_seconds()
    if dated_by_series and -SECONDS_PER_DAY < elapsed < 0:
        elapsed += SECONDS_PER_DAY
        notes.append(f"injection at {start:%H:%M:%S} taken on the day before the series (its date is not recorded)")
    if elapsed < 0:
        return f"series time is {-elapsed:.0f} s before injection"
    return elapsed, notes
