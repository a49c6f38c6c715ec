"""Edge targets and the boundary loss for an auxiliary edge head: label boundaries computed from the label map."""

from __future__ import annotations

import torch
from torch.nn import functional as F  # noqa: N812 - torch's own convention

#: Largest weight of a boundary voxel against a non-boundary one (boundaries are a few % of a patch).
MAX_POS_WEIGHT = 20.0


def label_boundaries(labels: torch.Tensor) -> torch.Tensor:
    """1.0 where a voxel of the (B, 1, z, y, x) label map has a different label within its 3x3x3 neighbourhood
    (both sides of every boundary, background/organ and organ/organ), else 0.0; float, same shape."""
    values = labels.float()
    high = F.max_pool3d(values, 3, stride=1, padding=1)
    low = -F.max_pool3d(-values, 3, stride=1, padding=1)
    return (high != low).float()


def edge_loss(edge_logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Boundary loss: binary cross-entropy of the (B, 1, ...) edge logits against label_boundaries(labels), the
    rare boundary voxels weighted up by the negative / positive ratio of the batch (at most MAX_POS_WEIGHT)."""
    target = label_boundaries(labels)
    positives = target.sum()
    weight = ((target.numel() - positives) / positives.clamp(min=1.0)).clamp(1.0, MAX_POS_WEIGHT)
    return F.binary_cross_entropy_with_logits(edge_logits, target, pos_weight=weight)
