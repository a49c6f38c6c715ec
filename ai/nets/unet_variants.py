"""AttentionBlocksUNet: radview's 3D U-Net whose encoder and / or decoder levels carry a chosen attention block
(plain, CBAM or convolution + self-attention) and an optional auxiliary edge head, chosen from a config::

    network: {class: AttentionBlocksUNet, args: {spatial_dims: 3, in_channels: 1, out_channels: 7,
              channels: [16, 32, 64, 128], block: cbam, where: both, edge_head: true}}

``forward`` returns the segmentation logits only (what ai.engine, Grad-CAM and every loss expecting logits use);
``forward_with_edges`` also returns the edge head's boundary logits for training with ai.nets.edges.edge_loss.
"""

from __future__ import annotations

import torch
from torch import nn

from ai.nets.blocks import BLOCKS, EdgeHead, attention_block

PLACES = ("encoder", "decoder", "both")


def conv_block(c_in: int, c_out: int, stride: int = 1) -> nn.Sequential:
    """Two 3x3x3 convolutions with instance norm and leaky ReLU (the first may stride to downsample)."""
    return nn.Sequential(
        nn.Conv3d(c_in, c_out, 3, stride=stride, padding=1, bias=False), nn.InstanceNorm3d(c_out, affine=True),
        nn.LeakyReLU(0.01, inplace=True),
        nn.Conv3d(c_out, c_out, 3, padding=1, bias=False), nn.InstanceNorm3d(c_out, affine=True),
        nn.LeakyReLU(0.01, inplace=True))


class AttentionBlocksUNet(nn.Module):
    """A 3D U-Net (stride-2 convolutions down, transposed convolutions up, skip concatenation) with attention blocks.

    Args:
        spatial_dims: 3 (the only one supported; named as MONAI networks name it).
        in_channels: input channels (one per card input).
        out_channels: output channels (one per label, background included).
        channels: features per level, e.g. [16, 32, 64, 128]; each level below the first halves the grid.
        block: "plain", "cbam" or "cma" (ai.nets.blocks.BLOCKS) after each level's convolutions.
        where: "encoder", "decoder" or "both": the levels that get the block (the bottleneck counts as encoder).
        edge_head: add the auxiliary edge head on the last decoder features (forward_with_edges).

    Patch sides must be divisible by 2^(len(channels) - 1).
    """

    def __init__(self, spatial_dims: int = 3, in_channels: int = 1, out_channels: int = 2,
                 channels=(16, 32, 64, 128), block: str = "plain", where: str = "both", edge_head: bool = False):
        super().__init__()
        if spatial_dims != 3:
            raise ValueError(f"spatial_dims must be 3, got {spatial_dims}")
        if block not in BLOCKS:
            raise ValueError(f"block must be one of {', '.join(BLOCKS)}, got {block!r}")
        if where not in PLACES:
            raise ValueError(f"where must be one of {', '.join(PLACES)}, got {where!r}")
        channels = [int(c) for c in channels]
        if len(channels) < 2:
            raise ValueError(f"channels needs at least 2 levels, got {channels}")
        encoder_block = block if where in ("encoder", "both") else "plain"
        decoder_block = block if where in ("decoder", "both") else "plain"
        self.down = nn.ModuleList()
        self.down_attention = nn.ModuleList()
        c_prev = in_channels
        for level, c in enumerate(channels):
            self.down.append(conv_block(c_prev, c, stride=1 if level == 0 else 2))
            self.down_attention.append(attention_block(encoder_block, c))
            c_prev = c
        self.up = nn.ModuleList()
        self.up_blocks = nn.ModuleList()
        self.up_attention = nn.ModuleList()
        for c_low, c in zip(channels[:0:-1], channels[-2::-1], strict=True):
            self.up.append(nn.ConvTranspose3d(c_low, c, 2, stride=2))
            self.up_blocks.append(conv_block(2 * c, c))
            self.up_attention.append(attention_block(decoder_block, c))
        # the edge head is registered before the output convolution: the last convolution of the module is the
        # segmentation output, as ai.model.network_channels reads it
        self.edge_head = EdgeHead(channels[0]) if edge_head else None
        self.output = nn.Conv3d(channels[0], out_channels, 1)

    def _features(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for conv, attention in zip(self.down, self.down_attention, strict=True):
            x = attention(conv(x))
            skips.append(x)
        x = skips.pop()
        for up, conv, attention in zip(self.up, self.up_blocks, self.up_attention, strict=True):
            x = attention(conv(torch.cat([up(x), skips.pop()], dim=1)))
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Segmentation logits (B, out_channels, z, y, x)."""
        return self.output(self._features(x))

    def forward_with_edges(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(segmentation logits, edge logits (B, 1, z, y, x) or None without an edge head)."""
        features = self._features(x)
        edges = self.edge_head(features) if self.edge_head is not None else None
        return self.output(features), edges
