"""Histogram of the volume with a draggable window/level region, kept in sync with the views."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import QComboBox, QLabel, QVBoxLayout, QWidget

from viewer.core.presets import auto_window_level, presets_for
from viewer.ui.state import ViewerState

AUTO = "auto"
#: What the panel says instead of offering window/level on a colour (RGB) image.
COLOUR_MESSAGE = "colour image: shown as stored, no window/level"


class HistogramPanel(QWidget):
    """W/L presets combo + histogram; dragging the region edges sets window/level."""

    def __init__(self, state: ViewerState, parent=None):
        super().__init__(parent)
        self.state = state
        self.presets = QComboBox()
        self.presets.currentIndexChanged.connect(self._on_preset)
        self.plot = pg.PlotWidget(background="k")
        self.plot.setMinimumHeight(140)
        self.plot.hideAxis("left")
        self.plot.setMouseEnabled(x=False, y=False)
        self.curve = self.plot.plot([0, 1], [0], stepMode="center", fillLevel=0, brush=(120, 120, 180, 160))
        self.region = pg.LinearRegionItem(values=(0, 1), brush=(255, 200, 0, 40))
        self.plot.addItem(self.region)
        self.region.sigRegionChanged.connect(self._on_region)
        self.readout = QLabel("")
        self.readout.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("Window / level preset"))
        layout.addWidget(self.presets)
        layout.addWidget(self.plot)
        layout.addWidget(self.readout)
        self._updating = False
        state.volume_changed.connect(self._on_volume)
        state.window_level_changed.connect(self._on_window_level)

    def _on_volume(self, vol) -> None:
        self._updating = True
        self.presets.clear()
        if not vol.is_rgb:
            self.presets.addItem("auto", AUTO)
            for p in presets_for(vol.modality):
                self.presets.addItem(p.label, p.name)
        self._updating = False
        self.presets.setEnabled(not vol.is_rgb)
        self.plot.setVisible(not vol.is_rgb)  # no histogram to window on
        self.region.setMovable(not vol.is_rgb)
        self.update_histogram()
        self._on_window_level(self.state.window, self.state.level)

    def update_histogram(self) -> None:
        """Recompute the histogram from a subsample of the current voxels (none for a colour image, nor while
        the voxels are still loading: the main window calls this again once they have all landed)."""
        vol = self.state.volume
        if vol is None:
            return
        if vol.is_rgb or self.state.loading:
            self.curve.setData([0, 1], [0])
            return
        sample = vol.array[:: max(1, vol.array.shape[0] // 40), ::2, ::2].astype(np.float32).ravel()
        lo, hi = np.percentile(sample, [0.5, 99.5]) if sample.size else (0, 1)
        if hi <= lo:
            hi = lo + 1
        counts, edges = np.histogram(sample, bins=128, range=(lo, hi))
        self.curve.setData(edges, np.log1p(counts))
        self.plot.setXRange(min(lo, self.state.level - self.state.window / 2), max(hi, self.state.level +
                                                                                   self.state.window / 2))

    def _on_preset(self, index: int) -> None:
        if self._updating or index < 0 or self.state.volume is None:
            return
        name = self.presets.itemData(index)
        if name == AUTO:
            self.state.set_window_level(*auto_window_level(self.state.volume))
            return
        preset = next(p for p in presets_for(self.state.volume.modality) if p.name == name)
        self.state.set_colormap(preset.colormap)
        self.state.set_window_level(preset.window, preset.level)

    def select_preset(self, name: str) -> None:
        """Choose a preset by name (as the user would in the combo box)."""
        index = self.presets.findData(name)
        if index < 0:
            raise ValueError(f"preset {name!r} not available for this volume")
        self.presets.setCurrentIndex(index)

    def _on_region(self) -> None:
        if self._updating:
            return
        lo, hi = self.region.getRegion()
        self.state.set_window_level(hi - lo, (hi + lo) / 2)

    def _on_window_level(self, window: float, level: float) -> None:
        self._updating = True
        self.region.setRegion((level - window / 2, level + window / 2))
        self._updating = False
        if self.state.volume is not None and self.state.volume.is_rgb:
            self.readout.setText(COLOUR_MESSAGE)
            return
        units = self.state.volume.units if self.state.volume is not None else ""
        self.readout.setText(f"W {window:.4g}  L {level:.4g}  {units}")
