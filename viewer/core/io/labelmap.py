"""Label map files: NIfTI/NRRD/MHA label maps read onto a reference grid and written, label names and colour tables."""

from __future__ import annotations

import json
import shlex
from os import PathLike
from pathlib import Path

import numpy as np

from viewer.core.errors import CorruptFileError, LabelMapError
from viewer.core.io.image_files import read_image_file
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
#: Label map file formats written by :func:`save_labelmap` (DICOM SEG: :func:`viewer.core.io.seg.write_dicom_seg`).
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
