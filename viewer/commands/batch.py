"""`radview batch --model ID|PATH --out DIR [--scheduler ADDRESS] [--workers N] INPUT ...`: segment a cohort on Dask."""

from __future__ import annotations

import logging
import sys

from viewer.commands.models import MODEL_HELP

NAME = "batch"
HELP = ("segment a cohort (image files / DICOM folders) as `radview segment` does, on a local Dask cluster or an "
        "existing Dask scheduler; writes DIR/<input name>.nii.gz per input and DIR/summary.csv")


def add_arguments(parser) -> None:
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="image files or DICOM folders, one case each")
    parser.add_argument("--model", required=True, help=MODEL_HELP)
    parser.add_argument("--out", required=True, metavar="DIR",
                        help="output folder: <input name without extension>.nii.gz (+ .json label names) per "
                             "input, names that collide prefixed with their parent folders (p1/ct.nii.gz -> "
                             "p1_ct.nii.gz); summary.csv: volume (mL) and mean intensity per input and label")
    parser.add_argument("--scheduler", metavar="ADDRESS",
                        help="an existing Dask scheduler (tcp://host:8786) whose workers (`dask worker ADDRESS`) "
                             "see the inputs, model and DIR at the same paths (default: a local cluster)")
    parser.add_argument("--workers", type=int, metavar="N",
                        help="local cluster: worker processes (default min(2, cores)); with --scheduler: wait "
                             "until N workers have joined (default 1)")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"],
                        help="chosen on each worker")


def run(args) -> int:
    from viewer.batch.cohort import run_batch
    from viewer.commands.progress_bar import terminal_job
    from viewer.core.errors import InputError

    if args.workers is not None and args.workers < 1:
        raise InputError(f"--workers must be at least 1 (got {args.workers})")
    if not args.debug:  # Dask's scheduler and nannies log their routine at INFO; the summary says what matters
        logging.getLogger("distributed").setLevel(logging.ERROR)
    with terminal_job() as (bar, _cancel):  # Ctrl-C: the client closes, Dask cancels the queued cases
        report = run_batch(args.inputs, args.model, args.out, scheduler=args.scheduler, workers=args.workers,
                           device=args.device, progress=bar)
    done = len(report.cases) - len(report.failed)
    retried = f"; {len(report.retried)} retried after a worker was lost or an error" if report.retried else ""
    print(f"segmented {done} of {len(report.cases)} case(s) into {args.out} (summary: {report.summary}){retried}")
    for case in report.failed:
        print(f"radview: batch: failed: {case.input}: {case.error}", file=sys.stderr)
    return 1 if report.failed else 0
