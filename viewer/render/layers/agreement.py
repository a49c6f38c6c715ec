"""The agreement-map layer of ai.compare: both (green), only A (orange), only B (blue)."""

from __future__ import annotations

import numpy as np

from viewer.core.volume import Volume
from viewer.render.layers.base import Z_AGREEMENT, SliceLayer, on_grid, rgba_slice, show_rgba
from viewer.render.layers.labels import colour_labels, label_tables
from viewer.render.slice_geometry import SliceGeometry

#: Agreement overlay colours (RGB 0-255) by ai.compare code: 1 both, 2 only A, 3 only B.
AGREEMENT_COLORS = {1: (40, 200, 60), 2: (255, 120, 0), 3: (40, 120, 255)}
AGREEMENT_OPACITY = 0.5


class AgreementLayer(SliceLayer):
    """An ai.compare agreement map (codes 1-3) on the image's grid, as translucent areas."""

    def __init__(self, geometry: SliceGeometry):
        super().__init__(geometry)
        self.actor = rgba_slice(Z_AGREEMENT)
        self.props = [self.actor]
        self.codes: np.ndarray | None = None
        self.tables = label_tables(AGREEMENT_COLORS, 3, AGREEMENT_OPACITY)

    def clear(self) -> None:
        self.set_agreement(None)

    def set_agreement(self, amap: Volume | np.ndarray | None) -> None:
        """Show ``amap`` (a Volume on any grid, or an array on this grid); None removes it."""
        self.codes = None if amap is None else on_grid(amap, self.geometry.volume, nearest=True).astype(
            np.uint8, copy=False)
        if self.geometry.volume is not None:
            self.update()

    def update(self) -> None:
        codes = None if self.codes is None else self.geometry.plane(self.codes)
        if codes is None or not codes.any():
            self.actor.VisibilityOff()
            return
        show_rgba(self.actor, colour_labels(codes, *self.tables, outline=False), self.geometry.plane_spacing)
