"""nnU-Net v2's sliding-window prediction: Gaussian-weighted tiles at step 0.5, mirroring, folds averaged.

Same tiles, weights, mirror combinations and fold averaging as ``nnUNetPredictor`` (predict_from_raw_data.py),
arranged for the CPU: one worker thread per core, each running whole network calls with single-threaded ops
(nnU-Net runs one call at a time over an OpenMP team, whose per-op barriers stall whenever a core is busy
elsewhere), tiles cut by the workers (nnU-Net: a producer thread with a second OpenMP team), results stitched
in nnU-Net's order. On the CPU the network runs as a channels-last copy (ai.cpu_network: oneDNN convolutions
without layout reorders, instance norm and 1x1 convolutions computed in that layout, as accurately as aten's own
kernels), and freed activations are kept for reuse while it runs (ai.allocator: no page faults per layer).
The stitching keeps nnU-Net's float16 arithmetic on purpose: labels at tile borders depend on it.
"""

from __future__ import annotations

import itertools
import math
import os
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from functools import lru_cache

import numpy as np

from ai.allocator import reuse_freed_memory
from ai.cpu_network import cpu_inference_network
from ai.model import mirror_combinations
from viewer.core.progress import CancelToken, ProgressCallback, no_progress

#: tile voxels in the network at once (all workers, whole batches), at most MAX_BATCH tiles per call on a GPU
BATCH_VOXELS = 2 ** 20
MAX_BATCH = 8
#: at most this many tiles per call on a CPU worker (measured on 2 cores: 2 beats 1, 4 and 8)
CPU_BATCH = 2


