"""Native pixel decoders run in child processes: a decoder that crashes (SIGSEGV, abort) fails its file, not radview.

A pool of ``WORKERS`` decoder processes (as many as the series loader's threads) starts on first use, forked
from a server that has imported the decoders once ("spawn" where there is no fork server; never plain "fork":
the GUI process runs Qt and decoder threads). The processes start without running the main script again, so a
script without ``if __name__ == "__main__":`` can load compressed DICOM. When one of them dies, the pool is
replaced and each call that was in it is retried alone in a fresh process: a file that kills that process too
is reported as CorruptFileError, the files that merely shared the broken pool decode normally. Exceptions
raised in a child come back as they are (radview's typed errors keep their path). The processes end with
radview: at a normal exit through concurrent.futures' own shutdown, otherwise when they see their parent gone.
A daemonic process (a Dask or multiprocessing.Pool worker) may not start processes: it decodes in itself.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import sys
import threading
import types
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager, nullcontext
from functools import cache
from multiprocessing.connection import Connection
from os import PathLike
from typing import TypeVar

from viewer.core.errors import CorruptFileError

log = logging.getLogger(__name__)

#: Decoder processes: as many as the series loader's decoding threads.
WORKERS = max(1, min(os.cpu_count() or 1, 8))
#: Modules the fork server imports once, so that a new decoder process starts with the decoders loaded.
PRELOAD = ["viewer.core.io.dicom_decode"]

T = TypeVar("T")

_lock = threading.Lock()  # guards _pool, and sys.modules["__main__"] while it is hidden
_pool: ProcessPoolExecutor | None = None


def run_isolated(path: str | PathLike, fn: Callable[..., T], *args) -> T:
    """``fn(*args)`` computed in a decoder process: its result, or the exception it raised, raised here.

    ``fn`` must be importable by name (not defined in the main script) and ``args`` must pickle. If the
    process dies while the call is in the pool (a native crash, of this call or another), the call is run
    again alone in a fresh process; if that one dies too, raises CorruptFileError naming ``path``.
    A daemonic process (a worker of a multiprocessing.Pool or of Dask) may not start processes: there the call
    runs in the process itself, which is a child already (its parent sees it die).
    """
    if multiprocessing.current_process().daemon:
        return fn(*args)
    pool = _shared_pool()
    try:
        with _main_script_hidden() if _may_start_process(pool) else nullcontext():
            future = pool.submit(fn, *args)
        return future.result()
    except BrokenProcessPool:
        _discard(pool)
    log.warning("%s: a decoder process died while this file was in the pool; decoding it again alone", path)
    return _run_alone(path, fn, args)


def start() -> None:
    """Start the decoder pool now (its fork server and a first process; about 0.3 s of one core) rather than
    at the first compressed file, whose first slice would wait for it. A no-op once the pool runs."""
    run_isolated(__file__, os.getpid)


@cache
def _context() -> multiprocessing.context.BaseContext:
    """A fork server that has imported the decoders (spawn where there is none)."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(PRELOAD)
    return ctx


def _shared_pool() -> ProcessPoolExecutor:
    """The pool all loader threads share, created on first use (and after a broken one was discarded)."""
    global _pool
    with _lock:
        if _pool is None:
            _pool = ProcessPoolExecutor(WORKERS, mp_context=_context(), initializer=_start_worker)
        return _pool


def _may_start_process(pool: ProcessPoolExecutor) -> bool:
    """Whether a submit to ``pool`` may start a decoder process: the executor starts them on demand, when none is
    idle, up to WORKERS (it never replaces one: a dead process breaks the pool). Its process table is private:
    where it is not there, assume a submit may."""
    processes = getattr(pool, "_processes", None)
    return processes is None or len(processes) < WORKERS


@contextmanager
def _main_script_hidden() -> Iterator[None]:
    """While decoder processes may start: a new process runs the main script again unless it is hidden (a
    script without a main guard would load its series again), and decoders need nothing from it. Under the
    lock, so that two threads never swap it at once."""
    with _lock:
        main = sys.modules["__main__"]
        sys.modules["__main__"] = types.ModuleType("__main__")
        try:
            yield
        finally:
            sys.modules["__main__"] = main


def _discard(pool: ProcessPoolExecutor) -> None:
    """Drop a broken pool (once, whichever thread sees it first): the next call starts a new one."""
    global _pool
    with _lock:
        if _pool is pool:
            _pool = None
    pool.shutdown(wait=False)


def _start_worker() -> None:
    """Pool initializer. Ignore Ctrl-C, which a terminal sends to the whole process group: radview handles it.
    End this process when its parent ends, however that ends (after os._exit or a crash the pool's shutdown
    never runs, and an idle decoder process would wait for work forever)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    def exit_with_parent() -> None:
        multiprocessing.parent_process().join()
        os._exit(0)

    threading.Thread(target=exit_with_parent, name="exit-with-parent", daemon=True).start()


def _run_alone(path: str | PathLike, fn: Callable[..., T], args: tuple) -> T:
    """``fn(*args)`` in a fresh process of its own; CorruptFileError naming ``path`` if that process dies."""
    ctx = _context()
    receive, send = ctx.Pipe(duplex=False)
    process = ctx.Process(target=_answer, args=(send, fn, args), name="decode-alone", daemon=True)
    with _main_script_hidden():
        process.start()
    send.close()
    try:
        raised, value = receive.recv()
    except EOFError:  # the process ended without answering
        process.join()
        raise CorruptFileError(
            f"the pixel decoder crashed on this file ({_how_it_ended(process.exitcode)})", path
        ) from None
    finally:
        receive.close()
    process.join()
    if raised:
        raise value
    return value


def _answer(conn: Connection, fn: Callable, args: tuple) -> None:
    """In a process of :func:`_run_alone`: send back (False, ``fn(*args)``) or (True, the exception it raised)."""
    try:
        answer = False, fn(*args)
    except Exception as err:  # noqa: BLE001 - raised again in the caller, as the pool does
        answer = True, err
    conn.send(answer)


def _how_it_ended(exitcode: int | None) -> str:
    """'signal SIGSEGV' for a process killed by a signal, else 'exit code N'."""
    if exitcode is None or exitcode >= 0:
        return f"exit code {exitcode}"
    try:
        return f"signal {signal.Signals(-exitcode).name}"
    except ValueError:  # a real-time signal has no name
        return f"signal {-exitcode}"
