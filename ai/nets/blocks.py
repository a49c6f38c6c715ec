"""Attention blocks for 3D U-Nets: CBAM (channel then spatial attention) and a convolution + self-attention
(CMA-style) block, both shape-preserving (B, C, z, y, x) -> (B, C, z, y, x), plus the auxiliary edge head.

References: Woo et al., "CBAM: Convolutional Block Attention Module" (ECCV 2018); the CMA block follows the
"convolution and multi-head attention in parallel, fused" design of hybrid CNN-transformer segmenters (e.g.
CoTr, UTNet): a local convolution branch beside a global self-attention branch over a pooled token grid.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F  # noqa: N812 - torch's own convention

MIN_HIDDEN = 8


class ChannelAttention(nn.Module):
    """CBAM's channel attention: a shared MLP on the average- and max-pooled features, summed, sigmoid. The hidden
    layer keeps at least MIN_HIDDEN units: with only two pooled vectors per image, a 1-2 unit ReLU layer of a
    narrow level is easily dead for both (no gradient at all)."""

    def __init__(self, channels: int, reduction: int = 8):
        super().__init__()
        hidden = max(channels // reduction, MIN_HIDDEN)
        self.mlp = nn.Sequential(nn.Conv3d(channels, hidden, 1), nn.ReLU(inplace=True), nn.Conv3d(hidden, channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weights = self.mlp(F.adaptive_avg_pool3d(x, 1)) + self.mlp(F.adaptive_max_pool3d(x, 1))
        return x * torch.sigmoid(weights)


class SpatialAttention(nn.Module):
    """CBAM's spatial attention: a k^3 convolution of the channel mean and max, sigmoid."""

    def __init__(self, kernel_size: int = 7):
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError(f"kernel_size must be odd, got {kernel_size}")
        self.conv = nn.Conv3d(2, 1, kernel_size, padding=kernel_size // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = torch.cat([x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)], dim=1)
        return x * torch.sigmoid(self.conv(pooled))


class CBAM3d(nn.Module):
    """Convolutional Block Attention Module in 3D: channel attention, then spatial attention.

    Args:
        channels: feature channels C of the (B, C, z, y, x) input.
        reduction: channel MLP reduction ratio.
        kernel_size: spatial attention kernel (odd).
    """

    def __init__(self, channels: int, reduction: int = 8, kernel_size: int = 7):
        super().__init__()
        self.channel = ChannelAttention(channels, reduction)
        self.spatial = SpatialAttention(kernel_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.spatial(self.channel(x))


class ConvSelfAttention3d(nn.Module):
    """Convolution + multi-head self-attention (CMA-style), residual: x + fuse([conv(x), attention(x)]).

    The attention branch pools the features to a token grid of at most ``max_side`` per axis (so its cost stays
    bounded at any resolution), runs multi-head self-attention with a learned position-free query/key/value
    projection, and upsamples back (trilinear); a 1x1x1 convolution fuses the two branches.

    Args:
        channels: feature channels C (divisible by ``heads``).
        heads: attention heads.
        max_side: largest token grid side.
    """

    def __init__(self, channels: int, heads: int = 4, max_side: int = 8):
        super().__init__()
        if channels % heads:
            raise ValueError(f"channels ({channels}) must be divisible by heads ({heads})")
        self.max_side = max_side
        self.conv = nn.Sequential(nn.Conv3d(channels, channels, 3, padding=1, groups=channels),
                                  nn.Conv3d(channels, channels, 1), nn.InstanceNorm3d(channels, affine=True),
                                  nn.LeakyReLU(0.01, inplace=True))
        self.norm = nn.LayerNorm(channels)
        self.attention = nn.MultiheadAttention(channels, heads, batch_first=True)
        self.fuse = nn.Conv3d(2 * channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        grid = tuple(min(s, self.max_side) for s in x.shape[2:])
        tokens = F.adaptive_avg_pool3d(x, grid).flatten(2).transpose(1, 2)  # (B, N, C)
        tokens = self.norm(tokens)
        attended, _ = self.attention(tokens, tokens, tokens, need_weights=False)
        attended = attended.transpose(1, 2).reshape(x.shape[0], x.shape[1], *grid)
        attended = F.interpolate(attended, size=x.shape[2:], mode="trilinear", align_corners=False)
        return x + self.fuse(torch.cat([self.conv(x), attended], dim=1))


#: ``block`` names a U-Net config may choose -> the attention block class (None: a plain convolution block)
BLOCKS = {"plain": None, "cbam": CBAM3d, "cma": ConvSelfAttention3d}


def attention_block(kind: str, channels: int) -> nn.Module:
    """The attention block ``kind`` (a key of BLOCKS) for ``channels`` features; identity for "plain"."""
    if kind not in BLOCKS:
        raise ValueError(f"block must be one of {', '.join(BLOCKS)}, got {kind!r}")
    cls = BLOCKS[kind]
    if cls is ConvSelfAttention3d:
        return cls(channels, heads=4 if channels % 4 == 0 else 1)
    return nn.Identity() if cls is None else cls(channels)


class EdgeHead(nn.Module):
    """Auxiliary edge prediction: (B, C, z, y, x) decoder features -> (B, 1, z, y, x) boundary logits
    (trained against label boundaries, ai.nets.edges)."""

    def __init__(self, channels: int):
        super().__init__()
        hidden = max(channels // 2, 4)
        self.layers = nn.Sequential(nn.Conv3d(channels, hidden, 3, padding=1), nn.LeakyReLU(0.01, inplace=True),
                                    nn.Conv3d(hidden, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)
