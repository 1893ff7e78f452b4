"""GeoCLIP's location encoder (Vivanco Cepeda et al., NeurIPS 2023; MIT), as geovec's own module.

(lat, lon) in degrees -> Equal Earth projection -> random Fourier features at three scales (sigma 2^0, 2^4, 2^8)
-> one MLP per scale -> the sum of the three, (B, 512). It computes exactly what ``geoclip.LocationEncoder`` 1.3.0
computes (same operations in the same order; tests/models/test_location_encoder.py holds it to that), and loads
GeoCLIP's pretrained weights from the safetensors file shipped beside geovec's other weights
(``weights/geoclip-location-encoder/``, converted by ``scripts/convert_geoclip_weights.py``; its LICENSE is there).
The parameter names are GeoCLIP's, so a state dict of either loads into the other.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from torch import nn

WEIGHTS = Path(__file__).parent / "weights" / "geoclip-location-encoder" / "model.safetensors"
SIGMAS = (2.0**0, 2.0**4, 2.0**8)  # GeoCLIP's three scales of the Fourier features
OUT_DIM = 512

# Equal Earth projection (Šavrič, Patterson, Jenny 2018): polynomial coefficients, and GeoCLIP's scale factor
A1, A2, A3, A4 = 1.340264, -0.081106, 0.000893, 0.003796
SF = 66.50336


def equal_earth_projection(latlon: torch.Tensor) -> torch.Tensor:
    """(B, 2) lat, lon in degrees -> (B, 2) Equal Earth x, y, scaled as GeoCLIP scales them."""
    lat = torch.deg2rad(latlon[:, 0])
    lon = torch.deg2rad(latlon[:, 1])
    theta = torch.asin((torch.sqrt(torch.tensor(3.0)) / 2) * torch.sin(lat))
    denominator = 3 * (9 * A4 * theta**8 + 7 * A3 * theta**6 + 3 * A2 * theta**2 + A1)
    x = (2 * torch.sqrt(torch.tensor(3.0)) * lon * torch.cos(theta)) / denominator
    y = A4 * theta**9 + A3 * theta**7 + A2 * theta**3 + A1 * theta
    return (torch.stack((x, y), dim=1) * SF) / 180


class GaussianEncoding(nn.Module):
    """Random Fourier features: v -> (cos 2*pi*B v, sin 2*pi*B v) with a fixed matrix ``b`` (encoded, 2)."""

    def __init__(self, sigma: float, encoded_size: int = 256, input_size: int = 2):
        super().__init__()
        # sampled N(0, sigma^2) as GeoCLIP does; a frozen parameter, which the pretrained matrix replaces
        self.b = nn.Parameter(torch.randn(encoded_size, input_size) * sigma, requires_grad=False)

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        vp = 2 * math.pi * v @ self.b.T
        return torch.cat((torch.cos(vp), torch.sin(vp)), dim=-1)


class LocationEncoderCapsule(nn.Module):
    """One scale: Fourier features -> three 1024-wide ReLU layers (``capsule``) -> a linear ``head`` to 512."""

    def __init__(self, sigma: float):
        super().__init__()
        self.capsule = nn.Sequential(
            GaussianEncoding(sigma),
            nn.Linear(512, 1024), nn.ReLU(),
            nn.Linear(1024, 1024), nn.ReLU(),
            nn.Linear(1024, 1024), nn.ReLU(),
        )
        self.head = nn.Sequential(nn.Linear(1024, OUT_DIM))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.capsule(x))


class GeoCLIPLocationEncoder(nn.Module):
    """(B, 2) lat, lon in degrees -> (B, 512): the sum over GeoCLIP's three scales (``LocEnc0..2``)."""

    def __init__(self, pretrained: bool = True):
        super().__init__()
        # pretrained: built on the meta device and the file's tensors assigned, so no random init is computed
        with torch.device("meta" if pretrained else "cpu"):
            for i, sigma in enumerate(SIGMAS):
                self.add_module(f"LocEnc{i}", LocationEncoderCapsule(sigma))
        if pretrained:
            from safetensors.torch import load_file

            self.load_state_dict(load_file(str(WEIGHTS)), strict=True, assign=True)

    def forward(self, location: torch.Tensor) -> torch.Tensor:
        location = equal_earth_projection(location)
        features = torch.zeros(location.shape[0], OUT_DIM).to(location.device)
        for i in range(len(SIGMAS)):
            features += self._modules[f"LocEnc{i}"](location)
        return features
