"""A batch run's model, loaded once per Dask worker (a WorkerPlugin) and shared by every case that worker runs."""

from __future__ import annotations

import asyncio
import threading

from distributed import WorkerPlugin


class ModelPlugin(WorkerPlugin):
    """Loads ``model`` (an id or a model folder as the workers see it) on each worker when registered, and on
    every worker that joins later (Dask sends registered plugins to new workers before their first task).
    ``device``: 'auto', 'cpu', 'cuda' or 'mps', chosen on the worker (its GPUs, not the client's);
    ``cpu_threads``: torch's CPU threads per case on the worker (ai.engine.set_cpu_threads; None: every core)."""

    def __init__(self, model: str, device: str = "auto", cpu_threads: int | None = None):
        self.model_ref = model
        self.device_pref = device
        self.cpu_threads = cpu_threads
        self.model = None
        self.device = None
        self.loads = 0  # load_model calls of this plugin on its worker: 1 however many cases the worker runs
        self._lock = threading.Lock()

    def __getstate__(self) -> dict:
        """Pickled (sent to the workers) without the loaded network and the lock."""
        return {"model": self.model_ref, "device": self.device_pref, "cpu_threads": self.cpu_threads}

    def __setstate__(self, state: dict) -> None:
        self.__init__(**state)

    async def setup(self, worker) -> None:
        """Load the model off the worker's event loop (its heartbeats keep going meanwhile)."""
        await asyncio.get_running_loop().run_in_executor(None, self.loaded)

    def teardown(self, worker) -> None:
        """Free the network when the run unregisters the plugin (long-lived workers keep running)."""
        self.model = None

    def loaded(self):
        """(model, torch device), loading the model on the first call (ModelError if it cannot be loaded)."""
        with self._lock:
            if self.model is None:
                from ai.engine import select_device, set_cpu_threads
                from ai.registry import load_model

                set_cpu_threads(self.cpu_threads)
                self.device = select_device(self.device_pref)
                self.model = load_model(self.model_ref, device="cpu")  # as `radview segment` loads it
                self.loads += 1
            return self.model, self.device

