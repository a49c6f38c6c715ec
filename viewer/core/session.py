"""Session: the application state without a GUI: open images, segment, edit with undo, journal, recover.

Example::

    s = Session(home=DIR)
    vol = s.open(PATH)
    seg = s.new_segmentation(vol, "tumour")
    s.paint(seg, label=1, center_mm=(x, y, z), radius_mm=5)   # one undo step, journalled
    s.undo(); s.redo()
    s.labels(seg)                                             # numpy (z, y, x) on vol's grid
    Session(home=DIR).recover()                               # after a crash: the journalled segmentations
"""

from __future__ import annotations

import getpass
import logging
import os
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from viewer.core.editing import paint_brush, replace_all
from viewer.core.errors import JournalError, LabelMapError
from viewer.core.events import Event
from viewer.core.history import DEFAULT_BUDGET_BYTES, History, Step
from viewer.core.journal import Journal, clean_closed, mark_closed, open_journals, replay, set_aside
from viewer.core.labels import PROV_HUMAN, PROV_MODEL, LabelTable, Segmentation
from viewer.core.volume import Volume

log = logging.getLogger(__name__)


def _segmentations_of(step: Step) -> list[str]:
    """uids of the segmentations an undo step changed (in first-touched order)."""
    return list(dict.fromkeys(d.seg_uid for d in step.deltas))


def _provenance(array: np.ndarray, code: int) -> np.ndarray:
    """A provenance map marking every labelled voxel of ``array`` with ``code`` (one pass, no fancy indexing)."""
    prov = (array != 0).view(np.uint8)
    if code != 1:
        prov *= np.uint8(code)
    return prov


def ai_segmentation(vol: Volume, array: np.ndarray, names: dict[int, str], model_id: str,
                    model_version: str) -> Segmentation:
    """A segmentation written by a model, in no session yet: a copy of ``array`` (on ``vol``'s grid) with every
    labelled voxel marked AI-written. It touches no session, so a worker thread can make it (two image-sized
    maps: ~0.4 s for 512x512x300) and the GUI thread only adopts it (Session.adopt_ai_segmentation)."""
    if array.shape != vol.array.shape:
        raise LabelMapError(f"model output {array.shape} is not on the image grid {vol.array.shape}")
    array = np.array(array, copy=True)
    return Segmentation(vol, f"{model_id} {model_version}", array, LabelTable.from_names(names),
                        source=vol.meta.get("source_path"), provenance=_provenance(array, PROV_MODEL))


def ai_result_segmentation(vol: Volume, result) -> Segmentation:
    """:func:`ai_segmentation` of a model run's result (``ai.engine.SegmentationResult``: its labels on
    ``vol``'s grid, label names, model id and version), e.g. made in the AI worker thread."""
    return ai_segmentation(vol, result.labels.array, result.names, result.model_id, result.model_version)


def default_home() -> Path:
    """RADVIEW_HOME, else the platform's user state folder for radview."""
    home = os.environ.get("RADVIEW_HOME")
    if home:
        return Path(home)
    from platformdirs import user_state_dir

    return Path(user_state_dir("radview"))


