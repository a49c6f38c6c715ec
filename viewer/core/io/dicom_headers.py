"""Parse DICOM headers once (pixel data deferred) and group the files into series."""

from __future__ import annotations

import gc
import hashlib
import logging
import math
import os
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pydicom
from pydicom.errors import InvalidDicomError
from pydicom.uid import ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

from viewer.core.errors import CorruptFileError, DamagedHeaderError, NotAnImageError
from viewer.core.io.dicom_fast_header import read_header_fast
from viewer.core.io.series_info import SeriesInfo
from viewer.core.volume import SYNTHETIC_PREFIX

log = logging.getLogger(__name__)

PIXEL_DATA_TAGS = (0x7FE00010, 0x7FE00008, 0x7FE00009)  # PixelData, FloatPixelData, DoubleFloatPixelData
#: Single-valued string VRs that are plain ASCII by definition, so raw bytes can be decoded directly.
_ASCII_VRS = ("UI", "CS", "DA", "TM")
#: Values larger than this stay on disk until decoded (pixel data), so each header is parsed once.
DEFER_SIZE = 1024

SOP_CLASS_NAMES = {
    "1.2.840.10008.5.1.4.1.1.481.3": "RT Structure Set",
    "1.2.840.10008.5.1.4.1.1.481.5": "RT Plan",
    "1.2.840.10008.5.1.4.1.1.66.4": "Segmentation",
    "1.2.840.10008.5.1.4.1.1.88.11": "Basic Text SR",
    "1.2.840.10008.5.1.4.1.1.88.22": "Enhanced SR",
    "1.2.840.10008.5.1.4.1.1.88.33": "Comprehensive SR",
}


@cache
def _tag(keyword: str) -> int:
    tag = pydicom.datadict.tag_for_keyword(keyword)
    if tag is None:
        raise KeyError(keyword)
    return tag


def numbers(ds: pydicom.Dataset, keyword: str) -> list[float] | None:
    """The values of a numeric string element (DS/IS: positions, spacings, rescale) as floats, or None.

    Reads the raw bytes of a not-yet-converted element directly: pydicom's generic conversion is the
    slowest part of reading hundreds of slice headers, and these few elements are all geometry needs.
    """
    raw = ds._dict.get(_tag(keyword))  # noqa: SLF001 - raw access is the point
    if raw is None:
        return None
    if isinstance(raw, pydicom.dataelem.RawDataElement) and isinstance(raw.value, bytes) and \
            raw.VR in (None, "DS", "IS"):
        parts = raw.value.split(b"\\")
        try:
            values = [float(v) for v in parts if v.strip(b" \x00")]
        except ValueError:
            values = None
        if values is not None:
            if len(values) < len(parts) and raw.value.strip(b" \x00"):  # "1\\" or "\\": a value is missing
                raise _damaged(ds, keyword, ValueError(f"empty value in {raw.value!r}"))
            return values or None
    try:
        value = ds.get(keyword)
        if value is None or value == "":
            return None
        if isinstance(value, (list, tuple, pydicom.multival.MultiValue)):
            return [float(v) for v in value]
        return [float(value)]
    except Exception as err:  # pydicom raises many types on garbled values (and VRs)
        raise _damaged(ds, keyword, err) from err


def _damaged(ds: pydicom.Dataset, keyword: str, err: Exception) -> DamagedHeaderError:
    """The typed error for an element whose value cannot be read as what it must be."""
    path = ds.filename if isinstance(getattr(ds, "filename", None), str) else None
    return DamagedHeaderError(f"{keyword} holds an unreadable value ({err})", path)


def numbers_or_none(ds: pydicom.Dataset, keyword: str, warnings: list[str] | None = None) -> list[float] | None:
    """:func:`numbers`, with an unreadable value taken as absent (and said in ``warnings``): for elements
    that only sort or label (SeriesNumber, InstanceNumber), where a garbled value must not cost the image."""
    try:
        values = numbers(ds, keyword)
    except DamagedHeaderError:
        values = [math.nan]
    if values is not None and not all(math.isfinite(v) for v in values):
        message = f"{Path(str(getattr(ds, 'filename', '') or '?')).name}: {keyword} ignored (unreadable value)"
        log.warning("%s", message)
        if warnings is not None:
            warnings.append(message)
        return None
    return values


def number(ds: pydicom.Dataset, keyword: str, default: float) -> float:
    """The first value of a numeric string element, or ``default`` when absent or empty."""
    values = numbers(ds, keyword)
    return values[0] if values else default


