"""Text over a slice view: the patient-direction letters at the edges and the corner annotation."""

from __future__ import annotations

from vtkmodules.vtkRenderingAnnotation import vtkCornerAnnotation
from vtkmodules.vtkRenderingCore import vtkCoordinate, vtkTextActor

from viewer.core.slicing import orientation_letters
from viewer.render.layers.base import SliceLayer
from viewer.render.layers.image import ImageLayer
from viewer.render.slice_geometry import SliceGeometry

LETTER_COLOR = (1.0, 0.85, 0.2)
LETTER_BACKGROUND_OPACITY = 0.55
#: Pixels between the view's bottom edge and the bottom orientation letter: clear of the corner text.
BOTTOM_LETTER_OFFSET_PX = 24
#: Orientation letters at the middle of each edge, a few pixels in, the bottom one above the corner text:
#: side -> (normalized viewport anchor, pixel offset, horizontal and vertical justification).
LETTER_PLACES = {"left": ((0, 0.5), (4, 0), "Left", "Centered"),
                 "right": ((1, 0.5), (-4, 0), "Right", "Centered"),
                 "top": ((0.5, 1), (0, -4), "Centered", "Top"),
                 "bottom": ((0.5, 0), (0, BOTTOM_LETTER_OFFSET_PX), "Centered", "Bottom")}


def letter_actor(side: str) -> vtkTextActor:
    """The orientation letter of screen edge ``side`` (placed per ``LETTER_PLACES``): yellow on a translucent
    dark box, readable on black and on white (PET inverse grey) images alike."""
    anchor, offset, horizontal, vertical = LETTER_PLACES[side]
    actor = vtkTextActor()
    text = actor.GetTextProperty()
    text.SetFontSize(16)
    text.SetColor(*LETTER_COLOR)
    text.BoldOn()
    text.SetBackgroundColor(0.0, 0.0, 0.0)
    text.SetBackgroundOpacity(LETTER_BACKGROUND_OPACITY)
    text.SetFrame(False)
    getattr(text, f"SetJustificationTo{horizontal}")()
    getattr(text, f"SetVerticalJustificationTo{vertical}")()
    reference = vtkCoordinate()
    reference.SetCoordinateSystemToNormalizedViewport()
    reference.SetValue(*anchor, 0)
    position = actor.GetPositionCoordinate()
    position.SetCoordinateSystemToViewport()
    position.SetReferenceCoordinate(reference)
    position.SetValue(*offset, 0)
    return actor


class OrientationLayer(SliceLayer):
    """Patient-direction letters (L/R, A/P, S/I) at the middle of the four screen edges."""

    def __init__(self, geometry: SliceGeometry):
        super().__init__(geometry)
        self.letters = {side: letter_actor(side) for side in LETTER_PLACES}
        for side, letter in orientation_letters(geometry.orientation).items():
            self.letters[side].SetInput(letter)
        self.props = list(self.letters.values())


class CornerTextLayer(SliceLayer):
    """Corner text: view, slice number and position (lower left), window/level (lower right), and a probe
    text (upper left) set by the caller."""

    def __init__(self, image: ImageLayer):
        super().__init__(image.geometry)
        self.image = image
        self.corner = vtkCornerAnnotation()
        self.corner.SetMaximumFontSize(14)
        self.corner.GetTextProperty().SetColor(0.9, 0.9, 0.6)
        self.corner.GetTextProperty().ShadowOn()  # readable on white (PET inverse grey) too
        self.props = [self.corner]

    def update(self) -> None:
        geo = self.geometry
        self.corner.SetText(0, f"{geo.orientation}  {geo.k + 1}/{geo.n_slices}  {geo.slice_position_mm:.1f} mm")
        image = self.image
        self.corner.SetText(1, "RGB" if image.is_rgb else f"W {image.window:g}  L {image.level:g}")

    def set_probe_text(self, text: str) -> None:
        """Text in the upper-left corner (value under the mouse, world position)."""
        self.corner.SetText(2, text)
