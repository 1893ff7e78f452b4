"""The top of the vision tower as its own module: EfficientNet-Lite0 run up to a split block, and a trainable copy
of the blocks above it (the dual-path model's global path fine-tunes it; ``geovec.train.global_top`` trains it)."""

from __future__ import annotations

import copy

import torch
from torch import nn

SPLIT_BLOCK = 10  # block 10 ends the stride-16 stage: (B, 112, H/16, W/16)


def run_to_split(net, x: torch.Tensor, split: int = SPLIT_BLOCK) -> torch.Tensor:
    """EfficientNet stem and blocks ``0..split`` (inclusive) on TF-Lite-scaled pixels (B, 3, H, W)."""
    x = net._swish(net._bn0(net._conv_stem(x.contiguous(memory_format=torch.channels_last))))
    for block in net._blocks[: split + 1]:
        x = block(x)
    return x


def run_from_split(net, act: torch.Tensor, split: int = SPLIT_BLOCK) -> torch.Tensor:
    """The rest of the (frozen) tower above block ``split``: activations -> (B, 1280, h, w) feature map."""
    x = act
    for block in net._blocks[split + 1 :]:
        x = block(x)
    return net._swish(net._bn1(net._conv_head(x)))


class VisionTop(nn.Module):
    """A trainable copy of an EfficientNet's blocks ``split+1..`` and head convolution: block activations ->
    the (B, 1280, h, w) feature map. BatchNorm layers always use their (pretrained, frozen) running statistics."""

    def __init__(self, net, split: int = SPLIT_BLOCK):
        super().__init__()
        self.split = split
        self.blocks = copy.deepcopy(net._blocks[split + 1 :])
        self.conv_head = copy.deepcopy(net._conv_head)
        self.bn1 = copy.deepcopy(net._bn1)
        self.swish = copy.deepcopy(net._swish)

    def train(self, mode: bool = True):
        super().train(mode)
        for m in self.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.eval()  # frozen statistics: small batches of one dataset must not move them
        return self

    def forward(self, act: torch.Tensor) -> torch.Tensor:
        x = act.contiguous(memory_format=torch.channels_last)
        for block in self.blocks:
            x = block(x)
        return self.swish(self.bn1(self.conv_head(x)))
