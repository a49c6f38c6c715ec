"""Intensity registration (SimpleITK): rigid / affine / B-spline by Mattes mutual information, multi-resolution."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import numpy as np

from viewer.core.errors import Cancelled, RegistrationError
from viewer.core.progress import CancelToken, ProgressCallback, no_progress
from viewer.core.registration.checks import (
    check_information,
    check_overlap,
    check_shared_information,
    input_name,
    registration_failed,
)
from viewer.core.registration.transform import Transform
from viewer.core.volume import Volume

log = logging.getLogger(__name__)

METHODS = ("rigid", "affine", "bspline")
INITS = ("geometry", "moments")


@dataclass(frozen=True)
class RegistrationSettings:
    """Knobs of the intensity registration (defaults tuned on the demo PET/CT and a real CT, see
    benchmarks/bench_registration.py).

    Attributes:
        histogram_bins: Mattes MI joint-histogram bins.
        samples: fixed-image points sampled at random per level (all voxels of a level smaller than that).
        shrink_factors / smoothing_mm: the pyramid, coarse to fine; smoothing sigmas in mm.
        iterations: gradient-descent iterations per level at most.
        work_spacing_mm: images are first resampled (anti-aliased) no finer than this, so the pyramid is
            built on small images; the transform is exact in world space whatever the working grid.
        bspline_mesh_mm: B-spline control-point spacing.
        seed: random sampling seed (results are reproducible).
    """

    histogram_bins: int = 32
    samples: int = 20000
    shrink_factors: tuple[int, ...] = (4, 2, 1)
    smoothing_mm: tuple[float, ...] = (8.0, 4.0, 0.0)
    iterations: int = 100
    work_spacing_mm: float = 3.0
    bspline_mesh_mm: float = 60.0
    seed: int = 42


@dataclass
class RegistrationResult:
    """What :func:`register` found: the fixed -> moving transform and how it got there."""

    transform: Transform
    metric: float  # final Mattes MI, SimpleITK's sign: more negative = more shared information
    iterations: int
    seconds: float
    stop_reason: str = ""
    levels: list[float] = field(default_factory=list)


def register(fixed: Volume, moving: Volume, *, method: str = "rigid", init: str = "geometry",
             fixed_mask: Volume | None = None, moving_mask: Volume | None = None,
             settings: RegistrationSettings | None = None, initial: Transform | None = None,
             progress: ProgressCallback | None = None, cancel: CancelToken | None = None) -> RegistrationResult:
    """Register ``moving`` to ``fixed``: the returned transform maps fixed world points to moving world points.

    Args:
        fixed, moving: the two images (any modalities: Mattes mutual information handles CT <- PET, CT <- MR).
        method: 'rigid' (Euler3D), 'affine' or 'bspline' (a rigid + affine start, then a B-spline).
        init: 'geometry' trusts the scanners' shared world frame (identity start, rotation about the fixed
            image's centre); 'moments' first aligns the intensity centres of mass (different frames).
        fixed_mask, moving_mask: optional label volumes (non-zero = use) limiting where the metric samples.
        settings: pyramid, sampling and optimiser knobs.
        initial: a transform to start from instead of ``init`` (e.g. from landmarks).
        progress, cancel: (fraction, message) callback and cancel token.

    Raises:
        RegistrationError naming both inputs when they do not overlap, share no information or the
        optimiser loses the overlap; Cancelled when ``cancel`` is set.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if init not in INITS:
        raise ValueError(f"init must be one of {INITS}, got {init!r}")
    settings = settings or RegistrationSettings()
    progress = progress or no_progress
    cancel = cancel or CancelToken()
    start = time.perf_counter()
    check_information(fixed, moving)
    fixed_img = _working_image(fixed, settings.work_spacing_mm)
    moving_img = _working_image(moving, settings.work_spacing_mm)
    if initial is not None:
        rigid = _as_euler(initial)
    else:
        rigid = _initial_rigid(fixed, moving, init)
    check_overlap(fixed, moving, rigid)
    stages = {"rigid": ["rigid"], "affine": ["rigid", "affine"], "bspline": ["rigid", "affine", "bspline"]}[method]
    current = rigid
    result = None
    for n, stage in enumerate(stages):
        span = (n / len(stages), (n + 1) / len(stages))
        result = _run_stage(stage, fixed_img, moving_img, current, fixed_mask, moving_mask, settings,
                            _scaled(progress, span, stage), cancel, (fixed, moving))
        current = result[0]
    tfm, metric, iterations, stop, levels = result
    check_shared_information(metric, fixed, moving)
    seconds = time.perf_counter() - start
    progress(1.0, f"{method} registration done")
    log.info("%s registration of %s to %s: MI %.4f, %d iterations, %.2f s", method, input_name(moving),
             input_name(fixed), metric, iterations, seconds)
    transform = Transform(tfm, f"{method} Mattes MI ({init} init)")
    return RegistrationResult(transform, metric, iterations, seconds, stop, levels)


