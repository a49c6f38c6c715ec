"""Segmentations: a label array on a reference volume's grid, its label table, and per-voxel provenance."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

import numpy as np

from viewer.core.events import Event
from viewer.core.volume import Volume

#: Provenance codes stored per voxel: who last wrote the voxel's current value.
PROV_NONE, PROV_HUMAN, PROV_MODEL = 0, 1, 2

_PALETTE = [
    (230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48), (145, 30, 180),
    (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212), (0, 128, 128), (220, 190, 255),
    (170, 110, 40), (255, 250, 200), (128, 0, 0), (170, 255, 195), (128, 128, 0), (255, 215, 180),
    (0, 0, 128), (128, 128, 128),
]


#: Volume.meta key of a label map's colours, {id: (r, g, b) 0-255}.
LABEL_COLORS_META = "label_colors"
#: Volume.meta key of a label map's fill opacities, {id: 0-1}.
LABEL_OPACITY_META = "label_opacity"
#: Volume.meta key of a label Volume made by Segmentation.as_volume: that Segmentation, whose ``changed``
#: event tells views which box of the shared array an edit changed.
LABEL_SOURCE_META = "label_source"


def default_color(label: int) -> tuple[int, int, int]:
    """A distinct colour for a label id."""
    return _PALETTE[(label - 1) % len(_PALETTE)]


@dataclass
class LabelInfo:
    """One row of a label table."""

    id: int
    name: str
    color: tuple[int, int, int]
    visible: bool = True
    opacity: float = 0.4
    locked: bool = False


@dataclass
class LabelTable:
    """Label id -> LabelInfo; ids not listed are shown as 'label_N'."""

    labels: dict[int, LabelInfo] = field(default_factory=dict)

    @classmethod
    def from_names(cls, names: dict[int, str]) -> LabelTable:
        return cls({int(k): LabelInfo(int(k), v, default_color(int(k))) for k, v in names.items() if int(k) > 0})

    def ensure(self, label: int) -> LabelInfo:
        """The row for ``label``, created as 'label_N' if missing."""
        if label not in self.labels:
            self.labels[label] = LabelInfo(label, f"label_{label}", default_color(label))
        return self.labels[label]

    def names(self) -> dict[int, str]:
        return {k: v.name for k, v in sorted(self.labels.items())}

    def to_json(self) -> list[dict]:
        return [{"id": i.id, "name": i.name, "color": list(i.color), "visible": i.visible, "opacity": i.opacity,
                 "locked": i.locked} for i in list(self.labels.values())]

    @classmethod
    def from_json(cls, rows: list[dict]) -> LabelTable:
        return cls({int(r["id"]): LabelInfo(int(r["id"]), r["name"], tuple(r["color"]), r.get("visible", True),
                                            r.get("opacity", 0.4), r.get("locked", False)) for r in rows})


class Segmentation:
    """A label map on ``reference``'s grid (uint8; uint16 past 255 labels) with provenance per voxel.

    ``changed`` emits the bounding box (tuple of slices, z/y/x) of each modification so renderers can
    re-upload just that region.
    """

    def __init__(self, reference: Volume, name: str, array: np.ndarray | None = None,
                 table: LabelTable | None = None, uid: str | None = None, provenance: np.ndarray | None = None,
                 source: str | None = None):
        shape = reference.array.shape
        # np.full, not np.zeros: the pages are written now, so the first brush dabs do not pay the page
        # faults of lazily zeroed memory (tens of ms per dab on a fresh 512x512x300 map)
        if array is None:
            array = np.full(shape, 0, np.uint8)
        if array.shape != shape:
            raise ValueError(f"segmentation shape {array.shape} differs from its reference grid {shape}")
        self.reference = reference
        self.name = name
        self.uid = uid or uuid.uuid4().hex
        self.array = array if array.dtype in (np.uint8, np.uint16) else array.astype(np.uint16)
        self.table = table or LabelTable()
        self.provenance = provenance if provenance is not None else np.full(shape, PROV_NONE, np.uint8)
        self.changed = Event()
        #: what the user should know about how it was opened (labels without a name, voxels cut off, ...)
        self.warnings: list[str] = []
        #: path of the image the segmentation was drawn on (for sessions and recovery)
        self.source = source
        #: per label, voxels of it that hand edits removed or overwrote (undo gives them back)
        self.hand_removed: dict[int, int] = {}
        #: for a segmentation rebuilt by recovery: its journal folder and the audit entries journalled there
        self.recovered_from = None
        self.recovered_audit: list[dict] = []

    def promote_for(self, label: int) -> None:
        """Switch to uint16 storage when ``label`` does not fit uint8."""
        if label > 255 and self.array.dtype == np.uint8:
            self.array = self.array.astype(np.uint16)
        if label > 65535:
            raise ValueError(f"label {label} exceeds the 65535 supported labels")

    def as_volume(self) -> Volume:
        """The label map as a Volume on the reference grid (units 'label'); its colours and opacities in
        ``meta['label_colors']`` ({id: (r, g, b)}) and ``meta['label_opacity']``, which the views draw it with;
        this Segmentation in ``meta['label_source']`` (the Volume shares its array, edited in place)."""
        vol = self.reference.with_array(self.array, modality="SEG", units="label", description=self.name)
        vol.meta[LABEL_COLORS_META] = {i: info.color for i, info in self.table.labels.items()}
        vol.meta[LABEL_OPACITY_META] = {i: info.opacity for i, info in self.table.labels.items()}
        vol.meta[LABEL_SOURCE_META] = self
        return vol

    def count_hand_removals(self, labels: np.ndarray, counts: np.ndarray, sign: int = 1) -> None:
        """Add (``sign`` 1) or take back (-1, undo) a hand edit's removals: it changed ``counts[i]`` voxels
        that had label ``labels[i]``."""
        for label, k in zip(labels.tolist(), counts.tolist(), strict=True):
            if label:
                left = self.hand_removed.get(label, 0) + sign * k
                if left > 0:
                    self.hand_removed[label] = left
                else:
                    self.hand_removed.pop(label, None)

    def provenance_summary(self) -> dict[int, dict[str, int]]:
        """Per label: voxels whose current value was written by a model (``ai_voxels``) vs by hand
        (``human_voxels``), and, when hand edits erased or overwrote some of it, ``human_removed``."""
        out = {}
        lab, prov = self.array.ravel(), self.provenance.ravel()
        n = max(int(lab.max()) + 1 if lab.size else 1, max(self.hand_removed, default=0) + 1)
        ai = np.bincount(lab[prov == PROV_MODEL], minlength=n)
        human = np.bincount(lab[prov == PROV_HUMAN], minlength=n)
        for label in range(1, n):
            removed = self.hand_removed.get(label, 0)
            if ai[label] or human[label] or removed:
                out[label] = {"ai_voxels": int(ai[label]), "human_voxels": int(human[label])}
                if removed:
                    out[label]["human_removed"] = removed
        return out
