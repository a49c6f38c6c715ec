"""Audit trail of one segmentation: who (person or model id+version) wrote what, when, how many voxels.

The Session keeps one audit log for all its segmentations (``Session.audit_log()``); this module picks
the entries of one segmentation and writes them as ``<labels name>.audit.json`` beside exported labels.
"""

from __future__ import annotations

import datetime as dt
import getpass
import json
import time
from os import PathLike
from pathlib import Path

from viewer import __version__
from viewer.core.labels import Segmentation

AUDIT_FORMAT = "radview-audit"
AUDIT_VERSION = 1
#: Suffixes removed from a label file's name to name its audit file.
_LABEL_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd", ".dcm")


def audit_path_for(labels_path: str | PathLike) -> Path:
    """``<folder>/<name>.audit.json`` for ``<folder>/<name>.nii.gz`` (or .nrrd, .mha, .dcm)."""
    path = Path(labels_path)
    name = path.name
    for suffix in _LABEL_SUFFIXES:
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
            break
    return path.with_name(f"{name}.audit.json")


def _iso(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    return dt.datetime.fromtimestamp(float(seconds), dt.UTC).isoformat(timespec="seconds")


def segmentation_entries(session, seg: Segmentation) -> tuple[list[dict], int]:
    """(audit entries about ``seg``, number of entries that could not be attributed to a segmentation).

    An entry belongs to ``seg`` when it lists its uid (``segmentation_uids``, written by every Session
    entry) or names it (``segmentation``); entries of older logs naming no segmentation belong to ``seg``
    when it is the session's only segmentation, and are counted as unattributed otherwise.
    """
    only_one = len(session.segmentations) == 1
    out, unattributed = [], 0
    for entry in session.audit_log():
        if "segmentation_uids" in entry:
            mine = seg.uid in entry["segmentation_uids"]
        elif "segmentation" in entry:
            mine = entry["segmentation"] == seg.name
        elif only_one:
            mine = True
        else:
            unattributed += 1
            continue
        if mine:
            out.append({**entry, "when": _iso(entry.get("time"))})
    return out, unattributed


def segmentation_audit(session, seg: Segmentation, labels_file: str | None = None) -> dict:
    """The JSON document exported beside a segmentation's labels: its label table with per-label
    provenance (voxels last written by a model / by hand, voxels removed by hand) and every audit entry about it."""
    entries, unattributed = segmentation_entries(session, seg)
    provenance = seg.provenance_summary()
    labels = []
    for label, name in seg.table.names().items():
        counts = {"ai_voxels": 0, "human_voxels": 0, "human_removed": 0, **provenance.get(label, {})}
        labels.append({"id": label, "name": name, **counts})
    return {
        "format": AUDIT_FORMAT,
        "version": AUDIT_VERSION,
        "segmentation": {"name": seg.name, "uid": seg.uid, "image": seg.source, "labels_file": labels_file},
        "exported": _iso(time.time()),
        "exported_by": {"kind": "human", "user": getattr(session, "user", None) or getpass.getuser(),
                        "software": f"radview {__version__}"},
        "labels": labels,
        "entries": entries,
        "unattributed_entries": unattributed,
    }


def write_audit(session, seg: Segmentation, labels_path: str | PathLike) -> Path:
    """Write :func:`segmentation_audit` as ``<labels name>.audit.json`` beside ``labels_path``."""
    labels_path = Path(labels_path)
    out = audit_path_for(labels_path)
    doc = segmentation_audit(session, seg, labels_path.name)
    out.write_text(json.dumps(doc, indent=1, default=str))
    return out


def segment_algorithms(session, seg: Segmentation) -> dict[int, dict]:
    """Per label present in ``seg``, who wrote its current voxels as a DICOM SEG algorithm description.

    Only by hand: MANUAL; only by a model: AUTOMATIC with the model's id and version; both (a model's
    output corrected by hand: painted into, or partly erased / overwritten by hand): SEMIAUTOMATIC. The
    model is the latest one that wrote into ``seg`` according to the audit log.
    """
    entries, _ = segmentation_entries(session, seg)
    models = [e["author"] for e in entries if (e.get("author") or {}).get("kind") == "model"]
    model = models[-1] if models else {}
    out = {}
    for label, counts in seg.provenance_summary().items():
        if not counts["ai_voxels"] and not counts["human_voxels"]:  # removed entirely: not in the SEG
            continue
        if counts["ai_voxels"] and (counts["human_voxels"] or counts.get("human_removed")):
            kind = "SEMIAUTOMATIC"
        elif counts["ai_voxels"]:
            kind = "AUTOMATIC"
        else:
            out[label] = {"algorithm_type": "MANUAL"}
            continue
        out[label] = {"algorithm_type": kind, "name": model.get("id"), "version": model.get("version")}
    return out
