"""DICOM Segmentation (SEG) export and import via highdicom: label map <-> BINARY SEG on a CT/MR series.

Source series whose data sets leave the SOP Class / SOP Instance / Study / Series Instance UIDs
empty (some archives do; see ../shared/data/README.md) are handled on in-memory copies: SOP Class
and SOP Instance UIDs come from the file meta header; a missing Series Instance UID becomes the
same deterministic stand-in the reader uses to group the files
(:func:`viewer.core.io.dicom_headers.series_key`), and a missing Study Instance UID a deterministic
UID derived from the study's identifying attributes. The SEG therefore references the same UIDs
every time it is written from those files, and its references are consistent with each other.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from copy import deepcopy
from dataclasses import dataclass
from os import PathLike
from pathlib import Path

import numpy as np
import pydicom
from pydicom.uid import generate_uid
from pydicom.valuerep import DSfloat

from viewer import __version__
from viewer.core.errors import CorruptFileError, EmptyInputError, LabelMapError, UnsupportedFormatError
from viewer.core.io.dicom_geometry import SeriesGeometry, series_geometry
from viewer.core.io.dicom_headers import DicomHeader, series_key
from viewer.core.io.labelmap import as_label_array
from viewer.core.resample import resample_to
from viewer.core.snomed import codes_for_name
from viewer.core.volume import Volume

log = logging.getLogger(__name__)

SEG_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.66.4"
#: Label Map Segmentation Storage: one frame per plane whose values are segment numbers.
LABELMAP_SEG_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.66.7"
ALGORITHM_TYPES = ("AUTOMATIC", "SEMIAUTOMATIC", "MANUAL")
#: Label provenance kinds (viewer.core.labels: who wrote a label) -> SEG algorithm type.
_KIND_TO_TYPE = {"human": "MANUAL", "model": "AUTOMATIC"}
#: Tolerance (in voxels) for a SEG frame to count as lying on a grid plane.
_GRID_TOLERANCE = 0.05


@dataclass(frozen=True)
class SegmentProvenance:
    """Who or what wrote one segment: SEG algorithm type and, for algorithms, name and version."""

    algorithm_type: str = "MANUAL"
    algorithm_name: str | None = None
    algorithm_version: str | None = None


ProvenanceArg = str | SegmentProvenance | Mapping[int, "str | SegmentProvenance"] | None


# --------------------------------------------------------------------------- source series
def _study_uid_fallback(ds: pydicom.Dataset) -> str:
    parts = [
        str(ds.get(k, "") or "")
        for k in ("PatientID", "PatientName", "StudyDate", "StudyTime", "AccessionNumber", "StudyID")
    ]
    return generate_uid(entropy_srcs=["radview-study", *parts])


def complete_uids(ds: pydicom.Dataset, path: str | PathLike | None = None) -> pydicom.Dataset:
    """A copy of ``ds`` whose empty SOP Class/Instance, Study and Series Instance UIDs are filled.

    SOP Class/Instance come from the file meta header (CorruptFileError if neither place has them);
    Series and Study UIDs fall back to deterministic UIDs (see the module docstring).
    """
    ds = deepcopy(ds)
    meta = getattr(ds, "file_meta", None)
    for keyword, meta_keyword in (
        ("SOPClassUID", "MediaStorageSOPClassUID"),
        ("SOPInstanceUID", "MediaStorageSOPInstanceUID"),
    ):
        if not str(ds.get(keyword, "") or "").strip():
            value = str(meta.get(meta_keyword, "") or "").strip() if meta is not None else ""
            if not value:
                raise CorruptFileError(f"{keyword} is empty in the data set and the file meta", path)
            setattr(ds, keyword, value)
    if not str(ds.get("SeriesInstanceUID", "") or "").strip():
        ds.SeriesInstanceUID = series_key(ds)
    if not str(ds.get("StudyInstanceUID", "") or "").strip():
        ds.StudyInstanceUID = _study_uid_fallback(ds)
    return ds


#: Type 2 attributes of the Patient and General Study modules a SEG copies from its source images. Research and
#: de-identified series often lack some; DICOM lets a Type 2 attribute be present with no value, so the SEG gets
#: them empty rather than failing.
TYPE2_COPIED = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyDate", "StudyTime",
                "ReferringPhysicianName", "StudyID", "AccessionNumber")


def fill_type2(ds: pydicom.Dataset) -> list[str]:
    """Add every attribute of :data:`TYPE2_COPIED` that ``ds`` lacks, empty (in place); returns their keywords."""
    missing = [k for k in TYPE2_COPIED if k not in ds]
    for keyword in missing:
        setattr(ds, keyword, "")
    return missing


SourceArg = str | PathLike | Sequence[str | PathLike] | Sequence[pydicom.Dataset]


def _source_geometry(source: SourceArg, series_uid: str | None) -> SeriesGeometry:
    """The geometry (headers sorted as the reader sorts slices, pixel data not read) of the source series."""
    if isinstance(source, (str, PathLike)) or not any(isinstance(s, pydicom.Dataset) for s in source):
        from viewer.core.io import open_series

        return open_series(source, series_uid=series_uid).geometry
    return series_geometry([DicomHeader(Path(str(getattr(ds, "filename", "") or "<dataset>")), ds) for ds in source])


def source_series(source: SourceArg, series_uid: str | None = None) -> list[pydicom.Dataset]:
    """The source images ordered as :func:`viewer.core.io.load_volume` orders slices (z index; a missing slice
    of the grid has none, see :func:`_source_geometry`).

    ``source``: a DICOM folder or file, a list of files (``series_uid`` picks one series when they
    hold several), or a list of pydicom data sets of one single-frame series. The data sets
    returned are copies with their UIDs completed (:func:`complete_uids`) and the Type 2 attributes
    the SEG copies present, empty where the source lacks them (:func:`fill_type2`).
    """
    return _datasets(_source_geometry(source, series_uid))


def _datasets(geometry: SeriesGeometry) -> list[pydicom.Dataset]:
    """:func:`source_series` of the series with ``geometry``."""
    headers = [s.header for s in geometry.slices]
    if not headers:
        raise EmptyInputError("no DICOM source images given for the SEG")
    if any(h.n_frames > 1 for h in headers):
        raise UnsupportedFormatError("multi-frame source images are not supported for SEG export", headers[0].path)
    datasets = [complete_uids(h.dataset, h.path) for h in headers]
    if len({ds.SeriesInstanceUID for ds in datasets}) > 1:
        raise UnsupportedFormatError("the source data sets belong to several series; give the images of one")
    missing = sorted({k for ds in datasets for k in fill_type2(ds)})
    if missing:
        log.info("source series lacks Type 2 %s: written empty in the SEG", ", ".join(missing))
    return datasets


# --------------------------------------------------------------------------- writing
def _provenance(algorithm: ProvenanceArg, number: int, name: str | None, version: str | None) -> SegmentProvenance:
    value = algorithm.get(number, "MANUAL") if isinstance(algorithm, Mapping) else (algorithm or "MANUAL")
    if isinstance(value, Mapping):
        value = SegmentProvenance(
            algorithm_type=str(value.get("algorithm_type") or _KIND_TO_TYPE.get(str(value.get("kind")), "MANUAL")),
            algorithm_name=value.get("algorithm_name") or value.get("name"),
            algorithm_version=value.get("algorithm_version") or value.get("version"),
        )
    if isinstance(value, str):
        value = SegmentProvenance(_KIND_TO_TYPE.get(value, value.upper()))
    if value.algorithm_type not in ALGORITHM_TYPES:
        raise ValueError(
            f"segment {number}: algorithm type must be one of {ALGORITHM_TYPES}, got {value.algorithm_type!r}"
        )
    if value.algorithm_type != "MANUAL" and value.algorithm_name is None:
        value = SegmentProvenance(value.algorithm_type, name or "radview", version or __version__)
    return value


def _segment_description(number: int, label: str, prov: SegmentProvenance, rgb: tuple[int, int, int] | None):
    import highdicom as hd
    from pydicom.sr.codedict import codes
    from pydicom.sr.coding import Code

    coded = codes_for_name(label)
    algorithm_id = None
    if prov.algorithm_type != "MANUAL":
        algorithm_id = hd.AlgorithmIdentificationSequence(
            name=prov.algorithm_name,
            family=codes.DCM.ArtificialIntelligence,
            version=prov.algorithm_version or "unknown",
        )
    desc = hd.seg.SegmentDescription(
        segment_number=number,
        segment_label=label[:64],
        segmented_property_category=Code(coded.category[0], "SCT", coded.category[1]),
        segmented_property_type=Code(coded.type[0], "SCT", coded.type[1]),
        algorithm_type=prov.algorithm_type,
        algorithm_identification=algorithm_id,
        tracking_uid=generate_uid(),
        tracking_id=label[:64],
        display_color=hd.color.CIELabColor.from_rgb(*rgb[:3]) if rgb is not None else None,
        anatomic_regions=[Code(coded.region[0], "SCT", coded.region[1])] if coded.region else None,
    )
    if coded.laterality is not None:
        modifier = hd.sr.CodedConcept(coded.laterality[0], "SCT", coded.laterality[1])
        # laterality qualifies the organ a lesion lies in, else the segmented structure itself
        # (both nested in their code item, as the Segment Description macro defines them)
        if coded.region is not None:
            desc.AnatomicRegionSequence[0].AnatomicRegionModifierSequence = [modifier]
        else:
            desc.SegmentedPropertyTypeCodeSequence[0].SegmentedPropertyTypeModifierCodeSequence = [modifier]
    return desc


def unreferenced_voxels(labels: np.ndarray, missing: list[int]) -> int:
    """Labelled voxels of ``labels`` (z, y, x) on the ``missing`` slices of its series (SeriesGeometry.missing,
    a DICOM volume's ``meta["missing_slices"]``): a DICOM SEG leaves them out, having no image there to reference."""
    return int(np.count_nonzero(labels[missing])) if missing else 0


def write_dicom_seg(
    labels: np.ndarray,
    source: SourceArg,
    out_path: str | PathLike,
    *,
    names: Mapping[int, str] | None = None,
    colors: Mapping[int, tuple[int, int, int]] | None = None,
    algorithm: ProvenanceArg = "MANUAL",
    algorithm_name: str | None = None,
    algorithm_version: str | None = None,
    series_description: str = "Segmentation",
    content_creator: str | None = None,
    series_number: int = 300,
    series_uid: str | None = None,
) -> Path:
    """Write ``labels`` (z, y, x, on the source series' grid) as a BINARY DICOM SEG; returns the path.

    Args:
        labels: integer label map ordered as :func:`viewer.core.io.load_volume` orders the series.
        source: DICOM folder/file, list of files, or list of data sets of the referenced series
            (``series_uid`` picks one when the files hold several).
        names: label id -> segment label; ids without a name are written as ``label_<id>``.
        algorithm: SEG algorithm type for all segments ('MANUAL', 'SEMIAUTOMATIC', 'AUTOMATIC', or
            provenance kind 'human' / 'model'), or a per-label mapping of those, of
            :class:`SegmentProvenance` or of dicts with ``algorithm_type``/``kind``, ``name``, ``version``.
        algorithm_name, algorithm_version: defaults for non-manual segments (e.g. the AI model).
        colors: label id -> (r, g, b) 0-255, written as the recommended display colour.
        series_description, content_creator, series_number: written into the SEG.

    Segments are numbered 1..max label (segment number == label value, so a read gives the
    identical map back); each carries SNOMED CT category/type codes from its name
    (:func:`viewer.core.snomed.codes_for_name`) and laterality as a type modifier. Empty frames
    are omitted.
    """
    import highdicom as hd

    out_path = Path(out_path)
    geometry = _source_geometry(source, series_uid)
    datasets = _datasets(geometry)
    ref0 = datasets[0]
    expected = (geometry.depth, int(ref0.Rows), int(ref0.Columns))
    if labels.shape != expected:
        raise LabelMapError(f"label map shape {labels.shape} does not match the series grid {expected} (z, y, x)")
    labels = as_label_array(labels)
    if geometry.missing:  # a SEG frame references an acquired image: none exists for a missing slice
        lost = unreferenced_voxels(labels, geometry.missing)
        if lost:
            log.warning("%d labelled voxel(s) on the series' missing slice(s) are not in the SEG (no image there "
                        "to reference)", lost)
        labels = labels[geometry.grid_index]
    n_segments = int(labels.max()) if labels.size else 0
    if n_segments == 0:
        raise LabelMapError("the label map is empty: nothing to export")
    names, colors = dict(names or {}), dict(colors or {})
    descriptions = [
        _segment_description(
            n,
            names.get(n) or f"label_{n}",
            _provenance(algorithm, n, algorithm_name, algorithm_version),
            colors.get(n),
        )
        for n in range(1, n_segments + 1)
    ]
    seg = hd.seg.Segmentation(
        source_images=datasets,
        pixel_array=labels,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions,
        series_instance_uid=generate_uid(),
        series_number=series_number,
        sop_instance_uid=generate_uid(),
        instance_number=1,
        manufacturer="radview",
        manufacturer_model_name="radview",
        software_versions=__version__,
        device_serial_number="0",
        content_description=series_description[:64],
        content_label="SEGMENTATION",
        content_creator_name=content_creator,
        omit_empty_frames=True,
    )
    if len(geometry.slices) > 1:  # the spacing the reader uses: from the slices' positions, as a reader of the SEG
        # places its frames by; a source's own SpacingBetweenSlices can disagree (highdicom copies it)
        measures = seg.SharedFunctionalGroupsSequence[0].PixelMeasuresSequence[0]
        measures.SpacingBetweenSlices = DSfloat(geometry.spacing[2], auto_format=True)
    seg.SeriesDescription = series_description[:64]
    out_path.parent.mkdir(parents=True, exist_ok=True)
    seg.save_as(out_path)
    log.info("wrote SEG %s: %d segments, %d frames", out_path, n_segments, int(seg.NumberOfFrames))
    return out_path


# --------------------------------------------------------------------------- reading
def _code(item) -> dict:
    return {"value": str(item.CodeValue), "scheme": str(item.CodingSchemeDesignator), "meaning": str(item.CodeMeaning)}


def _segments_info(ds: pydicom.Dataset) -> dict[int, dict]:
    out = {}
    for item in ds.SegmentSequence:
        algo = item.get("SegmentationAlgorithmIdentificationSequence")
        region = item.AnatomicRegionSequence[0] if "AnatomicRegionSequence" in item else None
        modifier = item.SegmentedPropertyTypeCodeSequence[0].get("SegmentedPropertyTypeModifierCodeSequence")
        if not modifier and region is not None:
            modifier = region.get("AnatomicRegionModifierSequence")
        out[int(item.SegmentNumber)] = {
            "label": str(item.get("SegmentLabel", "")),
            "algorithm_type": str(item.get("SegmentAlgorithmType", "")),
            "algorithm_name": str(item.get("SegmentAlgorithmName", "")) or None,
            "algorithm_version": str(algo[0].get("AlgorithmVersion", "")) if algo else None,
            "category": _code(item.SegmentedPropertyCategoryCodeSequence[0]),
            "type": _code(item.SegmentedPropertyTypeCodeSequence[0]),
            "laterality": _code(modifier[0]) if modifier else None,
            "region": _code(region) if region is not None else None,
            "color": _display_rgb(item),
        }
    return out


def _display_rgb(item: pydicom.Dataset) -> tuple[int, int, int] | None:
    """The segment's recommended display colour as sRGB 0-255, if it has one."""
    import highdicom as hd

    lab = item.get("RecommendedDisplayCIELabValue")
    return tuple(int(v) for v in hd.color.CIELabColor.from_dicom_value(lab).to_rgb()) if lab else None


def _seg_grid(volume, description: str) -> Volume:
    """A highdicom volume (array: slices, rows, columns) as a label Volume whose slices are stacked along the
    normal of its rows and columns (row x column direction), as radview's readers stack slices."""
    affine = np.asarray(volume.affine, float)
    array = volume.array
    steps = affine[:3, :3]  # columns: world step of one slice, one row, one column
    spacing = np.linalg.norm(steps, axis=0)
    across, down = steps[:, 2] / spacing[2], steps[:, 1] / spacing[1]
    origin, normal, step = affine[:3, 3], np.cross(across, down), steps[:, 0]
    if array.shape[0] > 1 and step @ normal < 0:
        origin = origin + step * (array.shape[0] - 1)
        array, step = array[::-1], -step
    through = step / spacing[0] if array.shape[0] > 1 else normal  # the stacking direction, as stored
    return Volume(np.ascontiguousarray(array), (spacing[2], spacing[1], spacing[0]), tuple(origin),
                  np.column_stack([across, down, through]), modality="SEG", units="label", description=description)


def _paste(labels: Volume, reference: Volume) -> tuple[Volume, int] | None:
    """``labels`` copied voxel for voxel onto ``reference``'s grid when each of its voxels is a voxel of that grid
    (same spacing and axes, possibly flipped; e.g. a SEG storing only some slices of its series): (labels on the
    reference grid, labelled voxels outside it). None when the grids do not line up."""
    m = np.linalg.inv(reference.index_to_world_matrix) @ labels.index_to_world_matrix
    signs = np.rint(np.diag(m[:3, :3]))
    offset = np.rint(m[:3, 3])
    if (not np.allclose(m[:3, :3], np.diag(signs), atol=1e-3) or np.any(signs == 0)
            or np.abs(m[:3, 3] - offset).max() > _GRID_TOLERANCE):
        return None
    out = np.zeros(reference.array.shape, labels.array.dtype)
    target, source = [], []
    for axis in (2, 1, 0):  # index order (x, y, z) -> array axes (z, y, x)
        index = signs[axis] * np.arange(labels.size[axis]) + offset[axis]
        inside = np.flatnonzero((index >= 0) & (index < reference.size[axis]))
        if inside.size == 0:
            return reference.with_array(out), int(np.count_nonzero(labels.array))
        first, last = (int(signs[axis] * i + offset[axis]) for i in (inside[0], inside[-1]))
        source.append(slice(inside[0], inside[-1] + 1))
        target.append(slice(first, last + 1) if signs[axis] > 0 else slice(first, last - 1 if last else None, -1))
    kept = labels.array[tuple(source)]
    out[tuple(target)] = kept
    return reference.with_array(out), int(np.count_nonzero(labels.array)) - int(np.count_nonzero(kept))


def _combined(seg, seg_type: str, numbers: list[int]) -> tuple[object, int]:
    """(highdicom volume of segment numbers, voxels in several segments); where segments overlap the higher
    number is kept. FRACTIONAL segments are thresholded at half their maximum."""
    if seg_type == "LABELMAP":
        return seg.get_volume(combine_segments=True), 0
    if seg_type == "BINARY":
        try:
            return seg.get_volume(combine_segments=True), 0
        except RuntimeError:  # overlapping segments: combined one at a time below
            pass
    combined, counts = None, None
    for number in numbers:  # each volume spans every frame of the SEG, whichever segments are asked for
        part = seg.get_volume(segment_numbers=[number])
        member = part.array[..., 0] > (0.5 if seg_type == "FRACTIONAL" else 0)
        if combined is None:
            combined = part.with_array(np.zeros(member.shape, np.uint8 if max(numbers) <= 255 else np.uint16))
            counts = np.zeros(member.shape, np.uint8)
        combined.array[member] = number
        counts += member
    return combined, int(np.count_nonzero(counts > 1))


def _frames(ds: pydicom.Dataset, path: Path) -> tuple[str, dict[int, dict], object, int]:
    """(segmentation type, segments, highdicom volume of segment numbers, voxels in several segments) of a SEG."""
    import highdicom as hd

    try:
        seg = hd.seg.Segmentation.from_dataset(ds, copy=False)
        seg_type = seg.segmentation_type.value
        segments = _segments_info(seg)
        return seg_type, segments, *_combined(seg, seg_type, sorted(n for n in segments if n != 0))
    except (AttributeError, KeyError, ValueError, RuntimeError) as err:
        raise LabelMapError(f"cannot read the SEG's frames as a volume ({err})", path) from err


def _file_frames(path: Path) -> tuple[str, dict[int, dict], object, int]:
    """:func:`_frames` of the SEG file at ``path``, in a decoder process (its frames are compressed)."""
    return _frames(pydicom.dcmread(path), path)


def read_dicom_seg(path: str | PathLike, reference: Volume | None = None) -> tuple[Volume, dict[int, str], dict]:
    """Read a DICOM SEG (with highdicom) into a label map: (labels Volume, {segment number: label}, info).

    BINARY, FRACTIONAL (thresholded at half the maximum) and LABELMAP segmentations are read;
    segment numbers become label values. Without ``reference`` the labels lie on the SEG's own grid (its
    frame planes stacked along their normal; slices it omits as empty are zeros). With ``reference`` (e.g.
    the loaded source series) frames on the reference's voxels are copied onto them exactly; a SEG on
    another grid is resampled by world geometry (nearest neighbour). Overlapping segments: the higher
    segment number wins (noted in the volume's warnings). ``info`` holds per-segment codes and
    algorithm provenance plus the referenced series / instance UIDs.
    """
    from viewer.core.io.decoder_process import run_isolated
    from viewer.core.io.dicom_decode import transfer_syntax

    path = Path(path)
    try:
        ds = pydicom.dcmread(path)
    except (pydicom.errors.InvalidDicomError, OSError) as err:
        raise CorruptFileError(f"not a readable DICOM file ({err})", path) from err
    if str(ds.get("SOPClassUID", "")) not in (SEG_SOP_CLASS, LABELMAP_SEG_SOP_CLASS):
        raise UnsupportedFormatError("not a DICOM Segmentation object", path)
    description = str(ds.get("SeriesDescription", path.name))
    syntax = pydicom.uid.UID(transfer_syntax(ds))
    if syntax.is_transfer_syntax and syntax.is_compressed:  # native decoders: run in a decoder process
        seg_type, segments, volume, overlaps = run_isolated(path, _file_frames, path)
    else:
        seg_type, segments, volume, overlaps = _frames(ds, path)
    labels = _seg_grid(volume, description)
    labels = labels.with_array(as_label_array(labels.array, path))
    outside = 0
    if reference is not None and not labels.same_grid(reference):
        pasted = _paste(labels, reference)
        labels, outside = pasted if pasted is not None else (resample_to(labels, reference, nearest=True), 0)
        labels = labels.with_array(labels.array, modality="SEG", units="label", description=description)
    names = {n: s["label"] for n, s in segments.items() if n != 0}  # LABELMAP SEGs may describe background
    labels.meta = {"files": [str(path)], "format": "dicom-seg", "names": names}
    if overlaps:
        labels.warnings.append(f"{overlaps} voxels belong to several segments; the higher number was kept")
    if outside:
        labels.warnings.append(f"{outside} labelled voxels lie outside the reference image")
    info = {
        "segments": segments,
        "segmentation_type": seg_type,
        "series_description": str(ds.get("SeriesDescription", "")),
        "series_instance_uid": str(ds.SeriesInstanceUID),
        "sop_instance_uid": str(ds.SOPInstanceUID),
        "content_creator": str(ds.get("ContentCreatorName", "") or "") or None,
        "referenced_series_uid": _referenced_series(ds),
        "referenced_instances": _referenced_instances(ds),
    }
    return labels, names, info


def _referenced_series(ds: pydicom.Dataset) -> str | None:
    ref = ds.get("ReferencedSeriesSequence")
    return str(ref[0].SeriesInstanceUID) if ref else None


def _referenced_instances(ds: pydicom.Dataset) -> list[str]:
    out = []
    for series in ds.get("ReferencedSeriesSequence", []):
        out += [str(item.ReferencedSOPInstanceUID) for item in series.get("ReferencedInstanceSequence", [])]
    return out
