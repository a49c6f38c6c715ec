"""The training loop behind ``radview train``: patches, augmentation, AdamW, validation, checkpoints, model folder.

``train(config, out)`` loads the config's data (ai.training.datasets) and calls ``fit``, which finetuning also calls
with cases it already holds. Each epoch draws ``iterations_per_epoch`` batches of patches (centres balanced over labels,
ai.training.sampling), augments them (ai.training.augment), steps AdamW (AMP + GradScaler: on CUDA unless told
otherwise, ai.training.precision), then validates through the task's ``evaluate`` (end to end on the validation cases'
own grids) and writes ``out/checkpoint.pt`` (network, optimiser, scheduler, scaler, history, best weights). An
adversarial task (one with critics, ai.training.adversarial) alternates a critic step and a generator step per batch
instead; its critics, their optimiser and scaler and its companion networks are checkpointed too, and never shipped.
Every epoch's random streams are seeded from (seed, epoch), so a run resumed from its checkpoint continues exactly as an
uninterrupted one. The best epoch's weights (by the early-stopping metric; the training loss when there is no validation
data) become the model folder (ai.training.model_folder), with post-processing chosen on the validation cases when the
config has a ``postprocessing`` section (ai.training.postprocessing), or a detector's threshold when it has
``operating_point: validation`` (ai.training.detection_task.operating_point_card).
"""

from __future__ import annotations

import copy
import json
import logging
import math
import os
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from ai.model import LoadedModel, ModelCard
from ai.training.cases import Case
from ai.training.config import TrainConfig
from ai.training.sampling import WINDOW_PADDING
from ai.training.tasks import Sample, Task, describe_cases, task_for, with_card_inputs
from viewer.core.errors import ConfigError
from viewer.core.progress import CancelToken, ProgressCallback, no_progress

log = logging.getLogger(__name__)
CHECKPOINT = "checkpoint.pt"
#: config keys a resumed run may change (the rest must be as the checkpoint's run had them)
RESUMABLE_CHANGES = ("epochs", "early_stopping", "postprocessing", "operating_point", "card")
#: the cosine schedule ends at this fraction of the initial learning rate
FINAL_LR_FRACTION = 0.05


def default_threads() -> int:
    """torch CPU threads when none are given: every core, at most 4."""
    return max(1, min(os.cpu_count() or 1, 4))


def prepare_run(out_dir: str | Path, device: str, threads: int | None):
    """(the output folder, created; the torch CPU threads, set (default_threads when None); the torch device
    ``device`` names ("auto": CUDA when there is one)) of a run writing a model folder."""
    import torch

    from ai.engine import select_device

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    threads = threads or default_threads()
    torch.set_num_threads(threads)
    return out, threads, select_device(device)


def train(config: TrainConfig, out_dir: str | Path, *, device: str = "auto", resume: bool = False,
          threads: int | None = None, progress: ProgressCallback | None = None,
          cancel: CancelToken | None = None, amp: bool | None = None) -> Path:
    """Train the model ``config`` describes on its ``data`` and write the model folder ``out_dir``; returns it.

    ``resume`` continues from ``out_dir``/checkpoint.pt (with the run's AMP setting). ``amp``: mixed precision
    (ai.training.precision; None: on CUDA only). Raises ConfigError / InputError for bad configs or data, Cancelled
    when ``cancel`` fires (the last finished epoch's checkpoint stays, so ``resume`` goes on)."""
    from ai.training.datasets import load_dataset

    progress = progress or no_progress
    progress(0.0, "loading training data")
    train_cases = load_dataset(config.data["train"], config.labels, config.base)
    validation = load_dataset(config.data.get("validation", []), config.labels, config.base)
    return fit(config, train_cases, validation, out_dir, device=device, resume=resume, threads=threads,
               progress=progress, cancel=cancel, amp=amp)


