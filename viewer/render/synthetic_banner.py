"""A red "SYNTHETIC — not acquired" banner in every render view that shows a synthetic volume (``Volume.synthetic``:
made by a model, e.g. a CT synthesised from an MR), as the image or as a fused overlay: never mistakable for
acquired data. The banner re-reads what its view shows at the start of every render, so no code path that
changes the image or the overlay can leave it stale."""

from __future__ import annotations

import weakref
from collections.abc import Callable

from vtkmodules.vtkRenderingCore import vtkCoordinate, vtkRenderer, vtkTextActor

from viewer.core.volume import SYNTHETIC_PREFIX, Volume

BANNER = "SYNTHETIC \u2014 not acquired"
BANNER_RGB = (0.85, 0.0, 0.0)
#: Pixels from the view's top edge: below the top orientation letter of a slice view.
TOP_OFFSET_PX = 28
#: Smallest and largest font size; a character is about CHAR_WIDTH x the font size wide (Arial, bold).
FONT_SIZES = (9, 18)
CHAR_WIDTH = 0.62


def banner_text(image: Volume | None, overlay: Volume | None = None) -> str:
    """The banner's lines for what a view shows ("" when nothing shown is synthetic): BANNER, then what made it
    (the volume's statement after its SYNTHETIC prefix), for the image and for the fused overlay."""
    lines = []
    for vol, what in ((image, ""), (overlay, "FUSED OVERLAY ")):
        if vol is not None and vol.is_synthetic:
            made = vol.synthetic[len(SYNTHETIC_PREFIX):].strip() if vol.synthetic.upper().startswith(
                SYNTHETIC_PREFIX) else vol.synthetic
            lines += [f"{what}{BANNER}", made]
    return "\n".join(line for line in lines if line)


def font_size(text: str, width_px: int) -> int:
    """The largest font size (FONT_SIZES) at which the widest line of ``text`` fits ``width_px``."""
    widest = max((len(line) for line in text.splitlines()), default=1)
    return int(min(FONT_SIZES[1], max(FONT_SIZES[0], 0.95 * width_px / (CHAR_WIDTH * widest))))


class SyntheticBanner:
    """White bold text on a red box at the top centre of ``renderer``, shown while ``shown()`` -> (image, overlay)
    holds a synthetic volume."""

    def __init__(self, renderer: vtkRenderer, shown: Callable[[], tuple[Volume | None, Volume | None]]):
        self.shown, self.renderer = shown, renderer
        self.actor = vtkTextActor()
        text = self.actor.GetTextProperty()
        text.SetFontSize(FONT_SIZES[1])
        text.BoldOn()
        text.SetColor(1.0, 1.0, 1.0)
        text.SetBackgroundColor(*BANNER_RGB)
        text.SetBackgroundOpacity(0.9)
        text.SetJustificationToCentered()
        text.SetVerticalJustificationToTop()
        reference = vtkCoordinate()
        reference.SetCoordinateSystemToNormalizedViewport()
        reference.SetValue(0.5, 1.0, 0)
        position = self.actor.GetPositionCoordinate()
        position.SetCoordinateSystemToViewport()
        position.SetReferenceCoordinate(reference)
        position.SetValue(0, -TOP_OFFSET_PX, 0)
        self.actor.VisibilityOff()
        renderer.AddViewProp(self.actor)
        refresh = weakref.WeakMethod(self.refresh)  # the renderer must not keep the view alive
        renderer.AddObserver("StartEvent", lambda *_: refresh() and refresh()())

    @property
    def text(self) -> str:
        """The banner's text ("" while hidden)."""
        return (self.actor.GetInput() or "") if self.actor.GetVisibility() else ""

    def refresh(self) -> None:
        """Show or hide the banner for what the view shows now (called at the start of each render)."""
        text = banner_text(*self.shown())
        if text != (self.actor.GetInput() or ""):
            self.actor.SetInput(text)
        if text:
            self.actor.GetTextProperty().SetFontSize(font_size(text, self.renderer.GetSize()[0]))
        self.actor.SetVisibility(bool(text))
