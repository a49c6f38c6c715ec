"""Shared pieces of the built-in models' training scripts: data on the model grid, patch sampling, the train loop."""

from __future__ import annotations

import argparse
import json
import logging
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ai.engine import onto_model_grid, preprocess
from ai.model import LoadedModel, ModelCard
from viewer.core.volume import Volume

log = logging.getLogger(__name__)
#: (image patch (C, z, y, x), label patch (z, y, x), rng) -> the augmented pair
Augment = Callable[[np.ndarray, np.ndarray, np.random.Generator], tuple[np.ndarray, np.ndarray]]


def reproducible(seed: int, threads: int = 2) -> np.random.Generator:
    """Seed torch (network initialisation) and return the numpy generator for sampling; fix the CPU threads."""
    import torch

    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    return np.random.default_rng(seed)


def tool_args(parser: argparse.ArgumentParser, argv=None) -> argparse.Namespace:
    """Parse a ``python -m ai.training.*`` tool's command line with its ``--threads N`` (torch's CPU threads,
    default 1), set those threads and log progress to stderr with times."""
    parser.add_argument("--threads", type=int, default=1, help="CPU threads for torch (default 1)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    import torch

    torch.set_num_threads(args.threads)
    return args


def to_model_grid(card: ModelCard, volumes: list[Volume], labels: Volume) -> tuple[np.ndarray, np.ndarray]:
    """(image (C, z, y, x) float32, labels (z, y, x) uint8) on the model's grid, normalised as the card says."""
    x, grid = preprocess(LoadedModel(card, None), volumes)
    y = onto_model_grid(labels, grid, nearest=True).array
    return x, y


def sample_patch(x: np.ndarray, y: np.ndarray, foreground: np.ndarray, patch: tuple[int, int, int],
                 rng: np.random.Generator, foreground_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """A (z, y, x) ``patch`` of image and labels (zero-padded at the far edges), centred on a random
    foreground voxel (rows of ``foreground``) with probability ``foreground_fraction``, else anywhere."""
    if rng.random() < foreground_fraction and len(foreground):
        c = foreground[rng.integers(len(foreground))]
    else:
        c = np.array([rng.integers(s) for s in y.shape])
    lo = [int(np.clip(c[a] - p // 2, 0, max(y.shape[a] - p, 0))) for a, p in enumerate(patch)]
    sl = tuple(slice(lo[a], lo[a] + p) for a, p in enumerate(patch))
    xp, yp = x[(slice(None), *sl)], y[sl]
    pad = [(0, p - s) for p, s in zip(patch, yp.shape, strict=True)]
    return np.pad(xp, [(0, 0), *pad]), np.pad(yp, pad)


def fit(net, data: list[tuple[np.ndarray, np.ndarray]], patch: tuple[int, int, int], rng: np.random.Generator, *,
        iterations: int, augment: Augment, batch: int = 4, lr: float = 2e-3,
        foreground_fraction: float = 0.7) -> dict:
    """Train ``net`` with Adam and Dice + cross-entropy on random patches of ``data`` [(image, labels)]
    for ``iterations`` steps (a fixed count, so a seeded run is reproducible).

    Returns {iterations, seconds, cpu_seconds (all threads), final_loss}."""
    import torch
    from monai.losses import DiceCELoss

    loss_fn = DiceCELoss(to_onehot_y=True, softmax=True)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    foregrounds = [np.argwhere(y > 0) for _, y in data]
    net.train()
    start, cpu, it, losses = time.monotonic(), time.process_time(), 0, []
    while it < iterations:
        xs, ys = [], []
        for _ in range(batch):
            k = rng.integers(len(data))
            xp, yp = augment(*sample_patch(*data[k], foregrounds[k], patch, rng, foreground_fraction), rng)
            xs.append(xp.astype(np.float32))
            ys.append(yp[None].astype(np.int64))
        xb, yb = torch.from_numpy(np.stack(xs)), torch.from_numpy(np.stack(ys))
        opt.zero_grad()
        loss = loss_fn(net(xb), yb)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
        it += 1
        if it % 50 == 0:
            log.info("iteration %d loss %.4f", it, np.mean(losses[-50:]))
    net.eval()
    return {"iterations": it, "seconds": round(time.monotonic() - start, 1),
            "cpu_seconds": round(time.process_time() - cpu, 1), "final_loss": float(np.mean(losses[-50:]))}


def save_model(net, card: ModelCard, out: Path) -> None:
    """Write ``out``/model.pt (fp16 state dict) and ``out``/model.json (the card)."""
    import torch

    out.mkdir(parents=True, exist_ok=True)
    torch.save({k: v.half() for k, v in net.state_dict().items()}, out / card.weights)
    write_card(card, out)


def write_card(card: ModelCard, out: Path) -> None:
    """Write ``out``/model.json from ``card``."""
    (out / "model.json").write_text(json.dumps(card.to_json(), indent=1))


def finish_card(card: ModelCard, out: Path, run: dict, *, training_data: str, intended_use: str, limitations: str,
                license: str, changelog: dict[str, str]) -> int:
    """Fill the card's documentation (authors: radview developers), write ``out``/model.json, print the run and
    the metrics as JSON; returns the training script's exit status."""
    card.training_data, card.intended_use, card.limitations = training_data, intended_use, limitations
    card.license, card.authors, card.changelog = license, "radview developers", changelog
    write_card(card, out)
    print(json.dumps({"run": run, "metrics": card.metrics}, indent=1))
    return 0
