"""Colour bar of the heat map shown over the image: its colour map, value range and what low and high mean."""

from __future__ import annotations

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QImage, QPainter
from PySide6.QtWidgets import QWidget

from viewer.render.layers.heatmap import heat_table
from viewer.ui.state import ViewerState

#: What the low and high ends of each explanation map mean, by a word of its description (ai.explain).
MEANINGS = (("uncertainty", "certain", "uncertain"), ("Grad-CAM", "no evidence", "strongest evidence"),
            ("attention gate", "gate closed", "gate open"), ("", "low", "high"))


def meaning(description: str) -> tuple[str, str]:
    """(low, high) meaning of a heat map from its description: uncertainty, Grad-CAM, attention gate or other."""
    return next((low, high) for key, low, high in MEANINGS if key in description)


class ColourBar(QWidget):
    """The state's heat map as a horizontal colour bar: the colour map from 0 to the map's maximum (the range the
    views use; values under the display floor stay transparent there), the map's description above, the
    meaning of the two ends below. Hidden while no heat map is shown."""

    BAR_HEIGHT = 14

    def __init__(self, state: ViewerState, parent=None):
        super().__init__(parent)
        self.state = state
        self.range = (0.0, 1.0)
        self.title = ""
        self.low_text, self.high_text = "low", "high"
        self.setMinimumHeight(self.BAR_HEIGHT + 2 * self.fontMetrics().height() + 10)
        state.heatmap_changed.connect(self._on_heatmap)
        state.heatmap_style_changed.connect(self._on_style)
        self._on_heatmap(state.heatmap)

    def _on_heatmap(self, heat) -> None:
        if heat is not None:
            self.range = (0.0, float(heat.array.max()) if heat.array.size else 1.0)
            self.title = heat.description
            self.low_text, self.high_text = meaning(heat.description)
        self._on_style()

    def _on_style(self) -> None:
        self.setVisible(self.state.heatmap is not None and self.state.heatmap_visible)
        self.update()

    @property
    def colormap(self) -> str:
        return self.state.heatmap_colormap

    def labels(self) -> tuple[str, str]:
        """The texts under the bar's two ends: value and meaning."""
        lo, hi = self.range
        return f"{lo:.3g}: {self.low_text}", f"{hi:.3g}: {self.high_text}"

    def paintEvent(self, _event) -> None:
        table = heat_table(self.colormap, 256)
        strip = QImage(table.tobytes(), 256, 1, 256 * 3, QImage.Format_RGB888).copy()
        line = self.fontMetrics().height()
        painter = QPainter(self)
        painter.setPen(self.palette().windowText().color())
        width = self.width() - 2
        painter.drawText(QRectF(1, 0, width, line), Qt.AlignLeft | Qt.AlignVCenter,
                         self.fontMetrics().elidedText(self.title, Qt.ElideRight, width))
        bar = QRectF(1, line + 2, width, self.BAR_HEIGHT)
        painter.drawImage(bar, strip)
        painter.setPen(QColor(128, 128, 128))
        painter.drawRect(bar)
        painter.setPen(self.palette().windowText().color())
        low, high = self.labels()
        below = QRectF(1, bar.bottom() + 2, width, line)
        painter.drawText(below, Qt.AlignLeft | Qt.AlignVCenter, low)
        painter.drawText(below, Qt.AlignRight | Qt.AlignVCenter, high)
        painter.end()
