#!/usr/bin/env bash
# System packages the test suite needs beyond pip: headless Chromium + its WebDriver for the map page's
# end-to-end test (tests/serve/test_web_e2e.py). Debian/Ubuntu; run as root (or with sudo).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
$SUDO apt-get update -qq
# Debian names them chromium / chromium-driver; Ubuntu ships chromium-browser / chromium-chromedriver (snap)
$SUDO apt-get install -y -qq --no-install-recommends chromium chromium-driver fonts-dejavu-core \
  || $SUDO apt-get install -y -qq --no-install-recommends chromium-browser chromium-chromedriver
