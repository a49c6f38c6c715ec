"""Segmentations in and out of a session: open label files / DICOM SEG as segmentations, export them with their audit.

The session-layer half of segmentation import and export (3D Slicer's Logic): it decides what a file
means for the session (names, colours, who wrote the voxels, the audit log), while
:mod:`viewer.core.io.labelmap` and :mod:`viewer.core.io.seg` only read and write the files.
"""

from __future__ import annotations

from os import PathLike
from pathlib import Path

import numpy as np

from viewer.core.audit import segment_algorithms, write_audit
from viewer.core.errors import LabelMapError
from viewer.core.io.image_files import image_extension
from viewer.core.io.labelmap import label_table_beside, load_labelmap, save_labelmap
from viewer.core.io.seg import read_dicom_seg, write_dicom_seg
from viewer.core.labels import LabelTable, Segmentation
from viewer.core.volume import Volume


def _person_name(user: str | None) -> str | None:
    """An OS user name as a DICOM person name (one component: the family name)."""
    return None if not user else user if "^" in user else f"{user}^"


def snapshot(seg: Segmentation) -> Segmentation:
    """A copy of ``seg`` (labels, provenance, label table; same uid) that later edits do not change, e.g. to
    export in the background while the user keeps drawing."""
    return Segmentation(seg.reference, seg.name, seg.array.copy(), LabelTable.from_json(seg.table.to_json()),
                        uid=seg.uid, provenance=seg.provenance.copy(), source=seg.source)


def export_segmentation(session, seg: Segmentation, path: str | PathLike) -> tuple[Path, Path]:
    """Export a session's segmentation and its audit log; returns (labels file, audit JSON).

    ``.nii.gz``/``.nii``/``.nrrd``/``.mha``: the label map on the reference grid plus its names JSON;
    ``.dcm``: a DICOM SEG referencing the DICOM series the segmentation was drawn on, each segment's
    algorithm type from who wrote its voxels (manual / model / both). Either way the audit log
    (:func:`viewer.core.audit.write_audit`) is written beside it as ``<name>.audit.json``.
    """
    path = Path(path)
    as_of = session.edit_serial()  # edits made while this writes stay unsaved
    names = seg.table.names()
    if path.suffix.lower() == ".dcm":
        ref = seg.reference
        if ref.meta.get("format") != "dicom" or not ref.meta.get("files"):
            raise LabelMapError("DICOM SEG export needs an image read from DICOM files", path)
        write_dicom_seg(seg.array, ref.meta["files"], path, names=names,
                        colors={k: info.color for k, info in seg.table.labels.items()},
                        algorithm=segment_algorithms(session, seg), series_description=seg.name[:64],
                        content_creator=_person_name(getattr(session, "user", None)))
    else:
        save_labelmap(seg.as_volume(), path, names)
    audit = write_audit(session, seg, path)
    session.mark_saved(seg, as_of)
    return path, audit


def open_segmentation(session, image: Volume, path: str | PathLike) -> Segmentation:
    """Open a label file as an editable segmentation of ``image`` in ``session``; returns it.

    NIfTI/NRRD/MHA: resampled onto the image by world geometry, names (and colours) from the label
    table beside it (:func:`viewer.core.io.labelmap.label_table_beside`). DICOM SEG: placed by its frame
    positions, names and display colours from its segments; when every segment was written by one
    algorithm (AUTOMATIC), the voxels are marked model-written with that algorithm's name and version,
    else written by hand.
    """
    path = Path(path)
    if image_extension(path):
        return _open_label_file(session, image, path)
    labels, names, info = read_dicom_seg(path, reference=image)
    present = set(np.unique(labels.array).tolist())
    # writers that number segments 1..max label (radview does) add empty 'label_N' placeholders
    names = {n: name for n, name in names.items() if n in present or name != f"label_{n}"}
    segments = [s for n, s in info["segments"].items() if n in names]
    algorithms = {(s["algorithm_type"], s["algorithm_name"], s["algorithm_version"]) for s in segments}
    kind, name, version = next(iter(algorithms)) if len(algorithms) == 1 else ("", None, None)
    if kind == "AUTOMATIC":
        seg = session.add_ai_segmentation(image, labels.array, names, name or "unknown algorithm", version or "")
        session.mark_saved(seg)  # as in the file
    else:
        seg = session.new_segmentation(image, info["series_description"] or path.name, labels=labels.array,
                                       names=names)
    for number, s in info["segments"].items():
        if s["color"] is not None and number in seg.table.labels:
            seg.table.labels[number].color = tuple(s["color"])
    seg.warnings.extend(labels.warnings)
    return seg


def _open_label_file(session, image: Volume, path: Path) -> Segmentation:
    """A NIfTI/NRRD/MHA label map as a hand-drawn segmentation of ``image``, named from its label table."""
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