@dataclass
class RunState:
    """What a checkpoint holds besides the torch states: where the run is and what it has measured."""

    epoch: int = 0  # epochs finished
    history: list[dict] = field(default_factory=list)
    best_epoch: int = 0
    best_value: float | None = None
    best_state: dict = field(default_factory=dict)
    since_best: int = 0
    seconds: float = 0.0
    stopped: str = ""
    parent: dict = field(default_factory=dict)


def fit(config: TrainConfig, train_cases: list[Case], validation: list[Case], out_dir: str | Path, *,
        device: str = "auto", resume: bool = False, threads: int | None = None,
        progress: ProgressCallback | None = None, cancel: CancelToken | None = None,
        card: ModelCard | None = None, amp: bool | None = None) -> Path:
    """Train on ``train_cases``, validate on ``validation`` each epoch, write the model folder ``out_dir``.

    ``card``: the card to fill (default ``config.model_card()``; finetuning passes one naming its parent).
    See ``train`` for the rest."""
    import torch

    from ai.formats.builtin import build_network
    from ai.training.adversarial import build_adversaries, is_adversarial
    from ai.training.augment import build_augmentation, margin_factor
    from ai.training.model_folder import as_loaded, write_model_folder
    from ai.training.precision import amp_default, grad_scaler

    progress = progress or no_progress
    out, threads, dev = prepare_run(out_dir, device, threads)
    amp = amp_default(dev) if amp is None else amp
    task = task_for(config)
    card = copy.copy(card or config.model_card())
    card.window_padding = WINDOW_PADDING  # validated (and later run) as the patches it learns from were cut
    if not train_cases:
        raise ConfigError("no training cases", config.path)
    train_cases = [with_card_inputs(c, card) for c in train_cases]
    validation = [with_card_inputs(c, card) for c in validation]
    progress(0.01, f"preparing {len(train_cases)} training case(s)")
    samples = [task.prepare(c, card) for c in train_cases]
    torch.manual_seed(config.seed)
    net = build_network(config.network).to(dev)
    patch = tuple(int(v) for v in config.patch_size[::-1])  # (z, y, x)
    side = None
    if is_adversarial(task):
        side = build_adversaries(task, config, dev, amp)
    elif config.adversarial is not None:
        raise ConfigError(f"task {config.task!r} has no adversarial training: remove 'adversarial'", config.path)
    optimizer = make_optimizer(config, net, *([side.companions] if side and side.companions is not None else []))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda e: lr_factor(config, e))
    scaler = grad_scaler(dev, amp)
    state = RunState()
    if resume:
        state = restore(out / CHECKPOINT, config, net, optimizer, scheduler, scaler, side)
    elif config.init is not None:
        from ai.training.transfer import initialise

        state.parent = initialise(net, config.init.source, config.init.part, patch)
    crop = tuple(int(math.ceil(s * margin_factor(config.augmentation))) for s in patch)
    transform = build_augmentation(config.augmentation, patch, task.target_modes)
    monitor = config.early_stopping.metric if validation else "train_loss"
    mode = config.early_stopping.mode if validation else "min"
    started = time.monotonic() - state.seconds
    while state.epoch < config.epochs and not state.stopped:
        epoch = state.epoch
        seed_epoch(config.seed, epoch, transform)
        rng = np.random.default_rng([config.seed, epoch])
        tick = time.monotonic()
        losses = run_epoch(net, task, samples, config, transform, crop, rng, optimizer, scaler, dev, progress, cancel,
                           epoch, side)
        loss = losses["train_loss"]
        lr = optimizer.param_groups[0]["lr"]
        scheduler.step()
        metrics = []
        if validation:
            progress(done_fraction(config, epoch + 1), f"epoch {epoch + 1}: validating on {len(validation)} case(s)")
            metrics = task.evaluate(LoadedModel(card, net), validation, device=dev)
            torch.set_num_threads(threads)  # the engine uses every core for inference
        value = loss if not validation else metric_value(metrics, monitor, config)
        state.history.append({"epoch": epoch + 1, **{k: round(v, 5) for k, v in losses.items()}, "lr": lr,
                              "seconds": round(time.monotonic() - tick, 1), "metrics": metrics})
        state.epoch = epoch + 1
        if state.best_value is None or (value > state.best_value if mode == "max" else value < state.best_value):
            state.best_epoch, state.best_value, state.since_best = epoch + 1, value, 0
            state.best_state = {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}
        else:
            state.since_best += 1
        patience = config.early_stopping.patience
        if patience and state.since_best >= patience:
            state.stopped = f"early stopping: {monitor} did not improve for {patience} epochs"
        state.seconds = time.monotonic() - started
        save_checkpoint(out / CHECKPOINT, config, net, optimizer, scheduler, scaler, state, side)
        log.info("epoch %d/%d loss %.4f %s %.4f (best %s at epoch %d)", epoch + 1, config.epochs, loss, monitor,
                 value, state.best_value, state.best_epoch)
        progress(done_fraction(config, epoch + 1), f"epoch {epoch + 1}/{config.epochs} loss {loss:.3f}"
                 + (f" {monitor} {value:.3f}" if validation else ""))
    state.stopped = state.stopped or f"completed {config.epochs} epochs"
    filled = fill_card(card, config, train_cases, validation, state, monitor, mode, dev.type, threads, amp)
    if validation and (config.postprocessing is not None or config.operating_point):
        net.load_state_dict(as_loaded(state.best_state))  # chosen with the weights users get
        if config.postprocessing is not None:
            from ai.training.postprocessing import postprocessed_card

            progress(0.995, "choosing post-processing on the validation cases")
            filled = postprocessed_card(filled, net, task, validation, config.postprocessing, device=dev)
        if config.operating_point:
            from ai.training.detection_task import operating_point_card

            progress(0.995, "choosing the detection threshold on the validation cases")
            filled = operating_point_card(filled, net, validation, device=dev)
    write_model_folder(out, filled, state.best_state, state.history)
    progress(1.0, f"wrote {out}")
    return out


