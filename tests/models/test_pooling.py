import torch

from geovec.models.pooling import pool
from geovec.models.towers import fourier_box, roi_align


def test_pool_modes_with_right_and_left_padding():
    h = torch.arange(2 * 4 * 1, dtype=torch.float32).view(2, 4, 1)
    right = torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0]])
    left = torch.tensor([[0, 1, 1, 1], [0, 0, 1, 1]])
    assert pool(h, right, "mean").squeeze(-1).tolist() == [1.0, 4.5]
    assert pool(h, right, "cls").squeeze(-1).tolist() == [0.0, 4.0]
    assert pool(h, right, "last").squeeze(-1).tolist() == [2.0, 5.0]
    assert pool(h, left, "last").squeeze(-1).tolist() == [3.0, 7.0]
    assert pool(h, left, "cls").squeeze(-1).tolist() == [1.0, 6.0]


def test_roi_align_matches_region_means():
    fmap = torch.zeros(1, 4, 4)
    fmap[0, :2, :2] = 1.0  # top-left quadrant is 1
    out = roi_align(fmap, torch.tensor([[0.0, 0.0, 0.5, 0.5], [0.5, 0.5, 1.0, 1.0]]), bins=1, samples=2)
    assert out.shape == (2, 1, 1, 1)
    assert out[0].item() == 1.0 and out[1].item() == 0.0
    ramp = torch.arange(8.0).view(1, 1, 8).expand(1, 8, 8)
    mid = roi_align(ramp, torch.tensor([[0.25, 0.0, 0.75, 1.0]]), bins=2, samples=2)
    assert mid[0, 0, 0, 0] < mid[0, 0, 0, 1]  # left bin sees smaller x than right bin


def test_fourier_box_distinguishes_boxes():
    a, b = fourier_box(torch.tensor([[0.1, 0.1, 0.4, 0.4], [0.5, 0.5, 0.9, 0.9]]), 4)
    assert a.shape == (64,) and not torch.allclose(a, b)
