"""Save and open a radview session folder: images referenced by path, segmentations, measurements, audit."""

from __future__ import annotations

import json
from pathlib import Path

from viewer.core.errors import JournalError
from viewer.core.labels import LabelTable, Segmentation
from viewer.core.measurements import Measurement

SESSION_FILE = "session.json"
FORMAT_VERSION = 1


def save_session(session, folder: str | Path) -> Path:
    """Write ``session.json`` plus one ``.nii.gz`` label map (and provenance map) per segmentation."""
    from viewer.core.io import save_volume

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    segs = []
    for n, seg in enumerate(session.segmentations.values()):
        labels, prov = f"segmentation_{n}.nii.gz", f"segmentation_{n}_provenance.nii.gz"
        save_volume(seg.as_volume(), folder / labels)
        save_volume(seg.reference.with_array(seg.provenance, units="label"), folder / prov)
        segs.append({"name": seg.name, "uid": seg.uid, "source": seg.source, "labels": labels, "provenance": prov,
                     "table": seg.table.to_json(), "hand_removed": dict(seg.hand_removed)})
    doc = {
        "format": "radview-session", "version": FORMAT_VERSION,
        "images": [v.meta.get("source_path") for v in session.volumes],
        "segmentations": segs,
        "transforms": [],
        "measurements": [m.to_json() for m in session.measurements],
        "audit": session.audit_log(),
    }
    path = folder / SESSION_FILE
    path.write_text(json.dumps(doc, indent=1, default=str))
    return path


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