def make_optimizer(config: TrainConfig, net, *companions):
    """AdamW or Adam with the config's learning rate and weight decay, over ``net`` and any ``companions``
    (networks trained with it, e.g. CycleGAN's backward generator)."""
    import itertools

    import torch

    opt = config.optimizer
    if opt.name not in ("adamw", "adam"):
        raise ConfigError(f"optimizer.name {opt.name!r} is not 'adamw' or 'adam'", config.path)
    cls = torch.optim.AdamW if opt.name == "adamw" else torch.optim.Adam
    params = itertools.chain(net.parameters(), *(m.parameters() for m in companions))
    return cls(params, lr=opt.lr, weight_decay=opt.weight_decay)


def lr_factor(config: TrainConfig, epoch: int) -> float:
    """The learning-rate multiplier at ``epoch``: cosine from 1 to FINAL_LR_FRACTION, or 1 (``constant``)."""
    if config.optimizer.schedule == "constant":
        return 1.0
    if config.optimizer.schedule != "cosine":
        raise ConfigError(f"optimizer.schedule {config.optimizer.schedule!r} is not 'cosine' or 'constant'",
                          config.path)
    t = min(epoch / max(config.epochs, 1), 1.0)
    return FINAL_LR_FRACTION + (1 - FINAL_LR_FRACTION) * 0.5 * (1 + math.cos(math.pi * t))


def seed_epoch(seed: int, epoch: int, transform) -> None:
    """Seed torch (dropout) and the augmentation for ``epoch`` from (seed, epoch) alone."""
    import torch

    torch.manual_seed(seed * 100_003 + epoch)
    transform.set_random_state(seed=(seed * 100_003 + epoch) % (2 ** 32))


def done_fraction(config: TrainConfig, epochs_done: float) -> float:
    """Overall progress after ``epochs_done`` epochs (data preparation takes the first 2%)."""
    return 0.02 + 0.97 * epochs_done / config.epochs


