"""A tiny head (MR + CT pair with known tissue values) and a tiny MR -> CT translation model trained on it in a
few seconds: real MONAI network, real training steps, a real model folder. Test data only, never shipped."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from viewer.core.volume import Volume

#: (MR signal, CT HU) of background, skull and brain in the tiny head.
TISSUES = {"air": (0.0, -1000.0), "skull": (150.0, 1000.0), "brain": (700.0, 35.0)}
SCALE, OFFSET = 1000.0, -1000.0  # the card's output: HU = network output * SCALE + OFFSET
CARD = {
    "id": "tiny-mr-to-ct-test", "version": "0.0.1", "name": "tiny MR to CT (test only)", "task": "translation",
    "inputs": [{"modality": "MR", "name": "t1"}], "normalization": [{"kind": "zscore"}], "labels": {},
    "output": {"modality": "CT", "units": "HU", "kind": "linear", "scale": SCALE, "offset": OFFSET,
               "clip": [-1024, 3071]},
    "anatomy": "brain", "spacing": [5.5, 5.5, 5.5], "patch_size": [32, 32, 32], "mirror_axes": [],
    "intended_use": "tests of radview synthesize", "limitations": "not a model: a test fixture",
}


def tiny_head(size: int = 40, spacing: float = 4.5, shift_mm=(0.0, 0.0, 0.0), seed: int = 0) -> tuple[Volume, Volume]:
    """(MR, CT) of an ellipsoid head (skull shell around brain) on one grid of ``size``^3 voxels at ``spacing``
    mm (40 x 4.5 = 180 mm: a head's field of view); the head moved by ``shift_mm`` (x, y, z)."""
    rng = np.random.default_rng(seed)
    idx = (np.indices((size,) * 3).astype(np.float32) - (size - 1) / 2) * spacing  # (z, y, x) mm
    z, y, x = (idx[i] - shift_mm[2 - i] for i in range(3))
    r = np.sqrt((x / 70) ** 2 + (y / 80) ** 2 + (z / 65) ** 2)
    mr = np.zeros((size,) * 3, np.float32)
    ct = np.full((size,) * 3, TISSUES["air"][1], np.float32)
    for name, inside in (("skull", r < 1.0), ("brain", r < 0.85)):
        mr[inside], ct[inside] = TISSUES[name]
    mr += rng.normal(0, 10, mr.shape).astype(np.float32)
    origin = tuple(-(size - 1) / 2 * spacing for _ in range(3))
    geometry = {"spacing": (spacing,) * 3, "origin": origin}
    return (Volume(np.clip(mr, 0, None), modality="MR", units="arbitrary", description="tiny head MR", **geometry),
            Volume(ct.astype(np.int16), modality="CT", units="HU", description="tiny head CT", **geometry))


def write_translation_model(folder: Path, steps: int = 60, seed: int = 0) -> Path:
    """Train a tiny MONAI UNet (1 -> 1 channel) for ``steps`` Adam steps to map the tiny head's z-scored MR to
    (HU - OFFSET) / SCALE, and write it as a translation model folder (fp16 weights + model.json)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small tensors: one thread is as fast, and fair to a loaded machine
    try:
        net, network = _train(steps, seed)
    finally:
        torch.set_num_threads(threads)
    folder.mkdir(parents=True, exist_ok=True)
    torch.save({k: v.half() for k, v in net.state_dict().items()}, folder / "model.pt")
    card = CARD | {"network": network, "training_data": f"tests/ai/synthesis_fixture.py tiny heads, {steps} steps "
                                                         "(test only)"}
    (folder / "model.json").write_text(json.dumps(card))
    return folder


def _train(steps: int, seed: int):
    """(the trained network, its spec) of write_translation_model."""
    import torch

    from ai.formats.builtin import build_network
    from ai.normalize import normalize

    torch.manual_seed(seed)
    network = {"class": "UNet", "args": {"spatial_dims": 3, "in_channels": 1, "out_channels": 1,
                                         "channels": [8, 16], "strides": [2], "num_res_units": 1}}
    net = build_network(network)
    optimiser = torch.optim.Adam(net.parameters(), lr=1e-2)
    pairs = [tiny_head(32, 5.5, shift, seed=i) for i, shift in enumerate([(0, 0, 0), (8, -6, 4), (-6, 5, -8)])]
    xs = torch.stack([torch.from_numpy(normalize(mr.array, {"kind": "zscore"}))[None] for mr, _ in pairs])
    ys = torch.stack([torch.from_numpy((ct.array.astype(np.float32) - OFFSET) / SCALE)[None] for _, ct in pairs])
    for _ in range(steps):
        optimiser.zero_grad()
        loss = torch.nn.functional.l1_loss(net(xs), ys)
        loss.backward()
        optimiser.step()
    return net, network