@lru_cache(maxsize=4)
def gaussian_weights(tile: tuple[int, ...], sigma_scale: float = 1.0 / 8, value_scaling_factor: float = 10.0):
    """nnU-Net's tile importance map (compute_gaussian), float16 values as nnU-Net uses them, as float32 tensor."""
    import torch
    from scipy.ndimage import gaussian_filter

    tmp = np.zeros(tile)
    tmp[tuple(t // 2 for t in tile)] = 1
    g = gaussian_filter(tmp, [t * sigma_scale for t in tile], 0, mode="constant", cval=0)
    g /= np.max(g) / value_scaling_factor
    g = g.astype(np.float16)
    g[g == 0] = g[g != 0].min()
    return torch.from_numpy(g.astype(np.float32))


def tile_starts(image_size, tile, step: float = 0.5) -> list[list[int]]:
    """Start index of the tiles along each axis (compute_steps_for_sliding_window)."""
    starts = []
    for size, t in zip(image_size, tile, strict=True):
        n = int(math.ceil((size - t) / (t * step))) + 1
        stride = (size - t) / (n - 1) if n > 1 else 0
        starts.append([int(np.round(stride * i)) for i in range(n)])
    return starts


def pad_to_tile(data, tile):
    """Zero-pad (C, *spatial) to at least ``tile``, content centred (acvl pad_nd_image); (padded, crop-back slices)."""
    import torch

    pads, back = [], [slice(None)]
    for size, t in zip(data.shape[1:], tile, strict=True):
        extra = max(t - size, 0)
        pads.append((extra // 2, extra - extra // 2))
        back.append(slice(extra // 2, extra // 2 + size))
    if not any(p for pair in pads for p in pair):
        return data, tuple(back)
    flat = [p for pair in reversed(pads) for p in pair]
    return torch.nn.functional.pad(data, flat, mode="constant", value=0.0), tuple(back)


def sliding_window_logits(network, data, tile, *, fold_weights=(None,), mirror_axes=None, step: float = 0.5,
                          device=None, precision: str = "float32", progress: ProgressCallback | None = None,
                          cancel: CancelToken | None = None):
    """Logits (K, *spatial) as nnU-Net holds them (float16 tensor) for ``data`` (C, *spatial) float32 CPU tensor.

    ``network`` is loaded with each state dict of ``fold_weights`` in turn (None: keep its weights); the folds'
    logits are averaged. ``tile`` has 3 entries, or 2 for a 2d configuration (the first axis is then predicted
    slice by slice). The arithmetic follows nnU-Net's: per tile, the float32 mean over the mirrored copies times
    the float16 Gaussian is added into float16 sums (at tile borders the weights are float16 subnormals, so this
    precision decides labels there), then divided by the summed weights. ``precision='bfloat16'`` runs the
    network under bfloat16 autocast (faster on CPUs with bf16 instructions; labels may differ at boundaries).
    """
    import torch

    progress = progress or no_progress
    device = device or torch.device("cpu")
    two_d = len(tile) == data.ndim - 2
    full_tile = (1, *tile) if two_d else tuple(tile)
    data, back = pad_to_tile(data, full_tile)
    starts = tile_starts(data.shape[1:], full_tile, step) if not two_d else \
        [list(range(data.shape[1])), *tile_starts(data.shape[2:], tile, step)]
    corners = list(itertools.product(*starts))
    slices = [tuple(slice(c, c + t) for c, t in zip(corner, full_tile, strict=True)) for corner in corners]
    flips = mirror_combinations(mirror_axes or ())
    jobs = [(i, flip) for i in range(len(corners)) for flip in flips]
    cpu, voxels = device.type == "cpu", int(np.prod(tile))
    # small CPU tiles: one single-threaded worker per core; big tiles keep one multi-threaded call at a time,
    # so at most ~BATCH_VOXELS tile voxels are in the network at once (memory as nnU-Net's)
    workers = (os.cpu_count() or 1) if cpu and voxels < BATCH_VOXELS else 1
    batch = max(1, min(CPU_BATCH if cpu else MAX_BATCH, BATCH_VOXELS // (voxels * workers)))
    groups = [jobs[s:s + batch] for s in range(0, len(jobs), batch)]
    gauss = gaussian_weights(tuple(tile)).half()
    layout = torch.contiguous_format
    given = network
    if cpu:
        network = cpu_inference_network(network)
        layout = torch.channels_last_3d if len(tile) == 3 else torch.channels_last

    def run(group):
        with torch.inference_mode(), torch.autocast(device.type, torch.bfloat16, enabled=precision == "bfloat16"):
            inp = torch.stack([_flip(data[(slice(None), *slices[i])], flip, two_d) for i, flip in group])
            out = network(inp.to(device).contiguous(memory_format=layout))
            return out.float().cpu().contiguous()

    total = len(groups) * len(fold_weights)
    result = None
    with reuse_freed_memory(), _one_thread_per_worker(workers), ThreadPoolExecutor(workers) as pool, \
            torch.inference_mode(), _first_fold_kept(given, network, fold_weights):
        weight = torch.zeros(data.shape[1:], dtype=torch.float16)
        for sl in slices:
            weight[sl] += gauss
        for f, weights in enumerate(fold_weights):
            if weights is not None:
                network.load_state_dict(weights)
            acc, pending = None, {}
            for k, out in enumerate(_in_order(pool, run, groups, 2 * workers, cancel)):
                for o, (i, flip) in zip(out, groups[k], strict=True):
                    o = _flip(o, flip, False)
                    pending[i] = o.clone() if i not in pending else pending[i].add_(o)
                    if flip != flips[-1]:
                        continue
                    tile_logits = pending.pop(i).div_(len(flips)).mul_(gauss)
                    if acc is None:
                        acc = torch.zeros((tile_logits.shape[0], *data.shape[1:]), dtype=torch.float16)
                    acc[(slice(None), *slices[i])] += tile_logits[:, None] if two_d else tile_logits
                done = f * len(groups) + k + 1
                progress(done / total, f"tile {done}/{total}")
            acc.div_(weight)
            result = acc if result is None else result.add_(acc)
        if len(fold_weights) > 1:
            result.div_(len(fold_weights))
    return result[back]


@contextmanager
def _first_fold_kept(given, network, fold_weights):
    """The caller's network ``given`` holds the first fold's weights again after the block when the block loads
    the folds into it (``network`` is ``given``: on a GPU; the CPU runs a copy), also after a cancel: what
    runs it next (an explanation, another prediction) sees the weights it was loaded with."""
    try:
        yield
    finally:
        if network is given and len(fold_weights) > 1 and fold_weights[0] is not None:
            given.load_state_dict(fold_weights[0])


@contextmanager
def _one_thread_per_worker(workers: int):
    """With several workers, each torch op runs single-threaded (no OpenMP barrier per op), restored after."""
    import torch

    old = torch.get_num_threads()
    if workers > 1:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def _in_order(pool, fn, items, depth: int, cancel: CancelToken | None):
    """fn(item) for each item on ``pool``, at most ``depth`` in flight, results yielded in item order."""
    pending: deque = deque()
    it = iter(items)
    try:
        while True:
            while len(pending) < depth:
                item = next(it, None)
                if item is None:
                    break
                if cancel is not None:
                    cancel.raise_if_cancelled()
                pending.append(pool.submit(fn, item))
            if not pending:
                return
            yield pending.popleft().result()
    finally:
        for fut in pending:
            fut.cancel()


def _flip(x, axes, squeeze_first: bool):
    """(C, *spatial) ``x`` (its first spatial axis dropped when ``squeeze_first``) flipped along spatial ``axes``."""
    import torch

    if squeeze_first:
        x = x[:, 0]
    return torch.flip(x, [a + 1 for a in axes]) if axes else x
