#!/usr/bin/env bash
# The map page's web library, Leaflet, vendored into the package so the page works offline (no CDN).
#
# The vendored files are committed under src/geovec/serve/static/vendor/leaflet/ (minified leaflet.js and
# leaflet.css, the control icons, Leaflet's BSD-2-Clause LICENSE), with VERSION (the pin) and SHA256SUMS.
# A clean clone therefore needs no network and no npm; scripts/install.sh runs this script, which then only
# checks the files against SHA256SUMS. It fetches from npm only when the files are missing or do not match
# (or with --update), and then only the pinned version, verified against the npm tarball's integrity hash.
#
#   scripts/vendor-web.sh           verify; re-fetch the pinned version from npm if missing / changed
#   scripts/vendor-web.sh --check   verify only (exit 1 if missing / changed)
#   scripts/vendor-web.sh --update  re-fetch the pinned version from npm and rewrite SHA256SUMS
#
# To move to another Leaflet version: change LEAFLET_VERSION and LEAFLET_INTEGRITY (`npm view leaflet@X
# dist.integrity`), run --update, run tests/serve, commit the folder.
set -euo pipefail
cd "$(dirname "$0")/.."
LEAFLET_VERSION=1.9.4
LEAFLET_INTEGRITY=sha512-nxS1ynzJOmOlHp+iL3FyWqK89GtNL8U8rvlMOsQdTTssxZwCXh8N2NB3GDQOL+YR3XnWyZAxwQixURb+FA74PA==
DEST=src/geovec/serve/static/vendor/leaflet
FILES="leaflet.js leaflet.css LICENSE images/layers.png images/layers-2x.png images/marker-icon.png
images/marker-icon-2x.png images/marker-shadow.png"

verify() {
  [ -f "$DEST/SHA256SUMS" ] && [ -f "$DEST/VERSION" ] || return 1
  grep -qx "leaflet@$LEAFLET_VERSION $LEAFLET_INTEGRITY" "$DEST/VERSION" || return 1
  for f in $FILES; do grep -q "  $f\$" "$DEST/SHA256SUMS" || return 1; done
  (cd "$DEST" && sha256sum --quiet --check SHA256SUMS) >/dev/null 2>&1
}

fetch() {
  command -v npm >/dev/null || { echo "vendor-web: npm is needed to fetch leaflet@$LEAFLET_VERSION" >&2; exit 1; }
  local tmp
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' RETURN
  (cd "$tmp" && npm pack --silent "leaflet@$LEAFLET_VERSION" >/dev/null)
  local tgz="$tmp/leaflet-$LEAFLET_VERSION.tgz"
  local got
  got="sha512-$(python3 -c 'import base64,hashlib,sys; print(base64.b64encode(hashlib.sha512(open(sys.argv[1],"rb").read()).digest()).decode())' "$tgz")"
  if [ "$got" != "$LEAFLET_INTEGRITY" ]; then
    echo "vendor-web: leaflet-$LEAFLET_VERSION.tgz has integrity $got, expected $LEAFLET_INTEGRITY" >&2
    exit 1
  fi
  tar -xzf "$tgz" -C "$tmp"
  rm -rf "$DEST"
  mkdir -p "$DEST/images"
  cp "$tmp/package/dist/leaflet.js" "$tmp/package/dist/leaflet.css" "$tmp/package/LICENSE" "$DEST/"
  cp "$tmp"/package/dist/images/*.png "$DEST/images/"
  # the minified file ends with a sourceMappingURL to a map that is not vendored: drop that line
  sed -i '/^\/\/# sourceMappingURL=/d' "$DEST/leaflet.js"
  echo "leaflet@$LEAFLET_VERSION $LEAFLET_INTEGRITY" > "$DEST/VERSION"
  echo "https://registry.npmjs.org/leaflet/-/leaflet-$LEAFLET_VERSION.tgz" >> "$DEST/VERSION"
  (cd "$DEST" && sha256sum $FILES > SHA256SUMS)
  echo "vendor-web: leaflet@$LEAFLET_VERSION -> $DEST"
}

case "${1:-}" in
  --check) verify || { echo "vendor-web: $DEST is missing or does not match SHA256SUMS / leaflet@$LEAFLET_VERSION" >&2; exit 1; } ;;
  --update) fetch ;;
  "") if verify; then echo "vendor-web: leaflet@$LEAFLET_VERSION in $DEST verified"; else fetch; verify; fi ;;
  *) echo "usage: $0 [--check | --update]" >&2; exit 2 ;;
esac