def _scaled(progress: ProgressCallback, span: tuple[float, float], stage: str) -> ProgressCallback:
    lo, hi = span
    return lambda f, msg: progress(lo + (hi - lo) * f, f"{stage}: {msg}")


def _working_image(vol: Volume, spacing_mm: float):
    """``vol`` as a float32 SimpleITK image, block-averaged (anti-aliased) to voxels of about ``spacing_mm``
    where it is finer: the pyramid and the metric then run on a small image."""
    import SimpleITK as sitk

    f = np.maximum(np.floor(spacing_mm / np.asarray(vol.spacing) + 1e-6), 1).astype(int)  # (x, y, z) factors
    if np.all(f == 1):
        return sitk.Cast(vol.to_sitk(), sitk.sitkFloat32)
    fz, fy, fx = f[::-1]
    z, y, x = (n // k * k for n, k in zip(vol.array.shape, (fz, fy, fx), strict=True))
    blocks = vol.array[:z, :y, :x].reshape(z // fz, fz, y // fy, fy, x // fx, fx)
    small = blocks.mean(axis=(1, 3, 5), dtype=np.float32)
    img = sitk.GetImageFromArray(small)
    img.SetSpacing(tuple(float(v) for v in np.asarray(vol.spacing) * f))
    img.SetOrigin(tuple(vol.index_to_world((f - 1) / 2)))  # centre of the first block
    img.SetDirection(tuple(vol.direction.ravel()))
    return img


def _initial_rigid(fixed: Volume, moving: Volume, init: str):
    """Euler3D start: identity about the fixed centre ('geometry') or centre-of-mass alignment ('moments')."""
    import SimpleITK as sitk

    lo, hi = fixed.world_bounds()
    centre = (lo + hi) / 2
    shift = np.zeros(3)
    if init == "moments":
        centre = _centre_of_mass(fixed)
        shift = _centre_of_mass(moving) - centre
    return sitk.Euler3DTransform(tuple(map(float, centre)), 0.0, 0.0, 0.0, tuple(map(float, shift)))


def _centre_of_mass(vol: Volume) -> np.ndarray:
    """World centre of mass of ``vol``'s values above its background (air for CT, 0 for PET/MR)."""
    step = max(1, int(round(4.0 / min(vol.spacing))))
    arr = vol.array[::step, ::step, ::step].astype(np.float32)
    weights = np.clip(arr - max(float(arr.min()), -1024.0 if vol.units == "HU" else 0.0), 0, None)
    total = float(weights.sum())
    if total <= 0:
        raise RegistrationError("image has no signal above background to align by moments", input_name(vol))
    k, j, i = (np.arange(n, dtype=np.float64) * step for n in vol.array.shape)
    com = [float((weights.sum(axis=(0, 1)) * i).sum() / total), float((weights.sum(axis=(0, 2)) * j).sum() / total),
           float((weights.sum(axis=(1, 2)) * k).sum() / total)]
    return vol.index_to_world(com)


def _as_euler(initial: Transform):
    """The linear ``initial`` as the optimiser's starting transform (rigid when it is rigid, else affine)."""
    import SimpleITK as sitk

    m = initial.matrix
    if m is None:
        raise RegistrationError("an intensity registration starts from a linear transform, not a B-spline")
    aff = sitk.AffineTransform(3)
    aff.SetMatrix(tuple(m[:3, :3].ravel()))
    aff.SetTranslation(tuple(m[:3, 3]))
    rigid = sitk.Euler3DTransform()
    try:
        rigid.SetMatrix(tuple(m[:3, :3].ravel()))
    except RuntimeError:  # not orthogonal: start the affine stage from it
        return aff
    rigid.SetTranslation(tuple(m[:3, 3]))
    return rigid


def _stage_transform(stage: str, fixed_img, start, mesh_mm: float):
    """(optimised transform, moving-initial transform or None) of one stage started at ``start``."""
    import SimpleITK as sitk

    if stage == "rigid":
        return sitk.Euler3DTransform(start) if isinstance(start, sitk.Euler3DTransform) else start, None
    if stage == "affine":
        aff = sitk.AffineTransform(3)
        if isinstance(start, sitk.Euler3DTransform | sitk.AffineTransform):
            aff.SetCenter(start.GetCenter())
            aff.SetMatrix(start.GetMatrix())
            aff.SetTranslation(start.GetTranslation())
        return aff, None
    mesh = [max(1, int(round(sz * sp / mesh_mm)))
            for sz, sp in zip(fixed_img.GetSize(), fixed_img.GetSpacing(), strict=True)]
    return sitk.BSplineTransformInitializer(fixed_img, mesh, order=3), start


def _run_stage(stage, fixed_img, moving_img, start, fixed_mask, moving_mask, settings, progress, cancel, inputs):
    """One optimisation: returns (transform, final metric, iterations, stop reason, metric at each level's end)."""
    import SimpleITK as sitk

    tfm, moving_initial = _stage_transform(stage, fixed_img, start, settings.bspline_mesh_mm)
    reg = sitk.ImageRegistrationMethod()
    reg.SetMetricAsMattesMutualInformation(settings.histogram_bins)
    reg.SetMetricSamplingStrategy(reg.RANDOM)
    levels = 2 if stage == "bspline" else len(settings.shrink_factors)  # B-spline: the two finest levels
    shrinks = list(settings.shrink_factors[-levels:])
    voxels = [np.prod([max(n // k, 1) for n in fixed_img.GetSize()]) for k in shrinks]
    reg.SetMetricSamplingPercentagePerLevel([min(1.0, settings.samples / v) for v in voxels], settings.seed)
    reg.SetInterpolator(sitk.sitkLinear)
    if fixed_mask is not None:
        reg.SetMetricFixedMask(sitk.Cast(fixed_mask.to_sitk() != 0, sitk.sitkUInt8))
    if moving_mask is not None:
        reg.SetMetricMovingMask(sitk.Cast(moving_mask.to_sitk() != 0, sitk.sitkUInt8))
    if stage == "bspline":
        reg.SetOptimizerAsLBFGSB(gradientConvergenceTolerance=1e-5, numberOfIterations=settings.iterations,
                                 maximumNumberOfCorrections=5,
                                 maximumNumberOfFunctionEvaluations=4 * settings.iterations)
        reg.SetMovingInitialTransform(moving_initial)
    else:
        reg.SetOptimizerAsRegularStepGradientDescent(learningRate=2.0, minStep=1e-3,
                                                     numberOfIterations=settings.iterations,
                                                     relaxationFactor=0.5, gradientMagnitudeTolerance=1e-6)
        reg.SetOptimizerScalesFromPhysicalShift()
    reg.SetShrinkFactorsPerLevel(shrinks)
    reg.SetSmoothingSigmasPerLevel(list(settings.smoothing_mm[-levels:]))
    reg.SmoothingSigmasAreSpecifiedInPhysicalUnitsOn()
    reg.SetInitialTransform(tfm, inPlace=True)
    state = {"level": 0, "iterations": 0, "values": []}

    def on_iteration():
        state["iterations"] += 1
        if cancel.cancelled:
            reg.Abort()
            return
        frac = (state["level"] - 1 + min(reg.GetOptimizerIteration() / settings.iterations, 1.0)) / levels
        progress(max(frac, 0.0), f"level {state['level']}/{levels} MI {reg.GetMetricValue():.3f}")

    def on_level():
        state["level"] += 1
        if state["level"] > 1:
            state["values"].append(reg.GetMetricValue())

    reg.AddCommand(sitk.sitkIterationEvent, on_iteration)
    reg.AddCommand(sitk.sitkMultiResolutionIterationEvent, on_level)
    try:
        reg.Execute(fixed_img, moving_img)
    except RuntimeError as err:
        if cancel.cancelled:
            raise Cancelled(f"{stage} registration cancelled") from None
        raise registration_failed(err, *inputs) from None
    cancel.raise_if_cancelled()
    final = reg.GetMetricValue()  # at the last iteration of the finest level
    state["values"].append(final)
    result = tfm if moving_initial is None else sitk.CompositeTransform([moving_initial, tfm])
    return result, final, state["iterations"], reg.GetOptimizerStopConditionDescription(), state["values"]
