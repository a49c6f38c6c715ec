"""Intensity registration (SimpleITK): rigid / affine / B-spline by Mattes mutual information, multi-resolution."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

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
    """Knobs of the intensity registration (defaults tuned on the demo PET/CT and MR and a real CT with a
    synthetic PET, see benchmarks/bench_registration.py).

    Attributes:
        histogram_bins: Mattes MI joint-histogram bins (64: 32 bins biased the PET/CT z offset by 0.7 mm).
        work_spacing_mm: voxel size of the finest level; each image is block-averaged (anti-aliased) to about
            this where it is finer. The transform is exact in world space whatever the working grid.
        shrink_factors: the pyramid, coarse to fine: level voxels are ``work_spacing_mm * factor``, each built
            by block-averaging the original voxels (no full-size smoothing). Kept for small images too: on the
            3 mm, 30-slice real CT <- synthetic PET, (2, 1) saves no CPU (30 vs 44 iterations, 0.16 s) and
            raises the mean TRE 0.41 -> 0.56 mm (phantom PET 0.19 -> 0.58 mm); 10000 finest samples save
            0.045 s CPU for 0.41 -> 0.50 mm.
        samples: fixed-image points sampled at random per level, coarse to fine (all voxels of a level with
            fewer).
        iterations: optimiser iterations per level at most.
        step_mm: (first, last) step of the rigid/affine gradient descent, in mm of physical shift: it halves
            at each change of direction and a level ends below the last.
        bspline_mesh_mm: B-spline control-point spacing. The B-spline stage runs on the second-finest level only,
            with half the bins and ``bspline_iterations``: ITK's Mattes MI costs ~0.1 s CPU per iteration per
            thousand B-spline parameters.
        seed: random sampling seed (results are reproducible).
    """

    histogram_bins: int = 64
    work_spacing_mm: float = 3.0
    shrink_factors: tuple[int, ...] = (4, 2, 1)
    samples: tuple[int, ...] = (3000, 6000, 20000)
    iterations: int = 100
    step_mm: tuple[float, float] = (2.0, 0.03)
    bspline_mesh_mm: float = 80.0
    bspline_iterations: int = 30
    seed: int = 42


@dataclass
class RegistrationResult:
    """What :func:`register` found: the fixed -> moving transform and how it got there."""

    transform: Transform
    metric: float  # final Mattes MI, SimpleITK's sign: more negative = more shared information
    iterations: int  # over all stages and levels
    seconds: float


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
    rigid = _as_start(initial, fixed) if initial is not None else _initial_rigid(fixed, moving, init)
    check_overlap(fixed, moving, rigid)
    factors = settings.shrink_factors
    pyramids = [_pyramid(vol, settings.work_spacing_mm, factors) for vol in (fixed, moving)]
    masks = [None if m is None else _mask_image(m) for m in (fixed_mask, moving_mask)]
    stages = {"rigid": ["rigid"], "affine": ["rigid", "affine"], "bspline": ["rigid", "affine", "bspline"]}[method]
    current, metric, iterations = rigid, 0.0, 0
    for n, stage in enumerate(stages):
        levels = [len(factors) - 2] if stage == "bspline" else range(len(factors))  # B-spline: one level, 6 mm
        optimised, moving_initial = _stage_transform(stage, pyramids[0][-1], current, settings.bspline_mesh_mm)
        for step, level in enumerate(levels):
            span = ((n + step / len(levels)) / len(stages), (n + (step + 1) / len(levels)) / len(stages))
            metric, count = _optimise(stage, optimised, moving_initial, pyramids[0][level], pyramids[1][level],
                                      masks, settings, settings.samples[level], _scaled(progress, span, stage, level),
                                      cancel, (fixed, moving))
            iterations += count
        current = optimised if moving_initial is None else _composite(moving_initial, optimised)
    check_shared_information(metric, fixed, moving)
    seconds = time.perf_counter() - start
    progress(1.0, f"{method} registration done")
    log.info("%s registration of %s to %s: MI %.4f, %d iterations, %.2f s", method, input_name(moving),
             input_name(fixed), metric, iterations, seconds)
    return RegistrationResult(Transform(current, f"{method} Mattes MI ({init} init)"), metric, iterations, seconds)


def _scaled(progress: ProgressCallback, span: tuple[float, float], stage: str, level: int) -> ProgressCallback:
    lo, hi = span
    return lambda f, msg: progress(lo + (hi - lo) * f, f"{stage} level {level + 1}: {msg}")


def _pyramid(vol: Volume, spacing_mm: float, factors: tuple[int, ...]) -> list:
    """``vol`` as float32 SimpleITK images block-averaged to about ``spacing_mm * f`` for each factor ``f``."""
    return [_block_average(vol, spacing_mm * f) for f in factors]


def _block_average(vol: Volume, spacing_mm: float):
    """``vol`` as a float32 SimpleITK image, block-averaged (anti-aliased) to voxels of about ``spacing_mm``
    where it is finer; the blocks' centres keep the world geometry exact."""
    import SimpleITK as sitk

    f = np.maximum(np.round(spacing_mm / np.asarray(vol.spacing)), 1).astype(int)  # (x, y, z) block factors
    f = np.minimum(f, vol.size)  # an axis shorter than its block: one block
    fz, fy, fx = f[::-1]
    z, y, x = (n // k * k for n, k in zip(vol.array.shape, (fz, fy, fx), strict=True))
    blocks = vol.array[:z, :y, :x].reshape(z // fz, fz, y // fy, fy, x // fx, fx)
    small = blocks.mean(axis=(1, 3, 5), dtype=np.float32)
    img = sitk.GetImageFromArray(small)
    img.SetSpacing(tuple(float(v) for v in np.asarray(vol.spacing) * f))
    img.SetOrigin(tuple(vol.index_to_world((f - 1) / 2)))  # centre of the first block
    img.SetDirection(tuple(vol.direction.ravel()))
    return img


def _mask_image(mask: Volume):
    import SimpleITK as sitk

    return sitk.Cast(mask.to_sitk() != 0, sitk.sitkUInt8)


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
    from viewer.core.resample import background_value

    step = max(1, int(round(4.0 / min(vol.spacing))))
    arr = vol.array[::step, ::step, ::step].astype(np.float32)
    weights = np.clip(arr - max(float(arr.min()), background_value(vol)), 0, None)
    total = float(weights.sum())
    if total <= 0:
        raise RegistrationError("image has no signal above background to align by moments", input_name(vol))
    k, j, i = (np.arange(n, dtype=np.float64) * step for n in arr.shape)
    com = [float((weights.sum(axis=(0, 1)) * i).sum() / total), float((weights.sum(axis=(0, 2)) * j).sum() / total),
           float((weights.sum(axis=(1, 2)) * k).sum() / total)]
    return vol.index_to_world(com)


def _as_start(initial: Transform, fixed: Volume):
    """The linear ``initial`` as the optimiser's start: Euler3D about the fixed image's centre when it is
    rigid (well-conditioned rotations), else affine."""
    import SimpleITK as sitk

    m = initial.matrix
    if m is None:
        raise RegistrationError("an intensity registration starts from a linear transform, not a B-spline")
    lo, hi = fixed.world_bounds()
    centre = (lo + hi) / 2
    rigid = sitk.Euler3DTransform()
    rigid.SetCenter(tuple(map(float, centre)))
    try:
        rigid.SetMatrix(tuple(m[:3, :3].ravel()))
    except RuntimeError:  # not orthogonal: the affine stage starts from it
        return Transform.from_matrix(m).sitk
    rigid.SetTranslation(tuple(map(float, m[:3, :3] @ centre + m[:3, 3] - centre)))  # same map about the centre
    return rigid


def _stage_transform(stage: str, fixed_img, start, mesh_mm: float):
    """(transform the stage optimises, fixed transform applied after it or None) for a stage started at
    ``start``."""
    import SimpleITK as sitk

    if stage == "rigid":
        if isinstance(start, sitk.Euler3DTransform):
            return sitk.Euler3DTransform(start), None
        return sitk.AffineTransform(start), None  # an affine landmark start stays affine
    if stage == "affine":
        aff = sitk.AffineTransform(3)
        aff.SetCenter(start.GetCenter())
        aff.SetMatrix(start.GetMatrix())
        aff.SetTranslation(start.GetTranslation())
        return aff, None
    mesh = [max(1, int(round(sz * sp / mesh_mm)))
            for sz, sp in zip(fixed_img.GetSize(), fixed_img.GetSpacing(), strict=True)]
    return sitk.BSplineTransformInitializer(fixed_img, mesh, order=3), start


def _composite(first_applied_last, optimised):
    """fixed point -> ``first_applied_last(optimised(p))``, SimpleITK's composite order."""
    import SimpleITK as sitk

    return sitk.CompositeTransform([first_applied_last, optimised])


def _optimise(stage, tfm, moving_initial, fixed_img, moving_img, masks, settings, samples, progress, cancel, inputs):
    """One level of one stage, optimising ``tfm`` in place; returns (final metric, iterations)."""
    import SimpleITK as sitk

    reg = sitk.ImageRegistrationMethod()
    reg.SetMetricAsMattesMutualInformation(settings.histogram_bins // (2 if stage == "bspline" else 1))
    reg.SetMetricSamplingStrategy(reg.RANDOM)
    voxels = int(np.prod(fixed_img.GetSize()))
    reg.SetMetricSamplingPercentage(min(1.0, samples / voxels), settings.seed)
    reg.SetInterpolator(sitk.sitkLinear)
    reg.MetricUseFixedImageGradientFilterOff()  # image gradients at the samples only: a whole-image
    reg.MetricUseMovingImageGradientFilterOff()  # gradient filter cost 3x the optimisation itself
    if masks[0] is not None:
        reg.SetMetricFixedMask(masks[0])
    if masks[1] is not None:
        reg.SetMetricMovingMask(masks[1])
    if stage == "bspline":
        reg.SetOptimizerAsLBFGSB(gradientConvergenceTolerance=1e-5, numberOfIterations=settings.bspline_iterations,
                                 maximumNumberOfCorrections=5,
                                 maximumNumberOfFunctionEvaluations=4 * settings.bspline_iterations)
        reg.SetMovingInitialTransform(moving_initial)
    else:
        reg.SetOptimizerAsRegularStepGradientDescent(learningRate=settings.step_mm[0], minStep=settings.step_mm[1],
                                                     numberOfIterations=settings.iterations,
                                                     relaxationFactor=0.5, gradientMagnitudeTolerance=1e-6)
        reg.SetOptimizerScalesFromPhysicalShift()
    reg.SetInitialTransform(tfm, inPlace=True)

    def on_iteration():
        if cancel.cancelled:
            reg.Abort()
            return
        progress(min(reg.GetOptimizerIteration() / settings.iterations, 1.0), f"MI {-reg.GetMetricValue():.3f}")

    reg.AddCommand(sitk.sitkIterationEvent, on_iteration)
    try:
        reg.Execute(fixed_img, moving_img)
    except RuntimeError as err:
        if cancel.cancelled:
            raise Cancelled(f"{stage} registration cancelled") from None
        raise registration_failed(err, *inputs) from None
    cancel.raise_if_cancelled()
    return reg.GetMetricValue(), reg.GetOptimizerIteration()
