"""The Fusion dock: which volume is fused over the shown one, and how it is drawn (colour map, opacity, threshold,
SUV window, blend mode, checkerboard tile), bound to a FusionState."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QSlider,
    QWidget,
)

from viewer.core.fusion import BLEND_MODES, FUSION_COLORMAPS, FusionState

#: The moving chooser's first entry.
NO_OVERLAY = "(none)"


def _spin(low: float, high: float, decimals: int = 2, step: float = 0.1) -> QDoubleSpinBox:
    box = QDoubleSpinBox()
    box.setRange(low, high)
    box.setDecimals(decimals)
    box.setSingleStep(step)
    box.setKeyboardTracking(False)  # typed values apply on Enter / focus out, not per digit
    return box


class FusionPanel(QWidget):
    """Controls of the fused overlay; they follow ``fusion.display`` and change it.

    The moving chooser lists candidates given by :meth:`set_candidates` (any opened or listed volume other
    than the fixed one); choosing one emits ``moving_chosen(key)`` (the main window loads it in the
    background and fuses it), choosing '(none)' emits ``moving_chosen(None)``.
    """

    moving_chosen = Signal(object)  # a candidate's key, or None

    def __init__(self, fusion: FusionState, parent=None):
        super().__init__(parent)
        self.fusion = fusion
        form = QFormLayout(self)
        self.moving_box = QComboBox()
        self.moving_box.setToolTip("the volume drawn over the shown one (PET over CT, MR over CT, ...)")
        self.moving_box.addItem(NO_OVERLAY, None)
        self.moving_box.activated.connect(lambda i: self.moving_chosen.emit(self.moving_box.itemData(i)))
        form.addRow("Fuse", self.moving_box)
        self.moving_label = QLabel()
        self.moving_label.setWordWrap(True)
        form.addRow(self.moving_label)
        self.visible_box = QCheckBox("Show overlay")
        self.visible_box.toggled.connect(lambda on: self._change(visible=on))
        form.addRow(self.visible_box)
        self.colormap_box = QComboBox()
        self.colormap_box.addItems(FUSION_COLORMAPS)
        self.colormap_box.currentTextChanged.connect(lambda name: self._change(colormap=name))
        form.addRow("Colour map", self.colormap_box)
        self.opacity_slider = QSlider(Qt.Horizontal)
        self.opacity_slider.setRange(0, 100)
        self.opacity_slider.valueChanged.connect(lambda v: self._change(opacity=v / 100))
        form.addRow("Opacity", self.opacity_slider)
        self.threshold_spin = _spin(-1e5, 1e5)
        self.threshold_spin.setToolTip("moving values below this are not drawn")
        self.threshold_spin.valueChanged.connect(lambda v: self._change(threshold=v))
        form.addRow("Lower threshold", self.threshold_spin)
        self.low_spin, self.high_spin = _spin(-1e5, 1e5), _spin(-1e5, 1e5)
        for box in (self.low_spin, self.high_spin):
            box.valueChanged.connect(self._window_edited)
        window = QHBoxLayout()
        window.addWidget(self.low_spin)
        window.addWidget(QLabel("to"))
        window.addWidget(self.high_spin)
        self.window_label = QLabel("Window")
        form.addRow(self.window_label, window)
        self.blend_box = QComboBox()
        self.blend_box.addItems(BLEND_MODES)
        self.blend_box.currentTextChanged.connect(lambda name: self._change(blend=name))
        form.addRow("Blend", self.blend_box)
        self.tile_spin = _spin(1, 500, decimals=0, step=5)
        self.tile_spin.setSuffix(" mm")
        self.tile_spin.valueChanged.connect(lambda v: self._change(tile_mm=v))
        form.addRow("Checkerboard tile", self.tile_spin)
        self.status = QLabel()
        self.status.setWordWrap(True)
        form.addRow(self.status)
        self._controls = (self.visible_box, self.colormap_box, self.opacity_slider, self.threshold_spin, self.low_spin,
                          self.high_spin, self.blend_box, self.tile_spin)
        fusion.display_changed.connect(self._show_display)
        fusion.volumes_changed.connect(self._show_pair)
        self._show_pair()
        self._show_display()

    # ------------------------------------------------------------------ candidates
    def set_candidates(self, candidates: list[tuple[str, object]], current: str | None = None) -> None:
        """The volumes that can be fused: (text shown, key given back by ``moving_chosen``); ``current``: the
        text of the one fused now (default: keep the selection)."""
        current = self.moving_box.currentText() if current is None else current
        self.moving_box.blockSignals(True)
        self.moving_box.clear()
        self.moving_box.addItem(NO_OVERLAY, None)
        for text, key in candidates:
            self.moving_box.addItem(text, key)
        index = self.moving_box.findText(current)
        self.moving_box.setCurrentIndex(max(index, 0))
        self.moving_box.blockSignals(False)

    def choose(self, text: str) -> None:
        """Pick the candidate shown as ``text`` (as the user would); ValueError if there is none."""
        index = self.moving_box.findText(text)
        if index < 0:
            raise ValueError(f"no fusion candidate {text!r}")
        self.moving_box.setCurrentIndex(index)
        self.moving_chosen.emit(self.moving_box.itemData(index))

    def show_status(self, text: str) -> None:
        """A line under the controls (loading, errors)."""
        self.status.setText(text)

    # ------------------------------------------------------------------ state -> widgets
    def _show_pair(self) -> None:
        f = self.fusion
        for widget in self._controls:
            widget.setEnabled(f.active)
        if f.moving is None:
            self.moving_label.setText("Nothing fused." if f.fixed is None else
                                      f"Choose a volume to fuse over {f.fixed.description or f.fixed.modality}.")
            return
        self.moving_label.setText(f"{f.moving.description or f.moving.modality} ({f.moving.units}) over "
                                  f"{f.fixed.description or f.fixed.modality}")
        self.window_label.setText("SUV window" if f.moving.units == "SUVbw" else f"Window ({f.moving.units})")

    def _show_display(self) -> None:
        d = self.fusion.display
        for widget in self._controls:
            widget.blockSignals(True)
        self.visible_box.setChecked(d.visible)
        self.colormap_box.setCurrentText(d.colormap)
        self.opacity_slider.setValue(round(d.opacity * 100))
        self.threshold_spin.setValue(d.window[0] if d.threshold is None else d.threshold)
        self.low_spin.setValue(d.window[0])
        self.high_spin.setValue(d.window[1])
        self.blend_box.setCurrentText(d.blend)
        self.tile_spin.setValue(d.tile_mm)
        for widget in self._controls:
            widget.blockSignals(False)

    # ------------------------------------------------------------------ widgets -> state
    def _change(self, **changes) -> None:
        if not self.fusion.active:
            return
        try:
            self.fusion.set_display(**changes)
        except ValueError as err:
            self.show_status(str(err))
            self._show_display()

    def _window_edited(self, _value: float) -> None:
        self._change(window=(self.low_spin.value(), self.high_spin.value()))
