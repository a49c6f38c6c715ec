"""reuse_freed_memory: tensor-sized blocks freed inside it are reused without page faults, in worker threads too."""

import resource
import threading

import pytest
import torch

from ai.allocator import _glibc, reuse_freed_memory

BLOCK = 24 * 1024 * 1024  # one activation of a CPU network: above glibc's default mmap threshold
ROUNDS, STEADY = 12, 6  # glibc needs a few rounds to coalesce the freed blocks; the last STEADY are counted

pytestmark = pytest.mark.skipif(_glibc() is None, reason="glibc malloc only")


def _steady_faults_in_a_thread() -> int:
    """Minor page faults in the last STEADY of ROUNDS rounds of a fresh worker thread allocating, filling and
    freeing two BLOCK-sized tensors (a layer's input and output; numpy's would be huge pages)."""
    faults = []

    def work():
        for _ in range(ROUNDS):
            start = resource.getrusage(resource.RUSAGE_THREAD).ru_minflt
            a = torch.ones(BLOCK // 4)
            b = torch.full((BLOCK // 4,), 2.0)
            del a, b
            faults.append(resource.getrusage(resource.RUSAGE_THREAD).ru_minflt - start)

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    return sum(faults[-STEADY:])


def test_freed_blocks_are_reused_without_page_faults_then_handed_back():
    pages = BLOCK // resource.getpagesize()
    with reuse_freed_memory():  # once first, so glibc's thresholds are at their fixed defaults below
        pass
    assert _steady_faults_in_a_thread() >= STEADY * pages  # every new block is faulted in again
    with reuse_freed_memory(), reuse_freed_memory():  # nested use keeps the settings
        assert _steady_faults_in_a_thread() < pages // 2
    assert _steady_faults_in_a_thread() >= STEADY * pages  # glibc's defaults are back on leaving