class Session:
    """Open volumes, their segmentations, one undo history, and the crash journal under ``home``."""

    def __init__(self, home: str | os.PathLike | None = None, *, user: str | None = None,
                 history_budget_bytes: int = DEFAULT_BUDGET_BYTES):
        self.home = Path(home) if home is not None else default_home()
        self.journal_dir = self.home / "journal"
        self.user = user or getpass.getuser()
        self.volumes: list[Volume] = []
        self.segmentations: dict[str, Segmentation] = {}
        self.history = History(history_budget_bytes)
        self.audit: list[dict] = []
        self.measurements: list = []  # viewer.core.measurements.Measurement
        self.fusion = None  # viewer.core.fusion.FusionState of a fused pair, saved with the session
        self.recovery_warnings: list[str] = []
        self.recovery_errors: list[JournalError] = []
        self._journals: dict[str, Journal] = {}
        self._edit_serial = 0  # counts audited edits; _last_edit[uid] is the serial of uid's last one
        self._last_edit: dict[str, int] = {}
        self._saved_lock = threading.Lock()  # exports mark segmentations saved from a worker thread
        self._group: Step | None = None
        self.edited = Event()  # (segmentation, bounding box)
        clean_closed(self.journal_dir)  # journals of cleanly closed or recovered sessions

    # ------------------------------------------------------------------ images and segmentations
    def open(self, path: str | os.PathLike, **options) -> Volume:
        """Load an image (see viewer.core.io.load_volume) and keep it in the session."""
        from viewer.core.io import load_volume

        vol = load_volume(path, **options)
        vol.meta.setdefault("source_path", str(path))
        return self.add_volume(vol)

    def add_volume(self, vol: Volume) -> Volume:
        """Keep an image loaded elsewhere (e.g. by the GUI's background loader) in the session, once."""
        if not any(v is vol for v in self.volumes):
            self.volumes.append(vol)
        return vol

    def release_unused_volumes(self, keep: Volume) -> None:
        """Forget the images other than ``keep`` that no segmentation refers to (frees their memory)."""
        used = {id(seg.reference) for seg in self.segmentations.values()}
        self.volumes = [v for v in self.volumes if v is keep or id(v) in used]

    def new_segmentation(self, vol: Volume, name: str, *, labels: np.ndarray | None = None,
                         names: dict[int, str] | None = None) -> Segmentation:
        """An empty (or given) label map on ``vol``'s grid, journalled from now on."""
        array = None if labels is None else np.array(labels, copy=True)
        seg = Segmentation(vol, name, array, LabelTable.from_names(names or {}), source=vol.meta.get("source_path"),
                           provenance=None if array is None else _provenance(array, PROV_HUMAN))
        self._register(seg, initial=array is not None)
        return seg

    def add_ai_segmentation(self, vol: Volume, array: np.ndarray, names: dict[int, str], model_id: str,
                            model_version: str) -> Segmentation:
        """A segmentation written by a model: every labelled voxel is marked AI-written."""
        return self.adopt_ai_segmentation(ai_segmentation(vol, array, names, model_id, model_version),
                                          model_id, model_version)

    def adopt_ai_segmentation(self, seg: Segmentation, model_id: str, model_version: str) -> Segmentation:
        """Keep ``seg`` made by :func:`ai_segmentation` (e.g. on a worker thread): journalled, audited as
        written by the model."""
        self._register(seg)
        self._log({"time": time.time(), "action": "model output", "segmentation": seg.name,
                   "segmentation_uids": [seg.uid],
                   "author": {"kind": "model", "id": model_id, "version": model_version},
                   "voxels": int(np.count_nonzero(seg.provenance))})
        return seg

    def adopt_ai_result(self, vol: Volume, result, seg: Segmentation | None = None) -> Segmentation:
        """Keep a model run's ``result`` on ``vol`` as a new AI-written segmentation: ``seg`` when it was already
        made from it (:func:`ai_result_segmentation`, off the GUI thread), else made here."""
        seg = seg if seg is not None else ai_result_segmentation(vol, result)
        return self.adopt_ai_segmentation(seg, result.model_id, result.model_version)

    def _register(self, seg: Segmentation, initial: bool = True) -> None:
        """Keep ``seg`` and start its live journal; its current label map (unless ``initial`` is False: a new
        empty one) is journalled by the journal's thread, not this one."""
        self.segmentations[seg.uid] = seg
        self._journals[seg.uid] = Journal(self.journal_dir, seg, seg.source, initial=initial)

    def _log(self, entry: dict) -> None:
        """Append an audit entry and journal it with the segmentations it names."""
        self.audit.append(entry)
        with self._saved_lock:
            self._edit_serial += 1
            for uid in entry.get("segmentation_uids", ()):
                self._last_edit[uid] = self._edit_serial
        for uid in entry.get("segmentation_uids", ()):
            if uid in self._journals:
                self._journals[uid].append_audit(entry)

    def edit_serial(self) -> int:
        """A number that grows with every edit; pass it to :meth:`mark_saved` as the state a file holds."""
        return self._edit_serial

    def mark_saved(self, seg: Segmentation, as_of: int | None = None) -> None:
        """``seg`` is written to a file as of edit serial ``as_of`` (default: now); later edits stay unsaved."""
        with self._saved_lock:
            as_of = self._edit_serial if as_of is None else as_of
            if self._last_edit.get(seg.uid, 0) <= as_of:
                self._last_edit.pop(seg.uid, None)

    def unsaved(self) -> list[str]:
        """Names of the segmentations with edits (paint, tools, AI output, label table, undo/redo, recovery)
        not yet exported or saved in a session file."""
        return [seg.name for uid, seg in self.segmentations.items() if uid in self._last_edit]

    def journal_folder(self, seg: Segmentation) -> Path:
        """The folder of ``seg``'s live journal."""
        return self._journals[seg.uid].dir

    def edit_label(self, seg: Segmentation, label: int, **fields) -> None:
        """Change a label table row (``name``, ``color``, ``visible``, ``opacity``, ``locked``), audited and
        journalled (direct changes to ``seg.table`` are journalled too, within FLUSH_INTERVAL_S). Fields given
        their current value are not logged; an edit that changes nothing writes no audit entry."""
        info = seg.table.ensure(int(label))
        unknown = set(fields) - {"name", "color", "visible", "opacity", "locked"}
        if unknown:
            raise ValueError(f"label table rows have no field {sorted(unknown)}")
        if "name" in fields and not str(fields["name"]).strip():
            raise ValueError(f"label {label} needs a name")
        fields = {k: tuple(v) if k == "color" else v for k, v in fields.items()}
        changes = {k: v for k, v in fields.items() if getattr(info, k) != v}
        if not changes:
            return
        for key, value in changes.items():
            setattr(info, key, value)
        self._log({"time": time.time(), "action": f"label {label} table edit", "author": self._author(),
                   "changes": {k: list(v) if k == "color" else v for k, v in changes.items()},
                   "segmentation": seg.name, "segmentation_uids": [seg.uid]})

    def labels(self, seg: Segmentation) -> np.ndarray:
        """The label array (z, y, x) on the reference grid."""
        return seg.array

    # ------------------------------------------------------------------ edits
    def _author(self, model: tuple[str, str] | None = None) -> dict:
        if model:
            return {"kind": "model", "id": model[0], "version": model[1]}
        return {"kind": "human", "user": self.user}

    @contextmanager
    def group(self, description: str):
        """Merge every edit inside the block (e.g. one mouse stroke) into a single undo step."""
        outer = self.begin_group(description)
        try:
            yield self._group
        finally:
            if outer:
                self.end_group()

    def begin_group(self, description: str) -> bool:
        """Start merging edits into one undo step (a mouse stroke); False if a group is already open."""
        if self._group is not None:
            return False
        self._group = Step(description, self._author())
        return True

    def end_group(self) -> None:
        """Commit the edits since :meth:`begin_group` as one undo step."""
        step, self._group = self._group, None
        if step is not None:
            self._commit_step(step)

    def _record(self, seg: Segmentation, delta, description: str) -> int:
        if delta is None:
            return 0
        self._journals[seg.uid].append(delta, forward=True)
        seg.count_hand_removals(delta.old.uniq, delta.old.counts)
        seg.changed.emit(delta.box)
        self.edited.emit(seg, delta.box)
        if self._group is not None:
            self._group.deltas.append(delta)
        else:
            self._commit_step(Step(description, self._author(), [delta]))
        return delta.count

    def _commit_step(self, step: Step) -> None:
        if not step.deltas:
            return
        self.history.push(step)
        self._log({"time": step.time, "action": step.description, "author": step.author,
                           "voxels": step.voxels, "segmentation_uids": _segmentations_of(step)})

    def paint(self, seg: Segmentation, label: int, center_mm, radius_mm: float, **options) -> int:
        """3D sphere brush of ``radius_mm`` at world ``center_mm``; label 0 erases. One undo step.

        Options: ``shape='disc'`` with ``orientation='axial' | 'coronal' | 'sagittal'`` (a 2D disc in that
        view's slice), ``intensity_range=(lo, hi)`` (threshold paint), ``editable=('inside' | 'outside', L)``,
        ``overwrite='all' | 'unlocked' | 'background'`` (see viewer.core.editing.OVERWRITE_RULES) and, for an
        eraser, ``active_label``. Returns the number of voxels changed.
        """
        delta = paint_brush(seg, int(label), center_mm, float(radius_mm), PROV_HUMAN, **options)
        verb = f"paint label {label}" if label else "erase"
        return self._record(seg, delta, f"{verb} {options.get('shape', 'sphere')} r={radius_mm} mm")

    def erase(self, seg: Segmentation, center_mm, radius_mm: float, **options) -> int:
        """Eraser (sets label 0) with the same brush and rule options as :meth:`paint`."""
        return self.paint(seg, 0, center_mm, radius_mm, **options)

    def apply(self, seg: Segmentation, new_array: np.ndarray, description: str) -> int:
        """Replace the label map with a tool's result (threshold, fill, ...) as one undo step."""
        return self._record(seg, replace_all(seg, new_array, PROV_HUMAN), description)

    def undo(self) -> bool:
        """Undo the last step (of any segmentation); False when there is nothing to undo."""
        step = self.history.pop_undo()
        if step is None:
            return False
        for delta in reversed(step.deltas):
            self._revert(delta, forward=False)
        self._log({"time": time.time(), "action": f"undo: {step.description}", "author": self._author(),
                           "voxels": step.voxels, "segmentation_uids": _segmentations_of(step)})
        return True

    def redo(self) -> bool:
        """Redo the last undone step; False when there is nothing to redo."""
        step = self.history.pop_redo()
        if step is None:
            return False
        for delta in step.deltas:
            self._revert(delta, forward=True)
        self._log({"time": time.time(), "action": f"redo: {step.description}", "author": self._author(),
                           "voxels": step.voxels, "segmentation_uids": _segmentations_of(step)})
        return True

    def _revert(self, delta, forward: bool) -> None:
        seg = self.segmentations[delta.seg_uid]
        delta.apply(seg.array, seg.provenance, forward)
        self._journals[seg.uid].append(delta, forward=forward)
        seg.count_hand_removals(delta.old.uniq, delta.old.counts, 1 if forward else -1)
        seg.changed.emit(delta.box)
        self.edited.emit(seg, delta.box)

    def audit_log(self) -> list[dict]:
        """Every model output, edit, undo and redo of this session (JSON-able)."""
        return list(self.audit)

    # ------------------------------------------------------------------ files
    def save(self, folder: str | os.PathLike) -> Path:
        """Save the session (images by path, segmentations, measurements, audit log) into ``folder``."""
        from viewer.core.session_file import save_session

        return save_session(self, folder)

    def load(self, folder: str | os.PathLike) -> None:
        """Open a saved session's images and segmentations into this session."""
        from viewer.core.session_file import load_session

        load_session(self, folder)

    # ------------------------------------------------------------------ crash safety
    def flush(self) -> None:
        """Make every committed edit durable now; raises the JournalError of a journal that cannot be written."""
        for j in self._journals.values():
            j.flush()
        for j in self._journals.values():
            if j.error is not None:
                raise j.error

    def close(self, keep_unsaved: bool = False) -> None:
        """Stop journalling; the journals are closed and deleted (not offered for recovery), except with
        ``keep_unsaved`` those of :meth:`unsaved` segmentations: kept, to be offered at the next start."""
        for uid, j in self._journals.items():
            j.close(keep=keep_unsaved and uid in self._last_edit)
        self._journals.clear()

    def _unclosed_journals(self) -> list[Path]:
        """Journal folders left open by other sessions (crash, kill), not this session's live ones."""
        return open_journals(self.journal_dir, exclude={j.dir for j in self._journals.values()})

    def recover(self) -> list[Segmentation]:
        """Segmentations of sessions that ended without close() (crash, kill -9), rebuilt from journals:
        labels (uint16 past 255), provenance, hand removals, name and label table; their audit entries
        (model id and version, edits) are restored by :meth:`adopt_recovered`.

        A damaged record loses only its own edit (``recovery_warnings`` name the file); a journal whose
        header is unreadable is set aside (journal.set_aside: kept, not offered again) and reported once in
        ``recovery_errors`` (JournalError naming the file and where it was kept); the others are still
        recovered.
        """
        out = []
        for folder in self._unclosed_journals():
            try:
                seg, warnings = replay(folder)
            except JournalError as err:
                try:
                    err = JournalError(f"{err.problem}; the journal was moved to {set_aside(folder)} and will not "
                                       "be offered again", err.path)
                except OSError as move:
                    log.warning("cannot set aside %s (%s): it is reported again at the next start", folder, move)
                log.error("%s", err)
                self.recovery_errors.append(err)
                continue
            self.recovery_warnings.extend(warnings)
            out.append(seg)
        return out

    def adopt_recovered(self, vol: Volume, recovered: Segmentation) -> Segmentation:
        """Attach a recovered segmentation to its re-opened image (same grid), journal it anew and mark the
        old journal handled. Provenance, hand removals, label table and its audit entries are kept."""
        if recovered.array.shape != vol.array.shape or not recovered.reference.same_grid(vol, tol=1e-3):
            raise LabelMapError(f"recovered segmentation '{recovered.name}' does not fit {vol.description}")
        seg = Segmentation(vol, recovered.name, recovered.array, recovered.table, provenance=recovered.provenance,
                           source=recovered.source)
        seg.hand_removed.update(recovered.hand_removed)
        self._register(seg)
        for entry in recovered.recovered_audit:  # the entries now name the adopted segmentation
            uids = [seg.uid if u == recovered.uid else u for u in entry.get("segmentation_uids", [])]
            self._log({**entry, "segmentation_uids": uids})
        if recovered.recovered_from is not None and recovered.recovered_from.is_dir():
            mark_closed(recovered.recovered_from, f"recovered into {seg.uid}")
        self._log({"time": time.time(), "action": "recovered after a crash", "segmentation": seg.name,
                   "segmentation_uids": [seg.uid], "author": self._author()})
        return seg

    def discard_recovery(self) -> None:
        """Mark every unclosed journal as handled (after the user declined or saved the recovery)."""
        for folder in self._unclosed_journals():
            mark_closed(folder, "recovery declined")
