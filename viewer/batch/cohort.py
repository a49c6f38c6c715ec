"""Segment a cohort on Dask: one task per input, the model loaded once per worker, retried cases counted."""

from __future__ import annotations

import logging
import os
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from viewer.batch.case import CaseResult, segment_case
from viewer.batch.cluster import dask_client, local_threads
from viewer.batch.model_plugin import ModelPlugin
from viewer.batch.naming import output_names
from viewer.batch.summary import write_summary
from viewer.core.progress import ProgressCallback, no_progress

log = logging.getLogger(__name__)

#: Dask retries of a case that raised an unexpected error. A worker dying mid-case is not an error of the case:
#: the scheduler reassigns it to another worker (up to distributed.scheduler.allowed-failures times).
RETRIES = 2
SUMMARY = "summary.csv"


@dataclass
class BatchReport:
    """A finished run: ``cases`` in input order, the summary file, the model loads per worker address."""

    cases: list[CaseResult]
    summary: Path
    model_loads: dict[str, int]

    @property
    def failed(self) -> list[CaseResult]:
        return [c for c in self.cases if c.error]

    @property
    def retried(self) -> list[CaseResult]:
        return [c for c in self.cases if c.retried]


def _model_ref(model: str, local: bool) -> str:
    """The model as the workers must name it: an existing folder as an absolute path; an id checked here first
    on a local cluster (the workers share this machine's models: a typo fails before workers start)."""
    if Path(model).exists():
        return os.path.abspath(model)
    if local:
        from ai.registry import find_model

        find_model(model)
    return model


def run_batch(inputs: list, model: str, out_dir, *, scheduler: str | None = None, workers: int | None = None,
              device: str = "auto", progress: ProgressCallback | None = None,
              on_start: Callable[[int, str], None] | None = None) -> BatchReport:
    """Segment every input (image file or DICOM folder) with ``model`` (id or folder) into
    ``out_dir/<name>.nii.gz`` exactly as `radview segment` does (names: viewer.batch.naming.output_names) and
    write ``out_dir/summary.csv`` (viewer.batch.summary). Runs on a local Dask cluster of ``workers``
    processes, or on the existing scheduler at ``scheduler`` (see viewer.batch.cluster.dask_client); inputs,
    model folder and ``out_dir`` must be visible to the workers at the same paths. A failed case is reported
    in its CaseResult and the others finish. ``progress(fraction, message)`` follows finished cases;
    ``on_start(case index, worker address)`` is called on the client as each attempt of a case starts."""
    sources = [Path(os.path.abspath(p)) for p in inputs]  # '..' resolved, symbolic links kept
    out_dir = Path(os.path.abspath(out_dir))
    outputs = [out_dir / f"{name}.nii.gz" for name in output_names(sources)]
    model_ref = _model_ref(model, local=scheduler is None)
    out_dir.mkdir(parents=True, exist_ok=True)
    progress = progress or no_progress
    run_id = uuid.uuid4().hex[:12]
    plugin, topic = f"radview-model-{run_id}", f"radview-batch-{run_id}"
    progress(0.0, "starting Dask workers" if scheduler is None else f"connecting to {scheduler}")
    with dask_client(scheduler, workers) as client:
        if on_start is not None:
            client.subscribe_topic(topic, lambda event: on_start(event[1]["case"], event[1]["worker"]))
        try:
            progress(0.0, "loading the model on the workers")
            threads = local_threads(workers) if scheduler is None else None  # a cluster's hosts: every core
            client.register_plugin(ModelPlugin(model_ref, device, threads), name=plugin)
            cases = _run_cases(client, sources, outputs, plugin, topic, progress)
            attempts = Counter(msg["case"] for _, msg in client.get_events(topic))
        finally:
            _forget_plugin(client, plugin)
    for case in cases:
        case.retried = max(attempts[case.index] - 1, 0)
    loads: dict[str, int] = {}
    for case in cases:
        if case.worker:
            loads[case.worker] = max(loads.get(case.worker, 0), case.model_loads)
    return BatchReport(cases, write_summary(cases, out_dir / SUMMARY), loads)


def _run_cases(client, sources: list[Path], outputs: list[Path], plugin: str, topic: str,
               progress: ProgressCallback) -> list[CaseResult]:
    """Submit one task per case and collect them as they finish; a case Dask gave up on (it raised RETRIES + 1
    times, or killed allowed-failures workers) becomes a CaseResult with its error. Input order."""
    from distributed import as_completed

    futures = {client.submit(segment_case, n, str(src), str(out), plugin, topic, retries=RETRIES, pure=False): n
               for n, (src, out) in enumerate(zip(sources, outputs, strict=True))}
    cases, failed = [], 0
    for future in as_completed(futures):
        n = futures[future]
        try:
            case = future.result()
        except Exception as err:  # noqa: BLE001 - whatever ended this case, the others go on
            case = CaseResult(n, str(sources[n]), str(outputs[n]), error=f"{type(err).__name__}: {err}")
        cases.append(case)
        failed += bool(case.error)
        progress(len(cases) / len(futures),
                 f"{len(cases)}/{len(futures)} cases" + (f", {failed} failed" if failed else ""))
    return sorted(cases, key=lambda c: c.index)


def _forget_plugin(client, plugin: str) -> None:
    """Unregister the run's model plugin: long-lived workers free the network, workers joining later skip it."""
    try:
        client.unregister_worker_plugin(plugin)
    except Exception as err:  # noqa: BLE001 - a worker gone meanwhile: nothing left to free there
        log.warning("could not unregister %s from every worker: %s", plugin, err)
