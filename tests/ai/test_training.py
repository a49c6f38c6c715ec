"""Training runs are reproducible: a fixed seed and iteration count give the same weights twice."""

from __future__ import annotations

import numpy as np


def _run(seed: int):
    from ai.formats.builtin import build_network
    from ai.training.common import fit, reproducible
    from ai.training.train_abdomen import NETWORK, intensity_jitter

    rng = reproducible(seed)
    data_rng = np.random.default_rng(123)
    x = data_rng.normal(0, 1, (1, 40, 48, 48)).astype(np.float32)
    y = np.zeros((40, 48, 48), np.uint8)
    y[10:30, 12:36, 12:36] = 1
    y[15:25, 20:28, 20:28] = 2
    net = build_network(NETWORK)
    run = fit(net, [(x, y)], (16, 32, 32), rng, iterations=3, augment=intensity_jitter, batch=2)
    return run, {k: v.detach().clone() for k, v in net.state_dict().items()}


def test_same_seed_and_iterations_give_identical_weights():
    run_a, a = _run(0)
    run_b, b = _run(0)
    assert run_a["iterations"] == run_b["iterations"] == 3
    assert all(np.array_equal(a[k].numpy(), b[k].numpy()) for k in a)
    _, c = _run(1)
    assert any(not np.array_equal(a[k].numpy(), c[k].numpy()) for k in a)
