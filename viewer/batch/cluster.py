"""The Dask client of a batch run: a local cluster of worker processes, or an existing scheduler's workers."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager

from viewer.core.errors import RadviewError

#: Seconds to reach a scheduler, and to wait for its first workers.
CONNECT_TIMEOUT_S = 15
WORKER_WAIT_S = 60


class ClusterError(RadviewError):
    """A Dask scheduler cannot be reached, or no worker joins it."""


def default_workers() -> int:
    """Worker processes of a local cluster when not told: min(2, cores)."""
    return max(1, min(2, os.cpu_count() or 1))


def local_threads(workers: int | None) -> int:
    """torch CPU threads per case for a local cluster of ``workers`` processes: the cores shared out (more
    threads than cores between the processes made inference ~20x slower)."""
    return max(1, (os.cpu_count() or 1) // (workers or default_workers()))


@contextmanager
def dask_client(scheduler: str | None = None, workers: int | None = None) -> Iterator:
    """A connected ``distributed.Client``, closed on exit. No ``scheduler``: a LocalCluster of ``workers``
    processes (default default_workers()) with one thread each, stopped on exit. A scheduler address
    (``tcp://host:8786``): that scheduler, once ``workers`` (default 1) of its workers have joined; its workers
    keep running. ClusterError if the scheduler cannot be reached or no worker joins in WORKER_WAIT_S."""
    from distributed import Client, LocalCluster

    if scheduler is None:
        with (LocalCluster(n_workers=workers or default_workers(), threads_per_worker=1, processes=True,
                           dashboard_address=None, silence_logs=logging.ERROR) as cluster,
              Client(cluster) as client):
            yield client
        return
    try:
        client = Client(scheduler, timeout=CONNECT_TIMEOUT_S)
    except (OSError, ValueError) as err:
        raise ClusterError(f"cannot reach the Dask scheduler ({err})", scheduler) from err
    with client:
        try:
            client.wait_for_workers(workers or 1, timeout=WORKER_WAIT_S)
        except TimeoutError as err:
            raise ClusterError(f"fewer than {workers or 1} Dask worker(s) joined in {WORKER_WAIT_S} s (start them "
                               f"with: dask worker {scheduler})", scheduler) from err
        yield client
