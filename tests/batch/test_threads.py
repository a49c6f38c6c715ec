"""Local batch workers share the machine's cores: each inference uses its share of CPU threads, not every core."""

from __future__ import annotations

import os

from ai.engine import cpu_threads, run_segmentation, set_cpu_threads
from ai.registry import load_model
from viewer.batch.cluster import local_threads
from viewer.core.io import load_volume


def test_local_workers_split_the_cores():
    cores = os.cpu_count() or 1
    assert local_threads(1) == cores and local_threads(cores) == 1 and local_threads(4 * cores) == 1


def test_inference_keeps_the_thread_budget_of_its_process(shared_data):
    import torch

    ct = load_volume(shared_data / "ct_abdomen_3mm.nii.gz")
    model = load_model("abdomen_ct_unet")
    try:
        set_cpu_threads(1)
        run_segmentation(model, [ct], device="cpu")
        assert torch.get_num_threads() == 1
    finally:
        set_cpu_threads(None)
    assert cpu_threads() == (os.cpu_count() or 1)
