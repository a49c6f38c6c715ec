"""`radview register FIXED MOVING --out MOVING_ON_FIXED --transform OUT.tfm`: co-register two images."""

from __future__ import annotations

import os
import sys
from pathlib import Path

NAME = "register"
HELP = ("register MOVING to FIXED (rigid/affine/B-spline, Mattes mutual information, or landmarks); writes MOVING "
        "resampled on FIXED's grid in its own units and the ITK transform (fixed point -> moving point)")


def add_arguments(parser) -> None:
    parser.add_argument("fixed", help="fixed image: DICOM folder or file, NIfTI, NRRD, MHA (defines the output grid)")
    parser.add_argument("moving", help="moving image (any modality: CT, PET, MR)")
    parser.add_argument("--out", required=True, help="MOVING resampled on FIXED's grid (.nii.gz, .nii, .nrrd, .mha)")
    parser.add_argument("--transform", required=True,
                        help="ITK transform file to write (.tfm text or .h5), fixed -> moving: Slicer, elastix, ANTs")
    parser.add_argument("--method", choices=["rigid", "affine", "bspline"], default="rigid")
    parser.add_argument("--init", choices=["geometry", "moments"], default="geometry",
                        help="geometry: trust the scanners' shared world frame (default); moments: align the "
                             "intensity centres of mass first (different frames of reference)")
    parser.add_argument("--fixed-landmarks", metavar="F.json", help="JSON list of [x, y, z] world LPS mm points")
    parser.add_argument("--moving-landmarks", metavar="M.json", help="the corresponding points in MOVING")
    parser.add_argument("--refine", action="store_true",
                        help="with landmarks: refine the landmark transform by intensity registration")


def run(args) -> int:
    from viewer.commands.outputs import partial_path
    from viewer.commands.progress_bar import terminal_job
    from viewer.core.errors import RegistrationError
    from viewer.core.io import load_volume, save_volume
    from viewer.core.registration.intensity import register
    from viewer.core.registration.landmarks import read_landmarks, register_landmarks

    if bool(args.fixed_landmarks) != bool(args.moving_landmarks):
        raise RegistrationError("--fixed-landmarks and --moving-landmarks go together")
    if args.refine and not args.fixed_landmarks:
        raise RegistrationError("--refine refines a landmark registration: give --fixed-landmarks/--moving-landmarks")
    out, tfm_path = Path(args.out), Path(args.transform)
    landmarks = None
    if args.fixed_landmarks:
        kind = "rigid" if args.method == "rigid" else "affine"
        landmarks = register_landmarks(read_landmarks(args.fixed_landmarks), read_landmarks(args.moving_landmarks),
                                       kind)
        print(f"landmarks: {kind}, FRE {landmarks.fre_mm:.2f} mm over {len(landmarks.errors_mm)} pairs "
              f"(max {landmarks.errors_mm.max():.2f} mm)", file=sys.stderr)
    fixed = load_volume(args.fixed)
    moving = load_volume(args.moving)
    with terminal_job() as (bar, cancel):
        if landmarks is not None and not (args.refine or args.method == "bspline"):
            transform, summary = landmarks.transform, f"landmarks FRE {landmarks.fre_mm:.2f} mm"
        else:
            result = register(fixed, moving, method=args.method, init=args.init, progress=bar, cancel=cancel,
                              initial=landmarks.transform if landmarks is not None else None)
            transform = result.transform
            summary = f"{args.method}, MI {-result.metric:.3f}, {result.iterations} iterations, {result.seconds:.1f} s"
        on_fixed = transform.resample(moving, fixed)
        planned = [(partial_path(tfm_path), tfm_path), (partial_path(out), out)]
        try:
            transform.save(planned[0][0])
            save_volume(on_fixed, planned[1][0])
            for tmp, final in planned:  # the image last: present means complete
                os.replace(tmp, final)
        finally:
            for tmp, _ in planned:
                tmp.unlink(missing_ok=True)
    print(f"wrote {out} ({on_fixed.modality}, {on_fixed.units}, on the fixed grid {on_fixed.size}) and {tfm_path} "
          f"({summary})")
    return 0
