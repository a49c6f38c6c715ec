"""Co-registration (Qt-free, SimpleITK): intensity and landmark registration producing Transform objects.

Public API (stable; the render/UI fusion side consumes it):

``Transform`` (viewer.core.registration.transform) -- maps FIXED-space world points (LPS mm) to MOVING-space
world points, ITK's convention, so ``.tfm``/``.h5`` files interoperate with Slicer, elastix and ANTs:

- ``t.sitk``: the SimpleITK transform; ``t.description``: how it was made.
- ``t.fixed_to_moving(points_lps)`` (shape (3,) or (n, 3)) and ``t.moving_to_fixed(points_lps)`` (linear only).
- ``t.is_linear``; ``t.matrix``: 4x4 homogeneous fixed -> moving matrix, None for a B-spline;
  ``t.offset``: its translation column (mm), None for a B-spline.
  Display: to show the moving image on the fixed grid, reslice the moving volume at
  ``matrix @ fixed_world_point`` (linear), or use ``t.resample(moving, fixed)`` as a cache (B-spline).
- ``t.inverse()``: moving -> fixed (RegistrationError for a B-spline).
- ``t.compose_nudge(translation_mm, rotation_deg, center_lps)``: a new Transform after moving the moving
  image, as seen on the fixed grid, by a small rigid motion (rotation about ``center_lps`` in degrees about
  LPS x, y, z, then translation in mm). Content shown at fixed point p is shown at motion(p) afterwards.
- ``t.save(path)`` / ``Transform.load(path)``: ITK transform files (.tfm/.txt text, .h5).
- ``t.resample(moving, fixed, interpolator='linear'|'nearest'|'bspline')`` -> Volume on fixed's grid in
  moving's dtype/modality/units (PET stays float SUVbw, CT int16 HU; no integer overflow). The moving voxels
  are never changed.
- ``Transform.identity()``, ``Transform.from_matrix(m4x4)``.

Registration (viewer.core.registration.intensity / landmarks):

- ``register(fixed, moving, method='rigid'|'affine'|'bspline', init='geometry'|'moments', fixed_mask=None,
  moving_mask=None, progress=None, cancel=None) -> RegistrationResult`` (``.transform``, ``.metric``,
  ``.iterations``, ``.seconds``): Mattes mutual information, multi-resolution; RegistrationError naming both
  inputs when they do not overlap or share no information; ``Cancelled`` when ``cancel`` is set.
- ``register_landmarks(fixed_points, moving_points, kind='rigid'|'similarity'|'affine') -> LandmarkResult``
  (``.transform``, ``.fre_mm``, ``.errors_mm``) from >= 3 point pairs in world LPS mm;
  ``read_landmarks(path)``: a JSON list of [x, y, z].
- ``register(..., initial=transform)`` refines a linear start (landmarks, a nudged transform).

Also: ``placement.place_on_first(volumes, transforms)`` (multi-input models: extra inputs on the first's grid),
``checks`` (overlap / shared-information errors), ``synthetic`` (known-truth test pairs).
"""

from viewer.core.registration.intensity import RegistrationResult, RegistrationSettings, register
from viewer.core.registration.landmarks import LandmarkResult, read_landmarks, register_landmarks
from viewer.core.registration.transform import Transform

__all__ = ["LandmarkResult", "RegistrationResult", "RegistrationSettings", "Transform", "read_landmarks",
           "register", "register_landmarks"]