def uint(ds: pydicom.Dataset, keyword: str, default: int) -> int:
    """An unsigned short element (Rows, BitsStored, ...) read from its raw bytes when still undecoded.

    Falls back to pydicom's conversion for big-endian files or already converted elements.
    """
    raw = ds._dict.get(_tag(keyword))  # noqa: SLF001 - raw access is the point
    if raw is None:
        return default
    if isinstance(raw, pydicom.dataelem.RawDataElement) and isinstance(raw.value, bytes) and \
            raw.VR in (None, "US") and len(raw.value) >= 2 and ds.original_encoding[1] is not False:
        return int.from_bytes(raw.value[:2], "little")
    try:
        value = ds.get(keyword)
        return default if value in (None, "") else int(value)
    except Exception as err:  # pydicom raises many types on garbled values (and VRs)
        raise _damaged(ds, keyword, err) from err


def text(ds: pydicom.Dataset, keyword: str) -> str:
    """A string element stripped of padding; ASCII values (UIDs, codes) are read straight from raw bytes."""
    tag = _tag(keyword)
    raw = ds._dict.get(tag)  # noqa: SLF001 - raw access is the point
    if raw is None:
        return ""
    if isinstance(raw, pydicom.dataelem.RawDataElement) and isinstance(raw.value, bytes) and \
            (raw.VR or pydicom.datadict.dictionary_VR(tag)) in _ASCII_VRS and raw.value.isascii() and \
            b"\\" not in raw.value:
        return raw.value.decode("ascii").strip(" \x00")
    try:
        value = ds.get(keyword, "")
    except Exception:  # a garbled value or VR: shown as its raw bytes, so a label never fails a scan
        log.warning("%s: %s is unreadable; shown as raw text", getattr(ds, "filename", "?"), keyword)
        value = raw.value.decode("latin-1").strip("\x00") if isinstance(raw.value, bytes) else ""
    return "" if value is None else str(value).strip()


def synthetic_statement(ds: pydicom.Dataset) -> str:
    """The DerivationDescription of a DERIVED image saying it is synthetic (beginning "SYNTHETIC", as radview
    synthesize writes it), else "" (acquired data): becomes ``Volume.synthetic``."""
    statement = text(ds, "DerivationDescription")
    image_type = ds.get("ImageType") or [""]
    derived = str(image_type if isinstance(image_type, str) else image_type[0]).upper() == "DERIVED"
    return statement if derived and statement.upper().startswith(SYNTHETIC_PREFIX) else ""


@dataclass
class DicomHeader:
    """One DICOM file's parsed header; ``dataset`` keeps the pixel data deferred on disk."""

    path: Path
    dataset: pydicom.Dataset

    @property
    def sop_class(self) -> str:
        uid = text(self.dataset, "SOPClassUID")
        if not uid and getattr(self.dataset, "file_meta", None) is not None:
            uid = text(self.dataset.file_meta, "MediaStorageSOPClassUID")
        return uid

    @property
    def has_pixels(self) -> bool:
        return any(t in self.dataset for t in PIXEL_DATA_TAGS)

    @property
    def n_frames(self) -> int:
        return int(number(self.dataset, "NumberOfFrames", 1) or 1)


def read_header(path: Path) -> DicomHeader:
    """Parse one file's header (pixel data deferred). Raises CorruptFileError if it is not DICOM."""
    ds = read_header_fast(path, DEFER_SIZE)  # pydicom's dataset, made faster; None: pydicom reads the file
    if ds is None:
        ds = _read_with_pydicom(path)
    if not any(t.group > 0x0002 and pydicom.datadict.dictionary_has_tag(t) for t in ds.keys()):
        raise CorruptFileError("DICOM file holds no readable data elements (truncated, damaged or empty)", path)
    header = DicomHeader(Path(path), ds)
    _check_complete(header)
    return header


def _read_with_pydicom(path: Path) -> pydicom.Dataset:
    """pydicom's general reader, for files :func:`read_header_fast` leaves to it (or finds damaged)."""
    try:
        return pydicom.dcmread(path, defer_size=DEFER_SIZE)
    except InvalidDicomError:
        return _read_without_preamble(path)
    except Exception as err:  # pydicom raises many types on truncated headers
        raise CorruptFileError(f"DICOM header cannot be parsed ({err})", path) from err


