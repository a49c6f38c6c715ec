"""Fusion state (Qt-free): the fixed and moving volumes, the registration transform, how the overlay is drawn,
one undoable registration step and the landmark lists, as one observable parameter object.

The GUI binds its fusion and registration panels to a :class:`FusionState`; views redraw on its events. The
transform follows ITK's convention (viewer.core.registration.Transform): fixed world point -> moving world
point. A registration result is first *proposed* (shown, e.g. in checkerboard blending, for inspection), then
accepted or rejected; one accepted step can be undone.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, fields, replace

import numpy as np

from viewer.core.errors import RegistrationError
from viewer.core.events import Event
from viewer.core.presets import auto_window_level
from viewer.core.registration import LandmarkResult, Transform, register_landmarks
from viewer.core.volume import Volume

log = logging.getLogger(__name__)

#: Colour maps of the overlay (the same names as viewer.render.colormaps.FUSION_COLORMAPS, a test checks).
FUSION_COLORMAPS = ("hot", "inferno", "rainbow", "gray")
#: Blend modes (the same as viewer.render.layers.fusion.BLEND_MODES, a test checks).
BLEND_MODES = ("alpha", "checkerboard", "difference")
#: Landmark roles: points picked in the fixed image and, in the same order, in the moving image.
ROLES = ("fixed", "moving")
#: Default lower threshold, as a fraction of the window above its low end (hides air and fat on PET).
DEFAULT_THRESHOLD_FRACTION = 0.1


@dataclass(frozen=True)
class FusionDisplay:
    """How the moving volume is drawn over the fixed one (field for field the render layer's FusionStyle).

    Attributes:
        colormap: 'hot', 'inferno', 'rainbow' (PET) or 'gray' (MR over CT).
        opacity: 0-1, the overlay's weight in 'alpha' and 'difference' blending.
        window: (low, high) moving values spanning the colour map (SUV for a PET in SUVbw).
        threshold: moving values below it are transparent; None: the window's low end.
        blend: 'alpha', 'checkerboard' or 'difference'.
        tile_mm: checkerboard tile size in mm.
        visible: whether the overlay is drawn.
    """

    colormap: str = "hot"
    opacity: float = 0.5
    window: tuple[float, float] = (0.0, 6.0)
    threshold: float | None = None
    blend: str = "alpha"
    tile_mm: float = 20.0
    visible: bool = True

    def __post_init__(self) -> None:
        if self.colormap not in FUSION_COLORMAPS:
            raise ValueError(f"unknown fusion colour map {self.colormap!r}; known: {', '.join(FUSION_COLORMAPS)}")
        if self.blend not in BLEND_MODES:
            raise ValueError(f"unknown blend mode {self.blend!r}; known: {', '.join(BLEND_MODES)}")
        if not 0.0 <= self.opacity <= 1.0:
            raise ValueError(f"fusion opacity must be within 0-1, got {self.opacity}")
        low, high = self.window
        if not high > low:
            raise ValueError(f"fusion window must have high > low, got {self.window}")
        if self.tile_mm <= 0:
            raise ValueError(f"checkerboard tile size must be positive, got {self.tile_mm} mm")
        object.__setattr__(self, "window", (float(low), float(high)))

    @classmethod
    def for_volume(cls, moving: Volume, **changes) -> FusionDisplay:
        """The display a moving volume starts with: 'hot' for PET ('gray' otherwise) over its default window
        (PET in SUVbw: SUV 0-6), threshold 10% into the window, opacity 0.5; ``changes`` override fields."""
        width, level = auto_window_level(moving)
        low, high = level - width / 2, level + width / 2
        pet = moving.modality == "PT" or moving.units == "SUVbw"
        display = cls(colormap="hot" if pet else "gray", window=(low, high),
                      threshold=low + DEFAULT_THRESHOLD_FRACTION * (high - low))
        return replace(display, **changes)

    def to_json(self) -> dict:
        """A JSON-able dict of the fields."""
        return {**asdict(self), "window": list(self.window)}

    @classmethod
    def from_json(cls, doc: dict) -> FusionDisplay:
        """The display saved by :meth:`to_json` (unknown keys ignored, missing ones defaulted)."""
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in doc.items() if k in known}
        if "window" in values:
            values["window"] = tuple(values["window"])
        return cls(**values)


class FusionState:
    """The fused pair and its registration, observable.

    Events (plain Python, no Qt; subscribers run on the thread that changed the state, the GUI's):
        volumes_changed(): the fixed or moving volume changed (the transform was reset with it).
        transform_changed(): the transform shown (:attr:`shown_transform`) changed: a proposal, accept,
            reject, undo or a loaded file.
        display_changed(): :attr:`display` changed.
        landmarks_changed(): a landmark was added or removed.
    """

    def __init__(self) -> None:
        self.fixed: Volume | None = None
        self.moving: Volume | None = None
        self.transform: Transform = Transform.identity()
        self.candidate: Transform | None = None
        self.previous: Transform | None = None
        self.display = FusionDisplay()
        self.landmarks: dict[str, list[np.ndarray]] = {role: [] for role in ROLES}
        self.volumes_changed = Event()
        self.transform_changed = Event()
        self.display_changed = Event()
        self.landmarks_changed = Event()

    # ------------------------------------------------------------------ volumes
    @property
    def active(self) -> bool:
        """Whether a moving volume is fused over a fixed one."""
        return self.fixed is not None and self.moving is not None

    def set_fixed(self, vol: Volume | None) -> None:
        """Fuse over ``vol``; a different fixed volume drops the moving one (its transform belonged to the pair)."""
        if vol is self.fixed:
            return
        self.fixed = vol
        self._reset_pair(None, Transform.identity())

    def set_moving(self, vol: Volume | None, transform: Transform | None = None,
                   display: FusionDisplay | None = None) -> None:
        """Fuse ``vol`` over the fixed volume through ``transform`` (identity: the scanners' shared world
        frame) drawn with ``display`` (default: :meth:`FusionDisplay.for_volume`); None removes the overlay.
        Landmarks, a pending proposal and the undo step are dropped."""
        if vol is not None:
            if self.fixed is None:
                raise RegistrationError("choose the fixed image before fusing a second one over it")
            if vol is self.fixed:
                raise RegistrationError(f"'{vol.description}' is the fixed image; fuse a different volume over it")
            vol.require_scalar("fusion")
            self.display = display or FusionDisplay.for_volume(vol)
        self._reset_pair(vol, transform or Transform.identity())

    def _reset_pair(self, moving: Volume | None, transform: Transform) -> None:
        self.moving = moving
        self.transform, self.candidate, self.previous = transform, None, None
        self.landmarks = {role: [] for role in ROLES}
        self.volumes_changed.emit()
        self.transform_changed.emit()
        self.landmarks_changed.emit()
        self.display_changed.emit()

    # ------------------------------------------------------------------ transform: propose, accept, undo
    @property
    def shown_transform(self) -> Transform:
        """The transform the views use: the proposal under inspection, else the accepted one."""
        return self.candidate if self.candidate is not None else self.transform

    @property
    def can_undo(self) -> bool:
        return self.previous is not None

    def propose(self, transform: Transform) -> None:
        """Show ``transform`` (a registration result) for inspection without accepting it yet."""
        self._require_pair("propose a registration")
        self.candidate = transform
        self.transform_changed.emit()

    def accept(self) -> Transform:
        """Make the proposal the transform; the one it replaces becomes the undo step. Returns it."""
        if self.candidate is None:
            raise RegistrationError("there is no registration result to accept")
        self.previous, self.transform, self.candidate = self.transform, self.candidate, None
        log.info("fusion: accepted %s", self.transform.description)
        self.transform_changed.emit()
        return self.transform

    def reject(self) -> None:
        """Drop the proposal; the accepted transform is shown again."""
        if self.candidate is not None:
            self.candidate = None
            self.transform_changed.emit()

    def undo(self) -> bool:
        """Go back to the transform before the last accepted step (one step only); False if there is none."""
        if self.previous is None:
            return False
        self.transform, self.previous, self.candidate = self.previous, None, None
        self.transform_changed.emit()
        return True

    def set_transform(self, transform: Transform) -> None:
        """Replace the transform at once (a loaded file, a nudge): an undoable step, any proposal dropped."""
        self._require_pair("set a transform")
        self.candidate = transform
        self.accept()

    # ------------------------------------------------------------------ points through the transform
    def moving_point(self, fixed_xyz) -> np.ndarray:
        """Where fixed world point ``fixed_xyz`` (LPS mm) lies in the moving image, through the shown transform."""
        return self.shown_transform.fixed_to_moving(np.asarray(fixed_xyz, float))

    def fixed_point(self, moving_xyz) -> np.ndarray | None:
        """Where moving world point ``moving_xyz`` lies in the fixed image; None for a B-spline (no inverse)."""
        transform = self.shown_transform
        if not transform.is_linear:
            return None
        return transform.moving_to_fixed(np.asarray(moving_xyz, float))

    # ------------------------------------------------------------------ display
    def set_display(self, display: FusionDisplay | None = None, **changes) -> None:
        """Replace the display, or change some of its fields (``colormap=``, ``opacity=``, ``blend=``, ...)."""
        new = replace(display or self.display, **changes)
        if new != self.display:
            self.display = new
            self.display_changed.emit()

    # ------------------------------------------------------------------ landmarks
    def add_landmark(self, role: str, world_xyz) -> int:
        """Append a ``role`` ('fixed' or 'moving') landmark at world LPS mm; returns its number (1-based)."""
        if role not in ROLES:
            raise ValueError(f"landmark role must be one of {ROLES}, got {role!r}")
        self.landmarks[role].append(np.asarray(world_xyz, float).copy())
        self.landmarks_changed.emit()
        return len(self.landmarks[role])

    def remove_last_landmark(self, role: str) -> bool:
        """Remove the last ``role`` landmark; False if there was none."""
        if not self.landmarks[role]:
            return False
        self.landmarks[role].pop()
        self.landmarks_changed.emit()
        return True

    def clear_landmarks(self) -> None:
        self.landmarks = {role: [] for role in ROLES}
        self.landmarks_changed.emit()

    @property
    def landmark_pairs(self) -> int:
        """Number of complete (fixed, moving) landmark pairs."""
        return min(len(self.landmarks["fixed"]), len(self.landmarks["moving"]))

    def register_landmarks(self, kind: str = "rigid") -> LandmarkResult:
        """Compute the ``kind`` landmark transform from the pairs and propose it; RegistrationError when the
        lists differ in length or cannot determine the transform."""
        self._require_pair("register landmarks")
        fixed, moving = self.landmarks["fixed"], self.landmarks["moving"]
        if len(fixed) != len(moving):
            raise RegistrationError(f"{len(fixed)} fixed landmarks but {len(moving)} moving landmarks; "
                                    "place them in pairs")
        result = register_landmarks(np.array(fixed).reshape(-1, 3), np.array(moving).reshape(-1, 3), kind)
        self.propose(result.transform)
        return result

    def _require_pair(self, what: str) -> None:
        if not self.active:
            raise RegistrationError(f"choose a fixed and a moving image to {what}")
