"""PET/CT fusion networks: feature-level (two encoders fused at every level, one decoder) and decision-level (one
U-Net per modality, their logits combined by learned per-class weights).

Input-level fusion needs no class of its own: a MONAI ``UNet`` with ``in_channels: 2`` on the stacked channels.
Every network here takes (B, 2, z, y, x): channel 0 the CT, channel 1 the PET (the card's input order), and gives
logits (B, out_channels, z, y, x); patch sides must be divisible by 2^len(channels). Like MONAI's UNet (the
input-level network), the first level already works at half resolution and one transposed convolution restores
the full grid before the output, so the three strategies cost a comparable amount of CPU per voxel.

The per-modality networks run side by side as grouped convolutions (``groups=2``): in every layer, channel block 0
sees only the CT stream and block 1 only the PET stream, so they are two separate networks (no weight shared, no
feature mixed; tests check it) computed by one module, whose first convolution takes the card's two inputs (as
ai.model.LoadedModel.check_network reads it).
"""

from __future__ import annotations

import torch
from torch import nn

#: input channels of every fusion network: CT, PET
MODALITIES = 2


def stream_block(c_in: int, c_out: int, streams: int, stride: int = 1) -> nn.Sequential:
    """Two 3x3x3 convolutions with instance norm and leaky ReLU for each of ``streams`` independent streams
    (grouped convolutions; ``c_in`` / ``c_out`` are per stream; the first convolution may stride to downsample)."""
    return nn.Sequential(
        nn.Conv3d(streams * c_in, streams * c_out, 3, stride=stride, padding=1, groups=streams, bias=False),
        nn.InstanceNorm3d(streams * c_out, affine=True), nn.LeakyReLU(0.01, inplace=True),
        nn.Conv3d(streams * c_out, streams * c_out, 3, padding=1, groups=streams, bias=False),
        nn.InstanceNorm3d(streams * c_out, affine=True), nn.LeakyReLU(0.01, inplace=True))


def join_streams(a: torch.Tensor, b: torch.Tensor, streams: int) -> torch.Tensor:
    """Concatenate two multi-stream tensors stream by stream: (B, s*ca, ...) and (B, s*cb, ...) ->
    (B, s*(ca+cb), ...) ordered [a_0, b_0, a_1, b_1, ...], so a grouped convolution keeps the streams apart."""
    if streams == 1:
        return torch.cat([a, b], dim=1)
    joined = torch.cat([a.unflatten(1, (streams, -1)), b.unflatten(1, (streams, -1))], dim=2)
    return joined.flatten(1, 2)


def check_args(spatial_dims: int, in_channels: int, out_channels: int, channels) -> list[int]:
    """The validated per-level ``channels``; ValueError naming the argument otherwise."""
    if spatial_dims != 3:
        raise ValueError(f"spatial_dims must be 3, got {spatial_dims}")
    if in_channels != MODALITIES:
        raise ValueError(f"in_channels must be {MODALITIES} (CT, PET), got {in_channels}")
    if out_channels < 2:
        raise ValueError(f"out_channels must be >= 2 (background and a label), got {out_channels}")
    channels = [int(c) for c in channels]
    if len(channels) < 2 or min(channels) < 1:
        raise ValueError(f"channels needs at least 2 levels of >= 1 features, got {channels}")
    return channels


class StreamEncoder(nn.Module):
    """``streams`` parallel U-Net encoders, one input channel each: every level halves the grid (stride-2
    convolution). ``forward`` (B, streams, z, y, x) -> per level l (B, streams*c_l, z/2^(l+1), ...)."""

    def __init__(self, channels: list[int], streams: int):
        super().__init__()
        self.levels = nn.ModuleList(stream_block(1 if i == 0 else channels[i - 1], c, streams, stride=2)
                                    for i, c in enumerate(channels))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        features = []
        for level in self.levels:
            x = level(x)
            features.append(x)
        return features


