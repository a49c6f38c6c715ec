"""A rotating MIP: precomputed projections (viewer.core.mip) shown as a loop on a timer, PET as inverse grey."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QColor, QImage, QPainter, QPixmap
from PySide6.QtWidgets import QLabel, QSizePolicy

#: Milliseconds per frame (36 frames: one turn in about 3 s).
FRAME_MS = 90


def mip_rgb(frame: np.ndarray, window: tuple[float, float], inverse: bool) -> np.ndarray:
    """(rows, cols, 3) uint8 grey of a MIP frame over ``window`` (inverse: high values dark, as PET is read)."""
    low, high = window
    grey = np.clip((frame - low) / (high - low), 0, 1)
    if inverse:
        grey = 1 - grey
    return np.repeat(np.rint(grey * 255).astype(np.uint8)[..., None], 3, axis=2)


class MipView(QLabel):
    """Shows a list of MIP frames in turn (``set_frames``), scaled to fit with square pixels; paused when hidden."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setAlignment(Qt.AlignCenter)
        self.setMinimumSize(120, 120)
        self.setSizePolicy(QSizePolicy.Ignored, QSizePolicy.Ignored)
        self.setStyleSheet("background: white; color: black")
        self.setText("MIP of the fused volume")
        self.frames: list[QImage] = []
        self.banner = ""
        self.index = 0
        self.timer = QTimer(self)
        self.timer.setInterval(FRAME_MS)
        self.timer.timeout.connect(self.next_frame)

    def set_frames(self, frames: list[np.ndarray], window: tuple[float, float], inverse: bool = True,
                   banner: str = "") -> None:
        """Show ``frames`` (float images, row 0 at the top) over ``window``; an empty list clears the view.
        ``banner``: red text over every frame (viewer.render.synthetic_banner: the volume is synthetic)."""
        self.banner = banner
        self.frames = []
        for frame in frames:
            rgb = np.ascontiguousarray(mip_rgb(frame, window, inverse))
            rows, cols, _ = rgb.shape
            self.frames.append(QImage(rgb.data, cols, rows, 3 * cols, QImage.Format_RGB888).copy())
        self.index = 0
        if not self.frames:
            self.timer.stop()
            self.clear()
            self.setText("MIP of the fused volume")
            return
        self._show()
        if self.isVisible():
            self.timer.start()

    def next_frame(self) -> None:
        """Advance the loop by one frame."""
        if self.frames:
            self.index = (self.index + 1) % len(self.frames)
            self._show()

    def _show(self) -> None:
        pixmap = QPixmap.fromImage(self.frames[self.index])
        pixmap = pixmap.scaled(self.size(), Qt.KeepAspectRatio, Qt.SmoothTransformation)
        if self.banner:
            painter = QPainter(pixmap)
            box = painter.boundingRect(pixmap.rect(), Qt.AlignHCenter | Qt.AlignTop, self.banner).adjusted(-4, 0, 4, 0)
            painter.fillRect(box, QColor(217, 0, 0))
            painter.setPen(QColor("white"))
            painter.drawText(box, Qt.AlignCenter, self.banner)
            painter.end()
        self.setPixmap(pixmap)

    def showEvent(self, event) -> None:  # noqa: N802 - Qt API
        super().showEvent(event)
        if self.frames:
            self.timer.start()

    def hideEvent(self, event) -> None:  # noqa: N802 - Qt API
        self.timer.stop()
        super().hideEvent(event)

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt API
        super().resizeEvent(event)
        if self.frames:
            self._show()