def _check_complete(h: DicomHeader) -> None:
    """Raise CorruptFileError for a file cut short: an image object that ends before or inside its pixels.

    (Offsets in a deflated file refer to the inflated stream, so only the missing-pixels test applies.)
    """
    raw = h.dataset._dict.get(PIXEL_DATA_TAGS[0])  # noqa: SLF001 - the deferred element keeps offset/length
    if raw is None:
        if "Image Storage" in describe_non_image(h) and not any(t in h.dataset for t in PIXEL_DATA_TAGS[1:]):
            raise CorruptFileError("file ends before the pixel data (truncated)", h.path)
        return
    meta = getattr(h.dataset, "file_meta", None)
    deflated = meta is not None and meta.get("TransferSyntaxUID") == pydicom.uid.DeflatedExplicitVRLittleEndian
    if (not deflated and isinstance(raw, pydicom.dataelem.RawDataElement) and raw.value is None
            and raw.length != 0xFFFFFFFF and raw.value_tell + raw.length > os.path.getsize(h.path)):
        raise CorruptFileError(f"file ends inside the pixel data (truncated: {raw.length} bytes declared, "
                               f"{os.path.getsize(h.path) - raw.value_tell} present)", h.path)


def _read_without_preamble(path: Path) -> pydicom.Dataset:
    """Files without the 128-byte preamble / file meta (e.g. pydicom's no_meta.dcm)."""
    try:
        ds = pydicom.dcmread(path, defer_size=DEFER_SIZE, force=True)
    except Exception as err:
        raise CorruptFileError(f"not a readable DICOM file ({err})", path) from err
    if "SOPClassUID" not in ds and not any(t in ds for t in PIXEL_DATA_TAGS):
        raise CorruptFileError("not a DICOM file", path)
    if "TransferSyntaxUID" not in ds.file_meta:  # record the encoding pydicom detected, for the decoders
        implicit, little = ds.original_encoding
        ds.file_meta.TransferSyntaxUID = (
            ImplicitVRLittleEndian if implicit else ExplicitVRLittleEndian if little else ExplicitVRBigEndian
        )
    return ds


#: File name extensions that say a file is DICOM: such a file that cannot be read is damaged, never skipped.
DICOM_SUFFIXES = (".dcm", ".dicom", ".ima")


def is_probably_dicom(path: Path) -> bool:
    """True if the file has the DICM magic at byte 128 or a DICOM-ish name (no extension, .dcm)."""
    try:
        with open(path, "rb") as f:
            f.seek(128)
            if f.read(4) == b"DICM":
                return True
    except OSError:
        return False
    return path.suffix.lower() in (*DICOM_SUFFIXES, "")


def iter_files(path: Path) -> list[Path]:
    """All regular files under ``path`` (recursive, sorted, hidden files skipped)."""
    if path.is_file():
        return [path]
    out = []
    for root, dirs, files in os.walk(path):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        out.extend(Path(root) / f for f in sorted(files) if not f.startswith("."))
    return out


def series_key(ds: pydicom.Dataset) -> str:
    """SeriesInstanceUID, or a deterministic stand-in when the file leaves it empty.

    Archives contain files whose Study/Series UIDs are empty (see ../shared/data README). Such files
    are grouped by what identifies a series in practice: study date/time, series number and time,
    description, frame of reference, orientation and matrix size. The key is turned into a stable
    UID-like string ("2.25.<int>") so scan() and load_volume() agree on it.
    """
    uid = text(ds, "SeriesInstanceUID")
    if uid:
        return uid
    parts = [
        text(ds, k)
        for k in (
            "StudyInstanceUID", "StudyDate", "StudyTime", "SeriesNumber", "SeriesDate", "SeriesTime",
            "SeriesDescription", "Modality", "FrameOfReferenceUID", "Rows", "Columns",
        )
    ]
    iop = ds.get("ImageOrientationPatient")
    parts.append("" if iop is None else ",".join(f"{float(v):.4f}" for v in iop))
    digest = hashlib.sha1("|".join(parts).encode()).hexdigest()
    return f"2.25.{int(digest[:30], 16)}"


