"""Label map import: NIfTI/NRRD/MHA label files onto a reference grid, label names and colour tables."""

from __future__ import annotations

import json
import shlex
from os import PathLike
from pathlib import Path

import numpy as np

from viewer.core.errors import CorruptFileError, LabelMapError
from viewer.core.io.image_files import image_extension, read_image_file
from viewer.core.resample import resample_to
from viewer.core.volume import Volume


def label_dtype(max_label: int) -> np.dtype:
    """uint8 for labels up to 255, uint16 up to 65535 (the project's label map types)."""
    if max_label <= np.iinfo(np.uint8).max:
        return np.dtype(np.uint8)
    if max_label <= np.iinfo(np.uint16).max:
        return np.dtype(np.uint16)
    raise LabelMapError(f"label {max_label} exceeds 65535")


def as_label_array(array: np.ndarray, path: str | PathLike | None = None) -> np.ndarray:
    """``array`` as a uint8/uint16 label array; LabelMapError for negative or non-integer values."""
    if array.size == 0:
        return array.astype(np.uint8)
    if array.dtype.kind == "f":
        if not np.all(np.isfinite(array)) or np.any(array != np.round(array)):
            raise LabelMapError("voxel values are not integers: not a label map", path)
    elif array.dtype.kind not in "iub":
        raise LabelMapError(f"voxel type {array.dtype} is not a label type", path)
    lo, hi = array.min(), array.max()
    if lo < 0:
        raise LabelMapError(f"negative label value {lo}", path)
    try:
        dtype = label_dtype(int(hi))
    except LabelMapError as err:
        raise LabelMapError(err.problem, path) from err
    return array.astype(dtype, copy=array.dtype != dtype)


def load_labelmap(path: str | PathLike, reference: Volume | None = None) -> Volume:
    """Read a NIfTI/NRRD/MHA label map as a Volume with units 'label' (uint8, or uint16 past 255).

    With ``reference``, a label map on another grid is resampled by world geometry (nearest
    neighbour) onto the reference's voxels, so files stored with flipped axes or another origin land
    on the right voxels. Raises LabelMapError naming the file when values are not integer labels or
    the grid does not overlap the reference.
    """
    path = Path(path)
    vol = read_image_file(path)
    vol = vol.with_array(as_label_array(vol.array, path), modality="SEG", units="label")
    if reference is not None and not vol.same_grid(reference):
        before, meta = set(np.unique(vol.array).tolist()), {**vol.meta, "resampled_from": str(path)}
        vol = resample_to(vol, reference, nearest=True)
        vol.meta = meta
        vol.warnings = [f"resampled from {path.name} onto the reference grid (nearest neighbour)"]
        lost = sorted(before - set(np.unique(vol.array).tolist()))
        if lost:
            vol.warnings.append(f"labels {lost} lie outside the reference image (or are thinner than its voxels)")
    return vol


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as err:
        raise CorruptFileError(f"cannot read label table ({err})", path) from err


def _json_names(path: Path) -> dict[int, str]:
    """{id: name} from ``{"1": "liver"}``, ``{"labels": {...}}`` or ``[{"id": 1, "name": ...}]``."""
    try:
        data = json.loads(_read_text(path))
    except json.JSONDecodeError as err:
        raise LabelMapError(f"invalid JSON label table ({err})", path) from err
    if isinstance(data, dict) and isinstance(data.get("labels"), (dict, list)):
        data = data["labels"]
    try:
        if isinstance(data, list):
            items = [(d["id"] if "id" in d else d["value"], d.get("name") or d["label"]) for d in data]
        elif isinstance(data, dict):
            items = list(data.items())
        else:
            raise TypeError(type(data).__name__)
        names = {}
        for key, value in items:
            if isinstance(value, dict):  # {"1": {"name": "liver", ...}}
                value = value.get("name") or value["label"]
            names[int(key)] = str(value)
    except (KeyError, TypeError, ValueError) as err:
        raise LabelMapError(f"label table entries must map integer ids to names ({err})", path) from err
    return {k: v for k, v in sorted(names.items()) if k != 0}