class StreamDecoder(nn.Module):
    """``streams`` parallel U-Net decoders: transposed-convolution upsampling, per-stream skip concatenation, two
    convolutions per level, a last transposed convolution to the input grid. ``forward`` (StreamEncoder's
    per-level features, deepest last) -> (B, streams*channels[0], z, y, x) on the encoder's input grid."""

    def __init__(self, channels: list[int], streams: int):
        super().__init__()
        self.streams = streams
        self.up = nn.ModuleList(nn.ConvTranspose3d(streams * c_low, streams * c, 2, stride=2, groups=streams)
                                for c_low, c in zip(channels[:0:-1], channels[-2::-1], strict=True))
        self.blocks = nn.ModuleList(stream_block(2 * c, c, streams) for c in channels[-2::-1])
        c0 = streams * channels[0]
        self.full = nn.Sequential(nn.ConvTranspose3d(c0, c0, 2, stride=2, groups=streams),
                                  nn.InstanceNorm3d(c0, affine=True), nn.LeakyReLU(0.01, inplace=True))

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        x = features[-1]
        for up, block, skip in zip(self.up, self.blocks, features[-2::-1], strict=True):
            x = block(join_streams(up(x), skip, self.streams))
        return self.full(x)


class FeatureFusionUNet(nn.Module):
    """Feature-level fusion: a CT encoder and a PET encoder; at every level their features are concatenated and
    fused by a 1x1x1 convolution (+ leaky ReLU) into the skip (and, at the deepest level, the bottleneck) of ONE
    shared decoder.

    Args:
        spatial_dims: 3 (the only one supported; named as MONAI networks name it).
        in_channels: 2 (CT, PET).
        out_channels: output channels (one per label, background included).
        channels: features per level and per encoder, e.g. [16, 32, 64, 128].

    Shapes: (B, 2, z, y, x) -> (B, out_channels, z, y, x).
    """

    def __init__(self, spatial_dims: int = 3, in_channels: int = MODALITIES, out_channels: int = 2,
                 channels=(16, 32, 64, 128)):
        super().__init__()
        channels = check_args(spatial_dims, in_channels, out_channels, channels)
        self.encoder = StreamEncoder(channels, MODALITIES)
        self.fuse = nn.ModuleList(nn.Sequential(nn.Conv3d(MODALITIES * c, c, 1), nn.LeakyReLU(0.01, inplace=True))
                                  for c in channels)
        self.decoder = StreamDecoder(channels, 1)
        self.output = nn.Conv3d(channels[0], out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Segmentation logits (B, out_channels, z, y, x) of the (B, 2, z, y, x) CT + PET input."""
        fused = [fuse(f) for fuse, f in zip(self.fuse, self.encoder(x), strict=True)]
        return self.output(self.decoder(fused))


class DecisionFusionUNet(nn.Module):
    """Decision-level fusion: a complete U-Net on the CT and another on the PET, each giving its own logits; the
    output for class k is w_ct[k] * ct_logits[k] + w_pet[k] * pet_logits[k] + b[k], weights learned per class
    (a grouped 1x1x1 convolution, initialised to the mean of the two: 0.5, 0.5, 0).

    Args: as FeatureFusionUNet. Shapes: (B, 2, z, y, x) -> (B, out_channels, z, y, x);
    ``modality_logits`` gives each network's own (B, out_channels, z, y, x) logits.
    """

    def __init__(self, spatial_dims: int = 3, in_channels: int = MODALITIES, out_channels: int = 2,
                 channels=(16, 32, 64, 128)):
        super().__init__()
        channels = check_args(spatial_dims, in_channels, out_channels, channels)
        self.classes = out_channels
        self.encoder = StreamEncoder(channels, MODALITIES)
        self.decoder = StreamDecoder(channels, MODALITIES)
        self.heads = nn.Conv3d(MODALITIES * channels[0], MODALITIES * out_channels, 1, groups=MODALITIES)
        # registered last: the last convolution gives one channel per label (LoadedModel.check_network)
        self.combine = nn.Conv3d(MODALITIES * out_channels, out_channels, 1, groups=out_channels)
        with torch.no_grad():
            self.combine.weight.fill_(1.0 / MODALITIES)
            self.combine.bias.zero_()

    def modality_logits(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(CT network logits, PET network logits), each (B, out_channels, z, y, x)."""
        ct, pet = self.heads(self.decoder(self.encoder(x))).chunk(MODALITIES, dim=1)
        return ct, pet

    def class_weights(self) -> torch.Tensor:
        """The learned combination (out_channels, 2): per class, the weight of the CT and of the PET logits."""
        return self.combine.weight.detach().reshape(self.classes, MODALITIES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Combined logits (B, out_channels, z, y, x) of the (B, 2, z, y, x) CT + PET input."""
        ct, pet = self.modality_logits(x)
        per_class = torch.stack([ct, pet], dim=2).flatten(1, 2)  # [ct_0, pet_0, ct_1, pet_1, ...]
        return self.combine(per_class)