def group_series(headers: Iterable[DicomHeader]) -> list[SeriesInfo]:
    """Group image headers into series (ordered by series number, then description)."""
    groups: dict[str, list[DicomHeader]] = {}
    for h in headers:
        groups.setdefault(series_key(h.dataset), []).append(h)
    series = []
    for uid, hs in groups.items():
        ds = hs[0].dataset
        number = numbers_or_none(ds, "SeriesNumber")
        series.append(
            SeriesInfo(
                series_uid=uid,
                modality=text(ds, "Modality") or "OT",
                description=text(ds, "SeriesDescription") or text(ds, "ProtocolName"),
                n_files=len(hs),
                patient_name=text(ds, "PatientName"),
                patient_id=text(ds, "PatientID"),
                study_uid=text(ds, "StudyInstanceUID"),
                study_description=text(ds, "StudyDescription"),
                study_date=text(ds, "StudyDate"),
                series_number=None if number is None else int(number[0]),
                files=[h.path for h in hs],
                headers=hs,
            )
        )
    series.sort(key=lambda s: (s.series_number if s.series_number is not None else 1 << 30, s.description))
    return series


@contextmanager
def _no_cyclic_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector: parsing hundreds of headers creates many objects that are
    all kept, and repeated full collections over them cost about a fifth of the parse time."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def scan_dicom(
    files: list[Path],
    *,
    check: Callable[[DicomHeader], None] | None = None,
    damaged: list[CorruptFileError] | None = None,
) -> tuple[list[SeriesInfo], list[DicomHeader]]:
    """Parse the headers of ``files``; returns (image series, non-image objects).

    ``check(header)`` vets each file with pixel data (raising CorruptFileError for a damaged one). Files
    that are not DICOM are skipped with a debug log; a file that claims to be DICOM (magic bytes) but
    cannot be parsed or fails ``check`` raises CorruptFileError, or, when a ``damaged`` list is given and
    there are several files, is appended to it and left out.
    """
    images, others = [], []
    with _no_cyclic_gc():
        for f in files:
            try:
                _scan_one(f, len(files), images, others, check)
            except CorruptFileError as err:
                if damaged is None or len(files) == 1:
                    raise
                damaged.append(err)
    return group_series(images), others


def _scan_one(f: Path, n_files: int, images: list[DicomHeader], others: list[DicomHeader],
              check: Callable[[DicomHeader], None] | None = None) -> None:
    """Parse one file into ``images`` or ``others``; non-DICOM files are skipped (see scan_dicom)."""
    try:
        h = read_header(f)
    except CorruptFileError:
        if (is_probably_dicom(f) and n_files == 1) or f.suffix.lower() in DICOM_SUFFIXES:
            raise
        with open(f, "rb") as fh:
            fh.seek(128)
            if fh.read(4) == b"DICM":
                raise
        log.debug("skipping non-DICOM file %s", f)
        return
    if check is not None and h.has_pixels:  # parsed as DICOM: a failed check is a damaged file, never skipped
        check(h)
    (images if h.has_pixels else others).append(h)


def describe_non_image(h: DicomHeader) -> str:
    """'RT Structure Set (1.2.840...)' for a DICOM object without pixels."""
    uid = h.sop_class
    name = SOP_CLASS_NAMES.get(uid) or getattr(pydicom.uid.UID(uid), "name", "") or "unknown SOP class"
    return f"{name} ({uid})" if uid else name


#: What an object without pixel data is, and what to open instead, by SOP class UID prefix.
NON_IMAGE_HINTS = (
    ("1.2.840.10008.5.1.4.1.1.481.3", "contours, not an image: open the image series they were drawn on "
                                      "(radview does not read RT structures)"),
    ("1.2.840.10008.5.1.4.1.1.481.", "a radiotherapy plan or record: it holds no image"),
    ("1.2.840.10008.5.1.4.1.1.88.", "a structured report (text and measurements): it holds no image"),
    ("1.2.840.10008.5.1.4.1.1.9.", "a waveform (ECG, ...): it holds no image"),
    ("1.2.840.10008.1.3.10", "the index of a DICOM disc: open the folder that holds it"),
)


def non_image_hint(h: DicomHeader) -> str:
    """What a DICOM object without pixel data is and what to open instead ('it holds no image' by default)."""
    uid = h.sop_class
    return next((hint for prefix, hint in NON_IMAGE_HINTS if uid.startswith(prefix)), "it holds no image")


def require_images(series: list[SeriesInfo], others: list[DicomHeader], path: Path) -> None:
    """Raise NotAnImageError when ``path`` held only DICOM objects without pixel data, saying what they are."""
    if not series and others:
        kinds = sorted({f"{describe_non_image(h)}: {non_image_hint(h)}" for h in others})
        raise NotAnImageError(f"DICOM object without pixel data: {'; '.join(kinds)}", path)
