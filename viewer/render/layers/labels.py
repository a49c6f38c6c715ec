"""The label-map layer: coloured areas with opaque outlines, following in-place edits of a Segmentation."""

from __future__ import annotations

import numpy as np

from viewer.core.labels import LABEL_SOURCE_META
from viewer.core.resample import resample_to
from viewer.core.volume import Volume
from viewer.render.colormaps import label_color
from viewer.render.layers.base import Z_LABELS, SliceLayer, nonzero_box, rgba_slice, show_rgba
from viewer.render.layers.image import SLICE_CACHE_DELAY_S, ImageLayer
from viewer.render.slice_cache import XMajorCache

DEFAULT_LABEL_OPACITY = 0.4


def label_tables(colors: dict[int, tuple[int, int, int]], max_label: int, opacity: float | dict[int, float],
                 hidden=()) -> tuple[np.ndarray, np.ndarray]:
    """Packed RGBA (uint32) per label id for area pixels (``opacity``: one for all, or per label id with
    DEFAULT_LABEL_OPACITY for the others) and for outline pixels (opaque); id 0 and ``hidden`` ids
    transparent; ids missing from ``colors`` get the default palette."""
    n = max(max_label + 1, 2)
    fill = np.zeros((n, 4), np.uint8)
    per_label = opacity if isinstance(opacity, dict) else {}
    default = DEFAULT_LABEL_OPACITY if isinstance(opacity, dict) else float(opacity)
    for lab in range(1, n):
        fill[lab, :3] = colors.get(lab) or label_color(lab)
        fill[lab, 3] = round(255 * float(np.clip(per_label.get(lab, default), 0.0, 1.0)))
    edge = fill.copy()
    edge[1:, 3] = 255
    hidden = [h for h in hidden if h < n]
    fill[hidden, 3] = edge[hidden, 3] = 0
    return fill.view(np.uint32).ravel(), edge.view(np.uint32).ravel()


def colour_labels(lab: np.ndarray, fill32: np.ndarray, edge32: np.ndarray, outline: bool) -> np.ndarray:
    """RGBA (rows, cols, 4) uint8 of a label slice: areas from ``fill32``, boundary pixels from ``edge32``."""
    rgba = fill32.take(lab)
    if outline:
        edge = np.zeros(lab.shape, bool)
        vertical = lab[1:, :] != lab[:-1, :]
        horizontal = lab[:, 1:] != lab[:, :-1]
        edge[1:, :] |= vertical
        edge[:-1, :] |= vertical
        edge[:, 1:] |= horizontal
        edge[:, :-1] |= horizontal
        rgba[edge] = edge32.take(lab[edge])
    return rgba.view(np.uint8).reshape(*lab.shape, 4)


class LabelLayer(SliceLayer):
    """A label map on the image's grid, drawn with per-label colours and opacity; outlines opaque."""

    def __init__(self, image: ImageLayer):
        super().__init__(image.geometry)
        self.image = image
        self.actor = rgba_slice(Z_LABELS)
        self.props = [self.actor]
        self.labels: np.ndarray | None = None
        self.source = None  # the Segmentation whose array ``labels`` is, followed for edited boxes
        self.cache = XMajorCache()
        self.hidden: set[int] = set()
        self.colors: dict[int, tuple[int, int, int]] = {}
        self.opacity: float | dict[int, float] = DEFAULT_LABEL_OPACITY
        self.outline = True
        self.fill32 = self.edge32 = np.zeros(2, np.uint32)

    def clear(self) -> None:
        self.set_labels(None)

    def set_labels(self, labels: Volume | np.ndarray | None, colors: dict | None = None,
                   opacity: float | dict[int, float] = DEFAULT_LABEL_OPACITY, outline: bool = True) -> None:
        """Overlay a label map (a Volume on any grid, resampled by world geometry; or an array on this grid).

        ``colors`` maps label id -> (r, g, b) 0-255 (default palette otherwise); areas are drawn with
        ``opacity`` (one value, or {label id: value}) and, with ``outline``, their boundary pixels opaque.
        The array is kept by reference: call ``update_labels`` after editing it in place.
        """
        self._follow(None)
        if labels is None:
            self.labels = None
            self.cache.invalidate(None)
            self.actor.VisibilityOff()
            return
        grid = self.geometry.volume
        source = labels.meta.get(LABEL_SOURCE_META) if isinstance(labels, Volume) else None
        if isinstance(labels, Volume):
            labels = resample_to(labels, grid, nearest=True).array
        if labels.shape != grid.array.shape[:3]:
            raise ValueError(f"label array shape {labels.shape} differs from the image {grid.array.shape[:3]}")
        if not np.issubdtype(labels.dtype, np.integer):
            labels = np.rint(labels).astype(np.int32)
        if labels.size and labels.min() < 0:
            raise ValueError("label maps hold non-negative ids; this one has negative values")
        self.labels = labels
        self._follow(source)
        self.image.cache_voxels(self.cache, labels, delay_s=0.0)
        self.colors = dict(colors or {})
        self.opacity = dict(opacity) if isinstance(opacity, dict) else float(opacity)
        self.outline = outline
        self._build_tables(int(labels.max()) if labels.size else 0)
        self.update()

    def _build_tables(self, max_label: int) -> None:
        self.fill32, self.edge32 = label_tables(self.colors, max_label, self.opacity, self.hidden)

    def set_label_visible(self, label: int, visible: bool) -> None:
        """Show or hide one label id."""
        (self.hidden.discard if visible else self.hidden.add)(int(label))
        if self.labels is not None:
            self._build_tables(max(int(self.labels.max()), int(label)))
            self.update()

    def update_labels(self, region: tuple[slice, slice, slice] | None = None) -> None:
        """Redraw after the label array changed in place inside ``region`` (z, y, x slices).

        ``region`` None: anywhere, so the x-major copy is rebuilt, unless the labels are a Segmentation's
        shown on its own grid, whose ``changed`` events have already patched the edited boxes into it.
        """
        if self.labels is None:
            return
        if region is not None:
            self.cache.update(self.labels, region, SLICE_CACHE_DELAY_S)
        elif not self._follows_edits:
            self.image.cache_voxels(self.cache, self.labels)
        self.update()

    def _follow(self, source) -> None:
        """Take the edited boxes of Segmentation ``source`` (None: of none) from its ``changed`` event."""
        if self.source is not None:
            self.source.changed.disconnect(self._on_source_changed)
        self.source = source
        if source is not None:
            source.changed.connect(self._on_source_changed)

    @property
    def _follows_edits(self) -> bool:
        """Whether the shown label array is the followed Segmentation's (not resampled, not replaced)."""
        return self.source is not None and self.source.array is self.labels

    def _on_source_changed(self, box: tuple[slice, slice, slice]) -> None:
        """The followed Segmentation changed inside ``box``: patch the x-major copy (redrawn by update_labels)."""
        if self._follows_edits:
            self.cache.update(self.labels, box, SLICE_CACHE_DELAY_S)

    def update(self) -> None:
        if self.labels is None:
            return
        lab = self.geometry.plane(self.labels, self.cache)
        box = nonzero_box(lab, pad=1)  # one pixel around: outline pixels at the box edge are found too
        if box is None:
            self.actor.VisibilityOff()
            return
        lab = lab[box]
        if int(lab.max()) >= len(self.fill32):  # an id added since set_labels (in-place edit)
            self._build_tables(int(lab.max()))
        show_rgba(self.actor, colour_labels(lab, self.fill32, self.edge32, self.outline), self.geometry.plane_spacing,
                  (box[0].start, box[1].start))