def run_epoch(net, task: Task, samples: list[Sample], config: TrainConfig, transform, crop, rng, optimizer, scaler,
              dev, progress, cancel, epoch: int, side=None) -> dict[str, float]:
    """One epoch of ``iterations_per_epoch`` optimiser steps; {"train_loss": mean loss} (+ "critic_loss" when
    ``side`` holds the critics of an adversarial task: train_loss is then the generator's)."""
    import torch

    from ai.training.adversarial import adversarial_step
    from ai.training.augment import augment
    from ai.training.sampling import draw_patch

    net.train()
    if side is not None:
        side.train()
    losses, critic_losses = [], []
    n = config.iterations_per_epoch
    for it in range(n):
        if cancel is not None:
            cancel.raise_if_cancelled()
        patches = [augment(transform, draw_patch(samples[rng.integers(len(samples))], crop, config.sampling, rng))
                   for _ in range(config.batch_size)]
        batch = {k: torch.from_numpy(np.stack([p[k] for p in patches])).to(dev) for k in patches[0]}
        if side is not None:
            loss, critic_loss = adversarial_step(task, net, batch, optimizer, scaler, side, dev)
            losses.append(loss)
            critic_losses.append(critic_loss)
        else:
            losses.append(supervised_step(net, task, batch, optimizer, scaler, dev))
        if it % 5 == 4 or it == n - 1:
            progress(done_fraction(config, epoch + (it + 1) / n),
                     f"epoch {epoch + 1}/{config.epochs} step {it + 1}/{n} loss {np.mean(losses[-10:]):.3f}")
    return {"train_loss": float(np.mean(losses)), **({"critic_loss": float(np.mean(critic_losses))} if side else {})}


def supervised_step(net, task: Task, batch: dict, optimizer, scaler, dev) -> float:
    """One optimiser step on the task's loss of ``batch``; the loss. A task with a ``forward(net, image)`` runs
    the network itself (e.g. with an edge head); outputs reach the loss as float32 (a tensor or a tuple); the
    forward pass runs under autocast when the run uses AMP (``scaler`` enabled)."""
    from ai.training.precision import autocast

    optimizer.zero_grad(set_to_none=True)
    forward = getattr(task, "forward", None)
    with autocast(dev, scaler):
        image = batch.pop("image")
        outputs = forward(net, image) if forward is not None else net(image)
    outputs = tuple(o.float() for o in outputs) if isinstance(outputs, tuple) else outputs.float()
    loss = task.loss(outputs, batch)
    scaler.scale(loss).backward()
    scaler.step(optimizer)
    scaler.update()
    return float(loss.detach())


def metric_value(metrics: list[dict], name: str, config: TrainConfig) -> float:
    """The value of validation metric ``name``; ConfigError listing the metrics there are if it is missing."""
    for m in metrics:
        if m["name"] == name:
            return float(m["value"])
    raise ConfigError(f"early_stopping.metric {name!r} is not among the validation metrics "
                      f"({', '.join(m['name'] for m in metrics) or 'none: no label present in the validation data'})",
                      config.path)


def config_identity(raw: dict) -> str:
    """The config as JSON without the keys a resumed run may change (RESUMABLE_CHANGES)."""
    return json.dumps({k: v for k, v in raw.items() if k not in RESUMABLE_CHANGES}, sort_keys=True, default=str)


def save_checkpoint(path: Path, config: TrainConfig, net, optimizer, scheduler, scaler, state: RunState,
                    side=None) -> None:
    """Write the checkpoint (replacing the old one only when complete); ``side``: an adversarial task's critics
    (ai.training.adversarial.Adversaries)."""
    import torch

    tmp = path.with_name(path.name + ".partial")
    torch.save({"config": config_identity(config.raw), "network": net.state_dict(),
                "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                "scaler": scaler.state_dict(), "torch_rng": torch.get_rng_state(),
                "run": json.dumps({k: v for k, v in vars(state).items() if k != "best_state"}, default=str),
                "best_state": state.best_state, "adversaries": side.state_dict() if side is not None else None}, tmp)
    os.replace(tmp, path)


