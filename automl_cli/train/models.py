"""SegAhnet: a small U-Net-like 2-D segmentation network with Clara's SegAhnet args."""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from .registry import register


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
                         nn.Conv2d(cout, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class PyramidPooling(nn.Module):
    """Context from pooled grids of several sizes, upsampled and fused back (as PSPNet)."""

    def __init__(self, channels: int, sizes=(1, 2, 4)):
        super().__init__()
        self.sizes = sizes
        branch = max(1, channels // len(sizes))
        self.reduce = nn.ModuleList(nn.Conv2d(channels, branch, 1) for _ in sizes)
        self.fuse = nn.Sequential(nn.Conv2d(channels + branch * len(sizes), channels, 1), nn.ReLU(inplace=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        pooled = [F.interpolate(conv(F.adaptive_avg_pool2d(x, s)), size=(h, w), mode="bilinear", align_corners=False)
                  for s, conv in zip(self.sizes, self.reduce)]
        return self.fuse(torch.cat([x, *pooled], dim=1))


@register("model")
class SegAhnet(nn.Module):
    """Encoder-decoder with skip connections. `forward` returns logits; `activate` turns
    them into probabilities with the configured final activation."""

    def __init__(self, num_classes: int = 2, if_use_psp: bool = False, pretrain_weight_name: str | None = None,
                 plane: str = "z", final_activation: str = "softmax", n_spatial_dim: int = 2,
                 in_channels: int = 1, base_channels: int = 8):
        super().__init__()
        if n_spatial_dim != 2:
            raise ValueError(f"SegAhnet here is 2-D only: n_spatial_dim must be 2, got {n_spatial_dim}")
        if final_activation not in ("softmax", "sigmoid"):
            raise ValueError(f"final_activation must be 'softmax' or 'sigmoid', got {final_activation!r}")
        self.plane = plane  # Clara's 2.5-D plane; kept so Clara configs load, unused in 2-D
        self.final_activation = final_activation
        b = base_channels
        self.enc1, self.enc2, self.bottom = _block(in_channels, b), _block(b, 2 * b), _block(2 * b, 4 * b)
        self.psp = PyramidPooling(4 * b) if if_use_psp else nn.Identity()
        self.up2, self.dec2 = nn.ConvTranspose2d(4 * b, 2 * b, 2, stride=2), _block(4 * b, 2 * b)
        self.up1, self.dec1 = nn.ConvTranspose2d(2 * b, b, 2, stride=2), _block(2 * b, b)
        self.head = nn.Conv2d(b, num_classes, 1)
        if pretrain_weight_name:
            path = Path(pretrain_weight_name)
            if not path.is_file():
                raise FileNotFoundError(f"pretrain_weight_name: no such file: {path}")
            self.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        e1 = self.enc1(x)
        e2 = self.enc2(F.max_pool2d(e1, 2))
        bottom = self.psp(self.bottom(F.max_pool2d(e2, 2)))
        d2 = self.dec2(torch.cat([self.up2(bottom), e2], dim=1))
        d1 = self.dec1(torch.cat([self.up1(d2), e1], dim=1))
        return self.head(d1)

    def activate(self, logits: torch.Tensor) -> torch.Tensor:
        return torch.softmax(logits, dim=1) if self.final_activation == "softmax" else torch.sigmoid(logits)
