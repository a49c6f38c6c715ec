"""Measurements drawn in a SliceView's renderer: ruler, angle, ellipse and rectangle ROIs with their text.

Actors live in the view's 2D scene (millimetres of the displayed slice), so they follow zoom and pan;
a measurement shows only in a view of its orientation and image when that view is at its slice.
"""

from __future__ import annotations

import numpy as np
import vtkmodules.vtkRenderingFreeType  # noqa: F401  (text rendering)
from vtkmodules.vtkRenderingCore import vtkTextActor

from viewer.core.measurements import Measurement, image_key, slice_of
from viewer.render.polylines import polyline_actor
from viewer.render.slice_view import SliceView

MEASURE_COLOR = (1.0, 0.85, 0.1)
PENDING_COLOR = (0.3, 0.85, 1.0)
SELECTED_COLOR = (1.0, 0.35, 0.2)
#: Height of measurement graphics above the image, label overlay (0.1) and crosshair (0.2).
_Z = 0.3
_ELLIPSE_POINTS = 72


class MeasureOverlay:
    """The measurements of one SliceView: ``show(measurements, pending, selected)`` redraws them."""

    def __init__(self, view: SliceView):
        self.view = view
        self._props: list = []

    @property
    def prop_count(self) -> int:
        """Number of VTK props (lines and texts) currently drawn."""
        return len(self._props)

    def is_visible(self, m: Measurement) -> bool:
        """True when ``m`` belongs to this view's orientation and image (any image when it names none) and
        the view is at its slice."""
        vol = self.view.volume
        if vol is None or m.orientation != self.view.orientation or (m.image and m.image != image_key(vol)):
            return False
        return slice_of(vol, m.orientation, m.points_mm[0]) == self.view.slice_index

    def show(self, measurements: list[Measurement], pending: tuple[str, list] | None = None,
             selected: Measurement | None = None) -> None:
        """Draw the visible ``measurements`` (``selected`` highlighted) and ``pending`` (kind, world points)
        being drawn; the caller renders."""
        self.clear()
        if self.view.volume is None:
            return
        for m in measurements:
            if self.is_visible(m):
                self._draw(m.kind, m.points_mm, m.text, SELECTED_COLOR if m is selected else MEASURE_COLOR)
        if pending is not None and pending[1]:
            self._draw(pending[0], pending[1], "", PENDING_COLOR)

    def clear(self) -> None:
        for prop in self._props:
            self.view.renderer.RemoveViewProp(prop)
        self._props.clear()

    # ------------------------------------------------------------------ drawing
    def _scene(self, world) -> np.ndarray:
        """Scene (u, v) in mm of world points (n, 3) on this view."""
        vol, axes = self.view.volume, self.view.axes
        su, sv = self.view.plane_spacing
        out = []
        for p in np.atleast_2d(np.asarray(world, float)):
            col, row, _ = axes.index_to_plane(vol.world_to_index(p), vol.size)
            out.append((col * su, row * sv))
        return np.asarray(out)

    def _draw(self, kind: str, points, text: str, color) -> None:
        uv = self._scene(points)
        if kind in ("ruler", "angle"):
            self._polyline(uv, color)
            anchor = uv[1] if kind == "angle" and len(uv) > 2 else uv.mean(axis=0)
        else:
            (u0, v0), (u1, v1) = uv.min(axis=0), uv.max(axis=0)
            if kind == "rectangle":
                outline = np.array([(u0, v0), (u1, v0), (u1, v1), (u0, v1), (u0, v0)])
            else:
                t = np.linspace(0, 2 * np.pi, _ELLIPSE_POINTS + 1)
                cu, cv, ru, rv = (u0 + u1) / 2, (v0 + v1) / 2, (u1 - u0) / 2, (v1 - v0) / 2
                outline = np.column_stack([cu + ru * np.cos(t), cv + rv * np.sin(t)])
            self._polyline(outline, color)
            anchor = np.array([u1, v1])
        if text:
            self._text(anchor, text, color)

    def _polyline(self, uv: np.ndarray, color) -> None:
        self._add(polyline_actor(uv, _Z, color, width=2))

    def _text(self, uv, text: str, color) -> None:
        actor = vtkTextActor()
        actor.SetInput(text)
        prop = actor.GetTextProperty()
        prop.SetFontSize(14)
        prop.SetColor(*color)
        prop.ShadowOn()
        prop.SetVerticalJustificationToBottom()
        coord = actor.GetPositionCoordinate()
        coord.SetCoordinateSystemToWorld()
        coord.SetValue(float(uv[0]), float(uv[1]), _Z)
        self._add(actor)

    def _add(self, prop) -> None:
        self.view.renderer.AddViewProp(prop)
        self._props.append(prop)

    def texts(self) -> list[str]:
        """The texts currently drawn (for tests and accessibility)."""
        return [p.GetInput() for p in self._props if isinstance(p, vtkTextActor)]
