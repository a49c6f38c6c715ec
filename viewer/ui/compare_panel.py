"""Compare panel: two models (run on the current image) or two segmentations -> agreement overlay
(both / only A / only B) in every MPR view and a per-label Dice table (ai.compare)."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QFormLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from viewer.render.layers.agreement import AGREEMENT_COLORS
from viewer.ui.state import ViewerState

COLUMNS = ("Label", "Dice", "Voxels A", "Voxels B", "Both")
ALL_LABELS = "all labels (any foreground)"


def _swatch(code: int, text: str) -> str:
    r, g, b = AGREEMENT_COLORS[code]
    return f"<span style='background-color: rgb({r},{g},{b})'>&nbsp;&nbsp;&nbsp;</span> {text}"


class ComparePanel(QWidget):
    """Pick sources A and B (a model of the AI panel, or a segmentation of the session), Compare.

    Models run through the AI panel (its progress bar and Cancel; results of this image reused).
    Emits ``compared(rows)`` with the ai.compare.dice_table rows.
    """

    compared = Signal(object)

    def __init__(self, state: ViewerState, session, ai_panel, parent=None):
        super().__init__(parent)
        self.state, self.session, self.ai_panel = state, session, ai_panel
        self.source_a, self.source_b = QComboBox(), QComboBox()
        self.label_choice = QComboBox()
        self.label_choice.addItem(ALL_LABELS, None)
        self.label_choice.currentIndexChanged.connect(self._update_agreement)
        self.compare_button = QPushButton("Compare")
        self.compare_button.clicked.connect(self.compare)
        self.show_agreement = QCheckBox("Show agreement overlay")
        self.show_agreement.setChecked(True)
        self.show_agreement.toggled.connect(self._show_overlay)
        legend = QLabel(" &nbsp; ".join(_swatch(c, t) for c, t in ((1, "both"), (2, "only A"), (3, "only B"))))
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeToContents)
        self.table.verticalHeader().setVisible(False)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        form = QFormLayout()
        form.addRow("A", self.source_a)
        form.addRow("B", self.source_b)
        form.addRow("Overlay of", self.label_choice)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        for w in (self.compare_button, self.show_agreement, legend, self.table, self.status):
            layout.addWidget(w)
        self.rows: list[dict] = []
        self._agreement = None
        self._resolved: list[tuple] = []
        self.comparison = None  # ai.compare.Comparison of the last pair
        ai_panel.segmentation_ready.connect(self.refresh_sources)
        state.labels_changed.connect(self.refresh_sources)
        state.volume_changed.connect(self._on_volume)
        self.refresh_sources()

    # ------------------------------------------------------------------ sources
    def refresh_sources(self, *_) -> None:
        """Offer every installed model and every segmentation of the current image, keeping the choices."""
        sources = [(f"model: {mid}", f"model:{mid}") for mid in self.ai_panel.model_ids]
        vol = self.state.volume
        segs = self.session.segmentations.values()
        sources += [(f"segmentation: {seg.name}", f"segmentation:{seg.uid}") for seg in segs
                    if vol is not None and seg.reference.same_grid(vol)]
        for box in (self.source_a, self.source_b):
            kept = box.currentData()
            box.blockSignals(True)
            box.clear()
            for text, data in sources:
                box.addItem(text, data)
            index = box.findData(kept)
            box.setCurrentIndex(max(index, 0))
            box.blockSignals(False)

    def select(self, box: QComboBox, kind: str, key: str) -> None:
        """Choose source (kind 'model' | 'segmentation', model id | segmentation uid) in ``box``."""
        self.refresh_sources()
        index = box.findData(f"{kind}:{key}")
        if index < 0:
            raise ValueError(f"no {kind} {key!r} to compare")
        box.setCurrentIndex(index)

    # ------------------------------------------------------------------ comparing
    def compare(self) -> None:
        """Resolve A and B (running models in the background if needed), then show Dice and agreement."""
        if self.state.volume is None or self.source_a.currentData() is None:
            self.status.setText("open an image first")
            return
        self._resolved = []
        self.comparison = None
        self._pending = [tuple(box.currentData().split(":", 1)) for box in (self.source_a, self.source_b)]
        self.compare_button.setEnabled(False)
        self._resolve_next()

    def _resolve_next(self) -> None:
        if len(self._resolved) == len(self._pending):
            self._finish_compare()
            return
        kind, key = self._pending[len(self._resolved)]
        if kind == "segmentation":
            seg = self.session.segmentations[key]
            self._add_resolved(seg.array, seg.table.names(), seg.name)
            return
        before = len(self._resolved)
        worker = self.ai_panel.segmentation(key, lambda r: self._add_resolved(r.labels.array, r.names, r.model_id))
        if worker is None and len(self._resolved) == before:  # the AI panel is busy with another job
            self.compare_button.setEnabled(True)
            self.status.setText(self.ai_panel.status.text())
        elif worker is not None:
            worker.failed.connect(self._on_failed)
            self.status.setText(f"running {key}...")

    def _add_resolved(self, array, names: dict[int, str], title: str) -> None:
        self._resolved.append((array, names, title))
        self._resolve_next()

    def _on_failed(self, message: str) -> None:
        self.compare_button.setEnabled(True)
        self.status.setText(message)

    def _finish_compare(self) -> None:
        from ai.compare import compare_labels

        (a, names_a, title_a), (b, names_b, title_b) = self._resolved
        self.comparison = compare_labels(a, b, names_a, names_b)  # by name when both sides name their labels
        self.rows = self.comparison.rows
        self._fill_labels(self.comparison.names)
        self._update_agreement()
        self.table.setRowCount(0)
        for row, r in enumerate(self.rows):
            self.table.insertRow(row)
            for col, text in enumerate((r["name"], f"{r['dice']:.3f}", str(r["voxels_a"]), str(r["voxels_b"]),
                                        str(r["voxels_both"]))):
                self.table.setItem(row, col, QTableWidgetItem(text))
        self.compare_button.setEnabled(True)
        lines = [f"A = {title_a}, B = {title_b}; labels matched by {'name' if self.comparison.by_name else 'number'}"]
        for side, only in (("A", self.comparison.only_a), ("B", self.comparison.only_b)):
            if only:
                more = f" and {len(only) - 12} more" if len(only) > 12 else ""
                lines.append(f"only in {side} ({len(only)}): {', '.join(only[:12])}{more}")
        self.status.setText("\n".join(lines))
        self.compared.emit(self.rows)

    def _fill_labels(self, names: dict[int, str]) -> None:
        kept = self.label_choice.currentData()
        self.label_choice.blockSignals(True)
        self.label_choice.clear()
        self.label_choice.addItem(ALL_LABELS, None)
        for label, name in sorted(names.items()):
            self.label_choice.addItem(name, label)
        self.label_choice.setCurrentIndex(max(self.label_choice.findData(kept), 0))
        self.label_choice.blockSignals(False)

    def _update_agreement(self, *_) -> None:
        """Agreement map of the compared pair for the chosen label (or any foreground) on the image grid."""
        from ai.compare import agreement_map

        if self.comparison is None:
            return
        (_, _, title_a), (_, _, title_b) = self._resolved
        amap = agreement_map(self.comparison.a, self.comparison.b, self.label_choice.currentData())
        self._agreement = self.state.volume.with_array(amap, modality="SEG", units="label",
                                                      description=f"agreement {title_a} vs {title_b}")
        self._show_overlay(self.show_agreement.isChecked())

    def _show_overlay(self, on: bool) -> None:
        if self._agreement is not None:
            self.state.set_agreement(self._agreement if on else None)

    def _on_volume(self, _vol) -> None:
        self._agreement = None
        self._resolved = []
        self.comparison = None
        self.compare_button.setEnabled(True)  # a run for the previous image is discarded by the AI panel
        self.rows = []
        self.table.setRowCount(0)
        self.refresh_sources()