def restore(path: Path, config: TrainConfig, net, optimizer, scheduler, scaler, side=None) -> RunState:
    """Load a checkpoint into the network, optimiser, scheduler and scaler (and an adversarial task's critics,
    ``side``); the run state it saved. ConfigError when there is none or another config wrote it."""
    import torch

    if not path.is_file():
        raise ConfigError("no checkpoint to resume from (train without --resume first)", path)
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    if config_identity(json.loads(ckpt["config"])) != config_identity(config.raw):  # old checkpoints: fewer exempt
        raise ConfigError(f"checkpoint was written by another config (only {', '.join(RESUMABLE_CHANGES)} may "
                          "change on resume)", path)
    net.load_state_dict(ckpt["network"])
    optimizer.load_state_dict(ckpt["optimizer"])
    scheduler.load_state_dict(ckpt["scheduler"])
    if bool(ckpt["scaler"]) != scaler.is_enabled():  # a disabled scaler saves nothing
        raise ConfigError(f"the run {'used' if ckpt['scaler'] else 'did not use'} mixed precision (AMP): resume it "
                          f"with {'--amp' if ckpt['scaler'] else '--no-amp'}", path)
    scaler.load_state_dict(ckpt["scaler"])
    if side is not None:
        side.load_state_dict(ckpt["adversaries"])
    torch.set_rng_state(ckpt["torch_rng"])
    state = RunState(**json.loads(ckpt["run"]), best_state=ckpt["best_state"])
    if state.stopped.startswith("completed") and state.epoch < config.epochs:
        state.stopped = ""  # more epochs asked for than the run had
    log.info("resuming %s after epoch %d", path, state.epoch)
    return state


def fill_card(card: ModelCard, config: TrainConfig, train_cases: list[Case], validation: list[Case],
              state: RunState, monitor: str, mode: str, device: str, threads: int, amp: bool) -> ModelCard:
    """A copy of ``card`` with what the run measured: the best epoch's validation metrics (each naming its data),
    the training record (data, date, config, seconds, device, AMP, epochs, history) and the parent model."""
    filled = copy.deepcopy(card)
    best = state.history[state.best_epoch - 1]
    filled.metrics = [{**m, "data": f"validation (epoch {state.best_epoch}): {m['data']}"} for m in best["metrics"]]
    sources = "; ".join(dict.fromkeys(c.source or c.name for c in train_cases))
    summary = (f"{len(train_cases)} training case(s) ({sources}), validation on {len(validation)} case(s); "
               f"radview train, {state.epoch} epochs of "
               f"{config.iterations_per_epoch} x {config.batch_size} patches, best epoch {state.best_epoch}")
    filled.training_data = f"{config.card['training_data']} {summary}" if config.card.get("training_data") else summary
    filled.training = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "config_file": str(config.path) if config.path else None,
        "config": json.loads(json.dumps(config.raw, default=str)),
        "data": {"train": {"entries": config.data.get("train", []), "cases": case_records(train_cases)},
                 "validation": {"entries": config.data.get("validation", []), "cases": case_records(validation),
                                "described": describe_cases(validation) if validation else "none"}},
        "seconds": round(state.seconds, 1), "device": device, "threads": threads, "amp": amp,
        "epochs_run": state.epoch, "best_epoch": state.best_epoch, "stopped": state.stopped,
        "monitor": {"metric": monitor, "mode": mode, "best": state.best_value},
        "history": [compact_row(row) for row in state.history],
    }
    filled.parent = {**state.parent, **filled.parent}  # a finetune card's own record wins
    return filled


def compact_row(row: dict) -> dict:
    """An epoch of the run's history for the card: its metrics as {name: value} (the validation cases are
    described once, in ``training.data.validation``; the full rows stay in the checkpoint and training_log.csv)."""
    return {**row, "metrics": {m["name"]: m["value"] for m in row.get("metrics", [])}}


def case_records(cases: list[Case]) -> list[dict]:
    """[{name, source}] of the cases a run used."""
    return [{"name": c.name, "source": c.source} for c in cases]
