"""CenterNet-style 3D lesion detector: MONAI ResNet backbone, small feature pyramid, centre heat map + size head."""

from __future__ import annotations

import torch
from monai.networks.nets import ResNet
from torch import nn


class CenterNetDetector3D(nn.Module):
    """Per-voxel lesion-centre heat map and lesion diameter from a 3D image, at the input's resolution.

    The backbone is MONAI's ``ResNet`` (basic residual blocks, ``layers`` per stage, widths ``channels``;
    a 3x3x3 stem at stride 1, no max pool, stages at strides 1, 2, 4, 8; its classifier unused). A top-down
    pyramid (1x1 lateral convolutions, trilinear upsampling, sums) brings the deepest, widest-context
    features back to stride 1, where a 3x3x3 convolution and a 1x1 convolution give 2 logit channels:

    - channel 0: lesion-centre heat map (sigmoid: 1 at a lesion centre, a Gaussian around it);
    - channel 1: lesion diameter (sigmoid x ai.detection_heatmap.MAX_DIAMETER_MM) at the centre.

    Args:
        spatial_dims: 3 (the only value supported).
        in_channels: input channels (1: PET in SUVbw / max).
        out_channels: 2 (heat map, size); named so for LoadedModel.check_network against the card's labels.
        channels: widths of the 4 ResNet stages.
        layers: residual blocks per stage.
        head_channels: width of the pyramid and of the head.

    Input sides must be multiples of 8.

    Examples::

        net = CenterNetDetector3D(in_channels=1, channels=(8, 16, 32, 48))
        out = net(torch.zeros(1, 1, 32, 32, 32))  # (1, 2, 32, 32, 32) logits
    """

    def __init__(self, spatial_dims: int = 3, in_channels: int = 1, out_channels: int = 2,
                 channels=(8, 16, 32, 48), layers=(1, 1, 1, 1), head_channels: int = 16, prior: float = 0.01):
        super().__init__()
        if spatial_dims != 3:
            raise ValueError(f"spatial_dims must be 3, got {spatial_dims}")
        if out_channels != 2:
            raise ValueError(f"out_channels must be 2 (heat map, size), got {out_channels}")
        if len(channels) != 4 or len(layers) != 4:
            raise ValueError(f"channels and layers need 4 entries (ResNet stages), got {channels}, {layers}")
        self.backbone = ResNet("basic", list(layers), list(channels), spatial_dims=3, n_input_channels=in_channels,
                               conv1_t_size=3, conv1_t_stride=1, no_max_pool=True, feed_forward=False)
        self.lateral = nn.ModuleList(nn.Conv3d(c, head_channels, 1) for c in channels)
        self.head = nn.Sequential(nn.Conv3d(head_channels, head_channels, 3, padding=1), nn.ReLU(inplace=True),
                                  nn.Conv3d(head_channels, out_channels, 1))
        with torch.no_grad():  # CenterNet's focal-loss prior: the heat map starts near ``prior`` everywhere
            self.head[-1].bias[0] = float(torch.log(torch.tensor(prior / (1 - prior))))

    def stages(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The backbone's features at strides 1, 2, 4, 8."""
        b = self.backbone
        x = b.act(b.bn1(b.conv1(x)))
        out = []
        for layer in (b.layer1, b.layer2, b.layer3, b.layer4):
            x = layer(x)
            out.append(x)
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 2, *spatial) logits: heat map and size, see the class docstring."""
        feats = self.stages(x)
        top = self.lateral[-1](feats[-1])
        for lateral, f in zip(self.lateral[-2::-1], feats[-2::-1], strict=True):
            top = lateral(f) + nn.functional.interpolate(top, size=f.shape[2:], mode="trilinear", align_corners=False)
        return self.head(top)
