"""Adversarial training for radview train: critics, their losses, and the alternating critic / generator step.

A task is adversarial when its ``adversarial`` attribute is True (the AdversarialTask protocol). Besides the
network the model folder ships (the generator), it builds its critics (discriminators) and any companion
networks trained with the generator but not shipped (CycleGAN's backward generator). The training loop
(ai.training.loop) then runs ``adversarial_step`` per batch:

1. the task generates (``generate``: the generator's outputs, with their graph);
2. the critics take one Adam step on ``critic_loss`` with those outputs detached;
3. the generator (and companions) take one step on ``generator_loss`` against the updated critics, whose weights
   are frozen for that backward pass.

Each side has its own GradScaler (AMP as for every task: ai.training.precision); the critic, its optimiser and
scaler and the companions are part of the checkpoint, so a resumed run continues exactly. Critics are never shipped.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import torch
from torch import nn
from torch.nn import functional as F  # noqa: N812 - torch's own convention

from ai.training.precision import autocast, grad_scaler
from viewer.core.errors import ConfigError

if TYPE_CHECKING:
    from ai.training.config import TrainConfig

CRITICS = ("patchgan", "multiscale_l1")
#: the critic's seed is the run's seed plus this (the generator keeps the run's own seed)
CRITIC_SEED_OFFSET = 7919


class AdversarialTask(Protocol):
    """What the loop asks of an adversarial task (besides the Task protocol)."""

    adversarial: bool

    def build_adversaries(self) -> tuple[nn.Module, nn.Module | None]:
        """(every critic as one module, companion networks trained with the generator or None)."""

    def generate(self, net: nn.Module, batch: dict) -> dict[str, torch.Tensor]: ...

    def critic_loss(self, batch: dict, fakes: dict[str, torch.Tensor]) -> torch.Tensor: ...

    def generator_loss(self, batch: dict, fakes: dict[str, torch.Tensor]) -> torch.Tensor: ...


class PatchCritic(nn.Module):
    """A 3D PatchGAN critic: stride-2 4^3 convolutions (instance norm, leaky ReLU) then a 3^3 convolution to one
    logit per patch region. ``features`` gives every level's activations (SegAN's multi-scale L1).

    Args:
        in_channels: channels of the judged input (e.g. image + one-hot / softmax labels).
        channels: features per level; each level halves the grid.
    """

    def __init__(self, in_channels: int, channels=(16, 32, 64)):
        super().__init__()
        if in_channels < 1 or not channels:
            raise ValueError(f"a critic needs in_channels >= 1 and channels, got {in_channels}, {channels}")
        layers, c_prev = [], in_channels
        for level, c in enumerate(int(c) for c in channels):
            norm = nn.Identity() if level == 0 else nn.InstanceNorm3d(c, affine=True)
            layers.append(nn.Sequential(nn.Conv3d(c_prev, c, 4, stride=2, padding=1), norm,
                                        nn.LeakyReLU(0.2, inplace=True)))
            c_prev = c
        self.levels = nn.ModuleList(layers)
        self.head = nn.Conv3d(c_prev, 1, 3, padding=1)

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The input and each level's activations."""
        out = [x]
        for level in self.levels:
            out.append(level(out[-1]))
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Patch logits (B, 1, z', y', x'): real (high) or generated (low)."""
        return self.head(self.features(x)[-1])


def check_adversarial(config: TrainConfig, modes: tuple[str, ...]) -> None:
    """ConfigError naming the config file unless its ``adversarial`` section has a ``mode`` of ``modes`` and a
    known ``critic``."""
    spec = config.adversarial
    if spec.mode not in modes:
        raise ConfigError(f"adversarial.mode {spec.mode!r} is not one of {', '.join(modes)} for task {config.task!r}",
                          config.path)
    if spec.critic not in CRITICS:
        raise ConfigError(f"adversarial.critic {spec.critic!r} is not one of {', '.join(CRITICS)}", config.path)


def least_squares(logits: torch.Tensor, real: bool) -> torch.Tensor:
    """LSGAN loss: mean squared distance of the critic's logits from 1 (real) or 0 (generated)."""
    logits = logits.float()
    return F.mse_loss(logits, torch.full_like(logits, 1.0 if real else 0.0))


def multiscale_l1(critic: PatchCritic, generated: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """SegAN's multi-scale L1: mean over the critic's levels (input included) of the L1 distance between its
    features of ``generated`` and of ``real``. The critic maximises it, the generator minimises it."""
    pairs = zip(critic.features(generated), critic.features(real), strict=True)
    return torch.stack([F.l1_loss(a.float(), b.float()) for a, b in pairs]).mean()


@contextmanager
def frozen(module: nn.Module):
    """``module``'s parameters without gradients inside the block (restored after)."""
    flags = [p.requires_grad for p in module.parameters()]
    for p in module.parameters():
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in zip(module.parameters(), flags, strict=True):
            p.requires_grad_(flag)


@dataclass
class Adversaries:
    """The critic side of a run: critics, their Adam optimiser and GradScaler, the companion networks."""

    critic: nn.Module
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    companions: nn.Module | None

    def state_dict(self) -> dict:
        """Everything a checkpoint keeps of this side."""
        return {"critic": self.critic.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scaler": self.scaler.state_dict(),
                "companions": self.companions.state_dict() if self.companions is not None else {}}

    def load_state_dict(self, state: dict) -> None:
        """Restore what state_dict saved."""
        self.critic.load_state_dict(state["critic"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scaler.load_state_dict(state["scaler"])
        if self.companions is not None:
            self.companions.load_state_dict(state["companions"])

    def train(self) -> None:
        """Critics and companions in training mode."""
        self.critic.train()
        if self.companions is not None:
            self.companions.train()


def is_adversarial(task) -> bool:
    """Does ``task`` train critics (the AdversarialTask protocol)?"""
    return bool(getattr(task, "adversarial", False))


def build_adversaries(task: AdversarialTask, config: TrainConfig, dev, amp: bool) -> Adversaries:
    """The task's critics and companions on ``dev`` (seeded from the run's seed) with the critics' Adam
    (``adversarial.critic_lr``, betas 0.5 / 0.999 as pix2pix and CycleGAN use) and GradScaler (enabled when the
    run uses AMP)."""
    torch.manual_seed(config.seed + CRITIC_SEED_OFFSET)
    critic, companions = task.build_adversaries()
    critic = critic.to(dev)
    companions = companions.to(dev) if companions is not None else None
    optimizer = torch.optim.Adam(critic.parameters(), lr=config.adversarial.critic_lr, betas=(0.5, 0.999))
    return Adversaries(critic, optimizer, grad_scaler(dev, amp), companions)


def adversarial_step(task: AdversarialTask, net: nn.Module, batch: dict, optimizer, scaler, side: Adversaries,
                     dev) -> tuple[float, float]:
    """One critic step then one generator step on ``batch`` (see the module docstring); (generator loss,
    critic loss). Forward passes run under autocast when the run uses AMP; losses are computed in float32."""
    with autocast(dev, scaler):
        fakes = task.generate(net, batch)
    side.optimizer.zero_grad(set_to_none=True)
    with autocast(dev, side.scaler):
        critic_loss = task.critic_loss(batch, {k: v.detach() for k, v in fakes.items()})
    side.scaler.scale(critic_loss).backward()
    side.scaler.step(side.optimizer)
    side.scaler.update()
    optimizer.zero_grad(set_to_none=True)
    with frozen(side.critic), autocast(dev, scaler):
        generator_loss = task.generator_loss(batch, fakes)
    scaler.scale(generator_loss).backward()
    scaler.step(optimizer)
    scaler.update()
    return float(generator_loss.detach()), float(critic_loss.detach())
