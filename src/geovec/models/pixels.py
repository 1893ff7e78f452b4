"""Image sizes and tower inputs in numpy: the resize rule, the bicubic resize and a tower's input scaling.

The torch towers (:mod:`geovec.models.vision`) and the exported-graph runtime (:mod:`geovec.models.graph_model`)
prepare pixels with these same functions; nothing here imports torch.
"""

from __future__ import annotations

import numpy as np
from PIL import Image


def target_size(width: int, height: int, min_size: int, max_size: int, stride: int = 32) -> tuple[int, int]:
    """Resize rule (aspect kept): longer side clamped to [min_size, max_size], both sides multiples of stride."""
    long_side = max(width, height)
    scale = min(max(long_side, min_size), max_size) / long_side
    w = max(stride, int(round(width * scale / stride)) * stride)
    h = max(stride, int(round(height * scale / stride)) * stride)
    return w, h


def resize_to(pixels: np.ndarray, width: int, height: int) -> np.ndarray:
    """(H, W, 3) uint8 pixels at ``width`` x ``height`` (bicubic; the array itself where it already is)."""
    if (width, height) == (pixels.shape[1], pixels.shape[0]):
        return pixels
    return np.asarray(Image.fromarray(np.ascontiguousarray(pixels)).resize((width, height), Image.BICUBIC))


def scaled_input(pixels_uint8: np.ndarray, offset: float, scale: float) -> np.ndarray:
    """(H, W, 3) uint8 -> (3, H, W) float32 ``(pixels - offset) / scale``."""
    x = np.array(pixels_uint8, dtype=np.uint8, order="C", copy=True).transpose(2, 0, 1).astype(np.float32)
    return (x - np.float32(offset)) / np.float32(scale)
