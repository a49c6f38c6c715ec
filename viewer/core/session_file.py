"""Save and open a radview session folder: images referenced by path, segmentations, measurements, audit, and
the fused pair (moving image by path, its transform as an ITK file beside session.json, display settings)."""

from __future__ import annotations

import json
from pathlib import Path

from viewer.core.errors import JournalError
from viewer.core.labels import LabelTable, Segmentation
from viewer.core.measurements import Measurement

SESSION_FILE = "session.json"
FORMAT_VERSION = 1
#: The fused pair's accepted transform (fixed -> moving, ITK), written beside session.json.
FUSION_TRANSFORM_FILE = "fusion_transform.tfm"


def save_session(session, folder: str | Path) -> Path:
    """Write ``session.json`` plus one ``.nii.gz`` label map (and provenance map) per segmentation."""
    from viewer.core.io import save_volume

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    as_of = session.edit_serial()
    segs = []
    for n, seg in enumerate(session.segmentations.values()):
        labels, prov = f"segmentation_{n}.nii.gz", f"segmentation_{n}_provenance.nii.gz"
        save_volume(seg.as_volume(), folder / labels)
        save_volume(seg.reference.with_array(seg.provenance, units="label"), folder / prov)
        segs.append({"name": seg.name, "uid": seg.uid, "source": seg.source, "labels": labels, "provenance": prov,
                     "table": seg.table.to_json(), "hand_removed": dict(seg.hand_removed)})
    images = [_image_source(v, folder, n) for n, v in enumerate(session.volumes)]  # before the fusion needs them
    fusion = _fusion_doc(session.fusion, folder)
    doc = {
        "format": "radview-session", "version": FORMAT_VERSION,
        "images": images,
        "segmentations": segs,
        "transforms": [fusion["transform"]] if fusion else [],
        "fusion": fusion,
        "measurements": [m.to_json() for m in session.measurements],
        "audit": session.audit_log(),
    }
    path = folder / SESSION_FILE
    path.write_text(json.dumps(doc, indent=1, default=str))
    for seg in session.segmentations.values():
        session.mark_saved(seg, as_of)
    return path


def _image_source(vol, folder: Path, n: int) -> str | None:
    """The path a session reopens ``vol`` from: the file it was opened from; a synthetic volume made in the app
    (no file) is written into the session folder as ``synthetic_<n>.nii.gz``, its statement in the NIfTI
    header, so it reopens flagged synthetic."""
    source = vol.meta.get("source_path")
    if source or not vol.synthetic:
        return source
    from viewer.core.io import save_volume

    path = save_volume(vol, folder / f"synthetic_{n}.nii.gz")
    vol.meta["source_path"] = str(path)
    return str(path)


def load_session(session, folder: str | Path) -> None:
    """Re-open the images and segmentations of a saved session into ``session``, each journalled anew."""
    from viewer.core.io import load_volume

    path = Path(folder) / SESSION_FILE
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise JournalError(f"cannot read the session file ({err})", path) from err
    if doc.get("format") != "radview-session":
        raise JournalError("not a radview session file", path)
    by_source = {}
    for source in doc["images"]:
        if source:
            by_source[source] = session.open(source)
    for s in doc["segmentations"]:
        ref = by_source.get(s["source"]) or session.open(s["source"])
        labels = load_volume(Path(folder) / s["labels"]).array
        prov = load_volume(Path(folder) / s["provenance"]).array
        seg = Segmentation(ref, s["name"], labels.copy(), LabelTable.from_json(s["table"]), uid=s["uid"],
                           provenance=prov.copy(), source=s["source"])
        seg.hand_removed.update({int(k): int(v) for k, v in s.get("hand_removed", {}).items()})
        session._register(seg)  # a live journal again: edits after opening are recoverable
    session.measurements.extend(Measurement(**m) for m in doc.get("measurements", []))
    for entry in doc.get("audit", []):
        session._log(entry)
    for s in doc["segmentations"]:  # as in the file: nothing to save yet
        session.mark_saved(session.segmentations[s["uid"]])
    if doc.get("fusion"):
        session.fusion = _open_fusion(session, doc["fusion"], Path(folder), by_source)


def _fusion_doc(fusion, folder: Path) -> dict | None:
    """The fused pair's JSON entry (None when nothing is fused), its accepted transform written to
    FUSION_TRANSFORM_FILE in ``folder`` (a proposal under inspection is not saved)."""
    if fusion is None or not fusion.active:
        return None
    sources = {}
    for role, vol in (("fixed", fusion.fixed), ("moving", fusion.moving)):
        sources[role] = vol.meta.get("source_path")
        if not sources[role]:
            raise JournalError(f"the {role} image of the fusion ('{vol.description}') was not opened from a file; "
                               "the session could not reopen it", folder)
    fusion.transform.save(folder / FUSION_TRANSFORM_FILE)
    return {**sources, "transform": FUSION_TRANSFORM_FILE, "description": fusion.transform.description,
            "display": fusion.display.to_json(),
            "landmarks": {role: [[float(c) for c in p] for p in pts] for role, pts in fusion.landmarks.items()}}


def _open_fusion(session, doc: dict, folder: Path, by_source: dict):
    """Reopen the fused pair of a session file into ``session.fusion`` (a new FusionState if it has none): the
    fixed image (already open, or opened into ``session``), the moving image from its path, the transform file
    beside the session, display and landmarks."""
    from viewer.core.fusion import FusionDisplay, FusionState
    from viewer.core.io import load_volume
    from viewer.core.registration import Transform

    fixed = by_source.get(doc["fixed"]) or session.open(doc["fixed"])
    moving = load_volume(doc["moving"])
    moving.meta.setdefault("source_path", doc["moving"])
    transform = Transform.load(folder / doc["transform"])
    transform.description = doc.get("description") or transform.description
    fusion = session.fusion if session.fusion is not None else FusionState()  # the GUI's, bound to its views
    fusion.set_fixed(fixed)
    fusion.set_moving(moving, transform, FusionDisplay.from_json(doc.get("display", {})))
    for role, points in doc.get("landmarks", {}).items():
        for point in points:
            fusion.add_landmark(role, point)
    return fusion
