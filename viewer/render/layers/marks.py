"""Line marks over the image: the crosshair through the cursor and the brush outline."""

from __future__ import annotations

import numpy as np

from viewer.render.layers.base import Z_MARKS, SliceLayer
from viewer.render.polylines import polyline_actor, set_polyline_points
from viewer.render.slice_geometry import SliceGeometry

CROSSHAIR_COLOR = (0.2, 0.9, 0.2)
BRUSH_COLOR = (1.0, 1.0, 0.3)
BRUSH_OUTLINE_POINTS = 48


class CrosshairLayer(SliceLayer):
    """Two lines through the cursor across the whole slice."""

    def __init__(self, geometry: SliceGeometry):
        super().__init__(geometry)
        self.actor = polyline_actor(np.zeros((4, 2)), Z_MARKS, CROSSHAIR_COLOR, segments=True)
        self.actor.VisibilityOff()
        self.props = [self.actor]

    def set_visible(self, visible: bool) -> None:
        """Show or hide the crosshair (until the next cursor move shows it again)."""
        self.actor.SetVisibility(bool(visible))

    def update(self) -> None:
        geo = self.geometry
        col, row, _ = geo.plane_of(geo.cursor)
        su, sv = geo.plane_spacing
        cols, rows = geo.plane_size
        u, v = col * su, row * sv
        pts = ((-0.5 * su, v), ((cols - 0.5) * su, v), (u, -0.5 * sv), (u, (rows - 0.5) * sv))
        set_polyline_points(self.actor, pts, Z_MARKS)
        self.actor.VisibilityOn()


class BrushLayer(SliceLayer):
    """The outline of the paint brush: its cut with the current slice at the mouse position."""

    def __init__(self, geometry: SliceGeometry):
        super().__init__(geometry)
        self.actor = polyline_actor(np.zeros((BRUSH_OUTLINE_POINTS + 1, 2)), Z_MARKS, BRUSH_COLOR)
        self.actor.VisibilityOff()
        self.props = [self.actor]

    def clear(self) -> None:
        self.actor.VisibilityOff()

    def set_outline(self, world_xyz, radius_mm: float = 0.0) -> None:
        """Outline of a brush of ``radius_mm`` centred on ``world_xyz`` (a sphere and a disc brush cut the
        slice alike at their centre); ``None`` hides it."""
        if world_xyz is None or self.geometry.volume is None:
            self.actor.VisibilityOff()
            return
        u, v = self.geometry.scene_of(world_xyz)
        t = np.linspace(0, 2 * np.pi, BRUSH_OUTLINE_POINTS + 1)  # closed: the last point is the first
        set_polyline_points(self.actor, np.column_stack([u + radius_mm * np.cos(t), v + radius_mm * np.sin(t)]),
                            Z_MARKS)
        self.actor.VisibilityOn()
