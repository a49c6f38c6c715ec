"""A mean ensemble: several independently trained networks on the same input, their logits averaged."""

from __future__ import annotations

import torch
from torch import nn


class MeanEnsemble(nn.Module):
    """Runs every member network on the input and returns the mean of their logits.

    Averaging logits is what the sliding-window engine already does across overlapping windows, so an ensemble
    is decoded exactly like one of its members (a segmentation's softmax / argmax, a detector's sigmoid heat map).
    Members must agree on input channels and output channels; their architectures may differ (e.g. widths). The
    state dict keys are ``members.<i>.<member key>``, so one fp16 weights file holds the whole ensemble, and
    Grad-CAM can hook each member's layers by name (ai.explain).

    Args:
        members: the member networks (built by ai.formats.builtin.build_network from the card).

    Examples::

        net = MeanEnsemble([CenterNetDetector3D(channels=(8, 16, 32, 48)),
                            CenterNetDetector3D(channels=(16, 32, 48, 64))])
        out = net(torch.zeros(1, 1, 32, 32, 32))  # (1, 2, 32, 32, 32): the members' mean logits
    """

    def __init__(self, members: list[nn.Module]):
        super().__init__()
        if len(members) < 2:
            raise ValueError(f"an ensemble needs at least 2 members, got {len(members)}")
        self.members = nn.ModuleList(members)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.members[0](x)
        for member in self.members[1:]:
            out = out + member(x)
        return out / len(self.members)
