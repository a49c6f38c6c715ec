"""One case of a batch run, on a Dask worker: segment an input as `radview segment` does and measure its labels."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from viewer.core.errors import RadviewError


@dataclass
class CaseResult:
    """What a case produced: ``rows`` one dict per model label (label, volume_ml, mean_intensity, units);
    ``error`` the one-line reason it failed ("" if it did not); ``retried`` earlier attempts that did not
    finish (their worker died, or an unexpected error Dask retried); ``model_loads`` the loads of the model
    on ``worker`` during this run."""

    index: int
    input: str
    output: str
    rows: list[dict] = field(default_factory=list)
    error: str = ""
    retried: int = 0
    worker: str = ""
    model_loads: int = 0


def label_rows(image, result) -> list[dict]:
    """One row per label of the model, in label order, with the volume (mL) and mean intensity (the image's
    units) from viewer.core.stats; a label the model did not find has volume 0 and no mean."""
    from viewer.core.stats import label_statistics

    found = {row["label"]: row for row in label_statistics(image, result.labels, result.names)}
    return [{"label": name, "volume_ml": found[k]["volume_ml"] if k in found else 0.0,
             "mean_intensity": found[k]["mean"] if k in found else None, "units": image.units}
            for k, name in sorted(result.names.items())]


def segment_case(index: int, source: str, out: str, plugin: str, topic: str) -> CaseResult:
    """Segment ``source`` (image file or DICOM folder) into ``out`` with the model of the worker's ModelPlugin
    named ``plugin``, after logging the attempt under ``topic`` (the client counts attempts from these
    events). A RadviewError (unreadable input, model that does not fit) is the case's result, not retried:
    it would fail again; any other exception propagates to Dask, which retries the case."""
    from distributed import get_worker

    from viewer.commands.segment import segment_to_file
    from viewer.core.io import load_volume

    worker = get_worker()
    worker.log_event(topic, {"case": index, "worker": worker.address})
    model_plugin = worker.plugins[plugin]  # a ModelPlugin
    outcome = CaseResult(index, source, out, worker=worker.address)
    try:
        model, device = model_plugin.loaded()
        image = load_volume(source)
        result = segment_to_file(model, [image], Path(out), device=device)
        outcome.rows = label_rows(image, result)
    except RadviewError as err:
        outcome.error = err.problem if err.path == source else str(err)  # the input is named beside it
    outcome.model_loads = model_plugin.loads
    return outcome
