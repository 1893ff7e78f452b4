#!/usr/bin/env python3
"""Convert GeoCLIP's pretrained location-encoder weights (MIT, Vicente Vivanco, https://github.com/VicenteVivan/geo-clip)
into the safetensors file geovec ships: ``src/geovec/models/weights/geoclip-location-encoder/model.safetensors``.

Run once, where the ``geoclip`` 1.3.0 package is installed (``pip install --no-deps geoclip==1.3.0``)::

    python3 scripts/convert_geoclip_weights.py            # reads geoclip's location_encoder_weights.pth
    python3 scripts/convert_geoclip_weights.py --pth FILE  # or any copy of that file

The tensors are copied unchanged (float32, same names); the file's metadata records where they came from and the
SHA-256 of the source file. geovec itself never needs ``geoclip`` at run time.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
from pathlib import Path

import torch
from safetensors.torch import save_file

OUT = Path(__file__).resolve().parents[1] / "src/geovec/models/weights/geoclip-location-encoder/model.safetensors"
SOURCE_SHA256 = "94b80ae3af89fca78539e129dd2929d321247f5ceeeb0a31bc2c31041a253394"  # geoclip 1.3.0's file


def installed_pth() -> Path:
    spec = importlib.util.find_spec("geoclip")
    if spec is None or spec.origin is None:
        raise SystemExit("geoclip is not installed: pip install --no-deps geoclip==1.3.0, or pass --pth FILE")
    return Path(spec.origin).parent / "model" / "weights" / "location_encoder_weights.pth"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pth", type=Path, help="location_encoder_weights.pth (default: the installed geoclip's)")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    pth = args.pth or installed_pth()
    digest = hashlib.sha256(pth.read_bytes()).hexdigest()
    if digest != SOURCE_SHA256:
        raise SystemExit(f"{pth}: SHA-256 {digest} is not geoclip 1.3.0's location encoder ({SOURCE_SHA256})")
    state = torch.load(pth, map_location="cpu", weights_only=True)
    state = {name: t.contiguous() for name, t in state.items()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    save_file(state, str(args.out), metadata={
        "format": "pt", "source": "geoclip 1.3.0 geoclip/model/weights/location_encoder_weights.pth",
        "source_sha256": digest, "license": "MIT", "copyright": "Copyright (c) 2024 Vicente Vivanco",
        "url": "https://github.com/VicenteVivan/geo-clip"})
    print(f"{args.out}: {len(state)} tensors, {args.out.stat().st_size / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
