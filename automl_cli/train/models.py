"""SegAhnet: a small U-Net-like 2-D segmentation network that accepts Clara's SegAhnet args.

Clara's SegAhnet is a 2.5-D/3-D anisotropic hybrid network; here it is a two-level
encoder-decoder sized so an epoch of the template's data takes seconds on one CPU core.
Keeping Clara's argument names lets a Clara config (and its search sections) drive it
unchanged.
"""
from __future__ import annotations

import math
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from .registry import register

FINAL_ACTIVATIONS = ("softmax", "sigmoid")


def _norm(channels: int) -> nn.Module:
    # GroupNorm rather than BatchNorm: it behaves the same in training and evaluation, so a
    # validation score after a few dozen steps measures the weights and not how far
    # BatchNorm's running statistics have caught up, and runs vary less from seed to seed.
    return nn.GroupNorm(math.gcd(4, channels), channels)


def _conv_block(cin: int, cout: int) -> nn.Sequential:
    # Normalised blocks keep the network trainable across the wide learning-rate range a
    # search tries, so the learning rate changes the score instead of just diverging.
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False), _norm(cout), nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False), _norm(cout), nn.ReLU(inplace=True),
    )


class PyramidPooling(nn.Module):
    """PSPNet-style context: average-pool the feature map to a few grid sizes, project,
    upsample and concatenate, so every pixel sees the whole image at the bottleneck."""

    def __init__(self, channels: int, grid_sizes: tuple[int, ...] = (1, 2, 4)):
        super().__init__()
        self.grid_sizes = grid_sizes
        branch = max(1, channels // len(grid_sizes))
        # No normalisation in the branches: on the 1x1 grid a channel holds a single value.
        self.branches = nn.ModuleList(nn.Sequential(nn.Conv2d(channels, branch, 1), nn.ReLU(inplace=True))
                                      for _ in grid_sizes)
        self.fuse = nn.Sequential(nn.Conv2d(channels + branch * len(grid_sizes), channels, 1, bias=False),
                                  _norm(channels), nn.ReLU(inplace=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        context = [F.interpolate(branch(F.adaptive_avg_pool2d(x, grid)), size=size, mode="bilinear",
                                 align_corners=False)
                   for grid, branch in zip(self.grid_sizes, self.branches)]
        return self.fuse(torch.cat([x, *context], dim=1))


@register("model")
class SegAhnet(nn.Module):
    """Two-level U-Net with an optional pyramid-pooling bottleneck.

    `forward` returns logits (N x num_classes x H x W); `activate` turns them into
    probabilities with the configured final activation, which is what the loss sees.
    Image sides must be divisible by 4 (two 2x poolings).
    """

    def __init__(self, num_classes: int = 2, if_use_psp: bool = False, pretrain_weight_name: str | None = None,
                 plane: str = "z", final_activation: str = "softmax", n_spatial_dim: int = 2,
                 in_channels: int = 1, base_channels: int = 8):
        super().__init__()
        if n_spatial_dim != 2:
            raise ValueError(f"SegAhnet here supports only 2-D data: n_spatial_dim must be 2, got {n_spatial_dim}")
        if final_activation not in FINAL_ACTIVATIONS:
            raise ValueError(f"SegAhnet final_activation must be one of {FINAL_ACTIVATIONS}, got {final_activation!r}")
        if int(num_classes) < 2:
            raise ValueError(f"SegAhnet num_classes must be at least 2 (background + foreground), got {num_classes}")
        # Clara uses `plane` to pick the 2-D slice direction of 3-D volumes; the data here are
        # already 2-D, so it is only kept so that Clara configs build unchanged.
        self.plane = plane
        self.final_activation = final_activation
        self.num_classes = int(num_classes)
        c = int(base_channels)
        self.enc1 = _conv_block(in_channels, c)
        self.enc2 = _conv_block(c, 2 * c)
        self.bottleneck = _conv_block(2 * c, 4 * c)
        self.context = PyramidPooling(4 * c) if if_use_psp else nn.Identity()
        self.up2 = nn.ConvTranspose2d(4 * c, 2 * c, 2, stride=2)
        self.dec2 = _conv_block(4 * c, 2 * c)
        self.up1 = nn.ConvTranspose2d(2 * c, c, 2, stride=2)
        self.dec1 = _conv_block(2 * c, c)
        self.head = nn.Conv2d(c, self.num_classes, 1)
        if pretrain_weight_name:
            self._load_pretrained(Path(pretrain_weight_name))

    def _load_pretrained(self, path: Path) -> None:
        # A named but missing file is an error rather than a silent random start: a search
        # over fine-tuning runs would otherwise quietly compare from-scratch trainings.
        if not path.is_file():
            raise FileNotFoundError(f"SegAhnet pretrain_weight_name: no such file: {path}")
        state = torch.load(path, map_location="cpu", weights_only=True)
        if isinstance(state, dict) and "model" in state and isinstance(state["model"], dict):
            state = state["model"]  # a trainer checkpoint works as well as a bare state_dict
        self.load_state_dict(state)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] % 4 or x.shape[-2] % 4:
            raise ValueError(f"SegAhnet needs image sides divisible by 4, got {tuple(x.shape[-2:])}")
        e1 = self.enc1(x)
        e2 = self.enc2(F.max_pool2d(e1, 2))
        b = self.context(self.bottleneck(F.max_pool2d(e2, 2)))
        d2 = self.dec2(torch.cat([self.up2(b), e2], dim=1))
        d1 = self.dec1(torch.cat([self.up1(d2), e1], dim=1))
        return self.head(d1)

    def activate(self, logits: torch.Tensor) -> torch.Tensor:
        """Probabilities from logits: softmax across classes, or an independent sigmoid per class."""
        return activate(logits, self.final_activation)


def activate(logits: torch.Tensor, final_activation: str) -> torch.Tensor:
    """The final activation as a function, for callers that hold only the name."""
    if final_activation == "softmax":
        return torch.softmax(logits, dim=1)
    if final_activation == "sigmoid":
        return torch.sigmoid(logits)
    raise ValueError(f"final_activation must be one of {FINAL_ACTIVATIONS}, got {final_activation!r}")