def load_color_table(path: str | PathLike) -> dict[int, tuple[str, tuple[int, int, int, int]]]:
    """{id: (name, (r, g, b, a))} from a Slicer .ctbl / ITK-SNAP style text table ("id name r g b a").

    Lines starting with '#' are comments; ITK-SNAP's quoted names with spaces are kept whole. The
    background (id 0) is skipped.
    """
    path = Path(path)
    table = {}
    for n, line in enumerate(_read_text(path).splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            parts = shlex.split(line)
            ident = int(parts[0])
            name, numbers = _split_colour_line(parts)
        except ValueError as err:
            raise LabelMapError(f"line {n} is not 'id name r g b a': {line!r}", path) from err
        if ident != 0:
            table[ident] = (name, numbers)
    return table


def _split_colour_line(parts: list[str]) -> tuple[str, tuple[int, int, int, int]]:
    """(name, rgba) from a Slicer line ``id name r g b a`` or ITK-SNAP line ``id r g b a vis mesh "name"``."""
    rest = parts[1:]
    if len(rest) >= 7 and all(_is_number(p) for p in rest[:6]):  # ITK-SNAP: IDX R G B A VIS MSH LABEL
        r, g, b = (int(float(v)) for v in rest[:3])
        alpha = int(round(float(rest[3]) * 255))
        return " ".join(rest[6:]), (r, g, b, alpha)
    if len(rest) < 4:
        raise ValueError("too few fields")
    colour = [int(float(v)) for v in rest[-4:]] if len(rest) >= 5 else [int(float(v)) for v in rest[-3:]] + [255]
    name_parts = rest[:-4] if len(rest) >= 5 else rest[:-3]
    if not name_parts:
        raise ValueError("no name")
    return " ".join(name_parts), tuple(colour)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def load_label_names(path: str | PathLike) -> dict[int, str]:
    """{label id: name} from a JSON table (TotalSegmentator style ``{"1": "spleen"}`` and variants)
    or a Slicer/ITK-SNAP colour table (.ctbl, .txt, .lut)."""
    return _read_table(Path(path))[0]


# --------------------------------------------------------------------------- export
#: Label map file formats written by :func:`save_labelmap` (DICOM SEG: :func:`export_segmentation`).
LABEL_FILE_EXTENSIONS = (".nii.gz", ".nii", ".nrrd", ".mha")


def names_path_for(labels_path: str | PathLike) -> Path:
    """The ``{id: name}`` JSON read beside a label file: ``labels.nii.gz`` -> ``labels.json``."""
    path = Path(labels_path)
    return Path(str(path).removesuffix(".gz")).with_suffix(".json")


#: Colour tables looked for beside a label file when it has no JSON names (Slicer, ITK-SNAP, FreeSurfer).
COLOR_TABLE_SUFFIXES = (".ctbl", ".txt", ".lut")


def _read_table(path: Path) -> tuple[dict[int, str], dict[int, tuple[int, int, int]]]:
    """({id: name}, {id: (r, g, b)}) from a JSON names table (no colours) or a colour table."""
    if path.suffix.lower() == ".json":
        return _json_names(path), {}
    table = load_color_table(path)
    return {k: name for k, (name, _) in table.items()}, {k: rgba[:3] for k, (_, rgba) in table.items()}


def label_table_beside(labels_path: str | PathLike) -> tuple[dict[int, str], dict[int, tuple[int, int, int]]]:
    """({id: name}, {id: (r, g, b)}) from the label table stored beside a label file, if any.

    ``labels.nii.gz`` looks for ``labels.json`` ({id: name}), then the colour tables ``labels.ctbl``,
    ``labels.txt``, ``labels.lut`` (names and colours); none found gives empty tables.
    """
    names_file = names_path_for(labels_path)
    for candidate in [names_file, *(names_file.with_suffix(s) for s in COLOR_TABLE_SUFFIXES)]:
        if candidate.is_file():
            return _read_table(candidate)
    return {}, {}


def label_table(
    labels_path: str | PathLike, names_path: str | PathLike | None = None
) -> tuple[dict[int, str], dict[int, tuple[int, int, int]]]:
    """({id: name}, {id: (r, g, b)}) for a label file: from ``names_path`` when given (JSON or colour
    table), else from the table stored beside the label file (:func:`label_table_beside`)."""
    return label_table_beside(labels_path) if names_path is None else _read_table(Path(names_path))


def save_labelmap(labels: Volume, path: str | PathLike, names: dict[int, str] | None = None) -> Path:
    """Write a label map as NIfTI/NRRD/MHA with its reference grid's exact geometry (uint8/uint16).

    With ``names`` the ``{id: name}`` table is written beside it (:func:`names_path_for`), where
    :func:`load_label_names` and the viewer's File > Open segmentation find it.
    """
    from viewer.core.io.image_files import write_image_file

    path = Path(path)
    if not any(path.name.lower().endswith(ext) for ext in LABEL_FILE_EXTENSIONS):
        raise LabelMapError(f"label maps are written as {', '.join(LABEL_FILE_EXTENSIONS)}", path)
    out = write_image_file(labels.with_array(as_label_array(labels.array, path), units="label"), path)
    if names:
        names_path_for(path).write_text(json.dumps({str(k): v for k, v in sorted(names.items())}, indent=1))
    return out


def _person_name(user: str | None) -> str | None:
    """An OS user name as a DICOM person name (one component: the family name)."""
    return None if not user else user if "^" in user else f"{user}^"


def export_segmentation(session, seg, path: str | PathLike) -> tuple[Path, Path]:
    """Export a session's segmentation and its audit log; returns (labels file, audit JSON).

    ``.nii.gz``/``.nii``/``.nrrd``/``.mha``: the label map on the reference grid plus its names JSON;
    ``.dcm``: a DICOM SEG referencing the DICOM series the segmentation was drawn on, each segment's
    algorithm type from who wrote its voxels (manual / model / both). Either way the audit log
    (:func:`viewer.core.audit.write_audit`) is written beside it as ``<name>.audit.json``.
    """
    from viewer.core.audit import segment_algorithms, write_audit

    path = Path(path)
    names = seg.table.names()
    if path.suffix.lower() == ".dcm":
        from viewer.core.io.seg import write_dicom_seg

        ref = seg.reference
        if ref.meta.get("format") != "dicom" or not ref.meta.get("files"):
            raise LabelMapError("DICOM SEG export needs an image read from DICOM files", path)
        write_dicom_seg(seg.array, ref.meta["files"], path, names=names,
                        colors={k: info.color for k, info in seg.table.labels.items()},
                        algorithm=segment_algorithms(session, seg), series_description=seg.name[:64],
                        content_creator=_person_name(getattr(session, "user", None)))
    else:
        save_labelmap(seg.as_volume(), path, names)
    return path, write_audit(session, seg, path)


# --------------------------------------------------------------------------- import into a session
def open_segmentation(session, image: Volume, path: str | PathLike):
    """Open a label file as an editable segmentation of ``image`` in ``session``; returns it.

    NIfTI/NRRD/MHA: resampled onto the image by world geometry, names (and colours) from the label
    table beside it (:func:`label_table_beside`). DICOM SEG: placed by its frame positions, names and
    display colours from its segments; when every segment was written by one algorithm (AUTOMATIC),
    the voxels are marked model-written with that algorithm's name and version, else written by hand.
    """
    path = Path(path)
    if image_extension(path):
        labels = load_labelmap(path, reference=image)
        names, colors = label_table_beside(path)
        seg = session.new_segmentation(image, path.name, labels=labels.array, names=names)
        for label, rgb in colors.items():
            seg.table.ensure(label).color = rgb
        seg.warnings.extend(labels.warnings)
        unnamed = sorted(set(np.unique(labels.array).tolist()) - set(names) - {0}) if names else []
        if unnamed:
            seg.warnings.append(f"{path.name}: label value(s) {', '.join(map(str, unnamed[:10]))}"
                                f"{' ...' if len(unnamed) > 10 else ''} are not in its label table; kept as label_N")
        return seg
    from viewer.core.io.seg import read_dicom_seg

    labels, names, info = read_dicom_seg(path, reference=image)
    present = set(np.unique(labels.array).tolist())
    # writers that number segments 1..max label (radview does) add empty 'label_N' placeholders
    names = {n: name for n, name in names.items() if n in present or name != f"label_{n}"}
    segments = [s for n, s in info["segments"].items() if n in names]
    algorithms = {(s["algorithm_type"], s["algorithm_name"], s["algorithm_version"]) for s in segments}
    kind, name, version = next(iter(algorithms)) if len(algorithms) == 1 else ("", None, None)
    if kind == "AUTOMATIC":
        seg = session.add_ai_segmentation(image, labels.array, names, name or "unknown algorithm", version or "")
    else:
        seg = session.new_segmentation(image, info["series_description"] or path.name, labels=labels.array,
                                       names=names)
    for number, s in info["segments"].items():
        if s["color"] is not None and number in seg.table.labels:
            seg.table.labels[number].color = tuple(s["color"])
    return seg
