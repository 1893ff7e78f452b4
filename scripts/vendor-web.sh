#!/usr/bin/env bash
# The map page's web dependencies, vendored into the package so the page works offline (no CDN):
#   leaflet          the web map library (BSD-2-Clause): minified leaflet.js / leaflet.css, control icons
#   world-atlas      Natural Earth 1:50m countries and land as TopoJSON (Natural Earth: public domain; the
#                    package's conversion: ISC), the offline basemap's coastlines and borders
#   topojson-client  TopoJSON -> GeoJSON in the page (ISC)
#
# Each is committed under src/geovec/serve/static/vendor/<name>/ with its LICENSE, VERSION (the npm pin and the
# tarball's integrity) and SHA256SUMS. A clean clone therefore needs no network and no npm; scripts/install.sh
# runs this script, which then only checks the files against SHA256SUMS. It fetches from npm only when files
# are missing or do not match (or with --update), and then only the pinned version, verified against the npm
# tarball's integrity hash.
#
#   scripts/vendor-web.sh           verify; re-fetch the pinned versions from npm if missing / changed
#   scripts/vendor-web.sh --check   verify only (exit 1 if missing / changed)
#   scripts/vendor-web.sh --update  re-fetch the pinned versions from npm and rewrite SHA256SUMS
#
# To move to another version: change its *_VERSION and *_INTEGRITY (`npm view NAME@X dist.integrity`), run
# --update, run tests/serve, commit the folder.
set -euo pipefail
cd "$(dirname "$0")/.."
LEAFLET_VERSION=1.9.4
LEAFLET_INTEGRITY=sha512-nxS1ynzJOmOlHp+iL3FyWqK89GtNL8U8rvlMOsQdTTssxZwCXh8N2NB3GDQOL+YR3XnWyZAxwQixURb+FA74PA==
WORLD_ATLAS_VERSION=2.0.2
WORLD_ATLAS_INTEGRITY=sha512-IXfV0qwlKXpckz1FhwXVwKRjiIhOnWttOskm5CtxMsjgE/MXAYRHWJqgXOpM8IkcPBoXnyTU5lFHcYa5ChG0LQ==
TOPOJSON_VERSION=3.1.0
TOPOJSON_INTEGRITY=sha512-605uxS6bcYxGXw9qi62XyrV6Q3xwbndjachmNxu8HWTtVPxZfEJN9fd/SZS1Q54Sn2y0TMyMxFj/cJINqGHrKw==
VENDOR=src/geovec/serve/static/vendor

# name version integrity "tarball-path:vendored-path ..."
PACKAGES=(
  "leaflet $LEAFLET_VERSION $LEAFLET_INTEGRITY dist/leaflet.js:leaflet.js dist/leaflet.css:leaflet.css LICENSE:LICENSE dist/images/layers.png:images/layers.png dist/images/layers-2x.png:images/layers-2x.png dist/images/marker-icon.png:images/marker-icon.png dist/images/marker-icon-2x.png:images/marker-icon-2x.png dist/images/marker-shadow.png:images/marker-shadow.png"
  "world-atlas $WORLD_ATLAS_VERSION $WORLD_ATLAS_INTEGRITY countries-50m.json:countries-50m.json LICENSE:LICENSE"
  "topojson-client $TOPOJSON_VERSION $TOPOJSON_INTEGRITY dist/topojson-client.min.js:topojson-client.min.js LICENSE:LICENSE"
)

verify() {  # name version integrity files...
  local name=$1 version=$2 integrity=$3; shift 3
  local dest=$VENDOR/$name
  [ -f "$dest/SHA256SUMS" ] && [ -f "$dest/VERSION" ] || return 1
  grep -qx "$name@$version $integrity" "$dest/VERSION" || return 1
  for pair in "$@"; do grep -q "  ${pair#*:}\$" "$dest/SHA256SUMS" || return 1; done
  (cd "$dest" && sha256sum --quiet --check SHA256SUMS) >/dev/null 2>&1
}

fetch() {  # name version integrity files...
  local name=$1 version=$2 integrity=$3; shift 3
  local dest=$VENDOR/$name
  command -v npm >/dev/null || { echo "vendor-web: npm is needed to fetch $name@$version" >&2; exit 1; }
  local tmp
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' RETURN
  (cd "$tmp" && npm pack --silent "$name@$version" >/dev/null)
  local tgz="$tmp/$name-$version.tgz"
  local got
  got="sha512-$(python3 -c 'import base64,hashlib,sys; print(base64.b64encode(hashlib.sha512(open(sys.argv[1],"rb").read()).digest()).decode())' "$tgz")"
  if [ "$got" != "$integrity" ]; then
    echo "vendor-web: $name-$version.tgz has integrity $got, expected $integrity" >&2
    exit 1
  fi
  tar -xzf "$tgz" -C "$tmp"
  rm -rf "$dest"
  local names=()
  for pair in "$@"; do
    mkdir -p "$(dirname "$dest/${pair#*:}")"
    cp "$tmp/package/${pair%%:*}" "$dest/${pair#*:}"
    names+=("${pair#*:}")
  done
  # minified files may end with a sourceMappingURL to a map that is not vendored: drop that line
  for f in "$dest"/*.js; do [ -f "$f" ] && sed -i '/^\/\/# sourceMappingURL=/d' "$f"; done
  echo "$name@$version $integrity" > "$dest/VERSION"
  echo "https://registry.npmjs.org/$name/-/$name-$version.tgz" >> "$dest/VERSION"
  (cd "$dest" && sha256sum "${names[@]}" > SHA256SUMS)
  echo "vendor-web: $name@$version -> $dest"
}

mode=${1:-}
case "$mode" in --check | --update | "") ;; *) echo "usage: $0 [--check | --update]" >&2; exit 2 ;; esac
for spec in "${PACKAGES[@]}"; do
  # shellcheck disable=SC2086
  set -- $spec
  case "$mode" in
    --check) verify "$@" || { echo "vendor-web: $VENDOR/$1 is missing or does not match SHA256SUMS / $1@$2" >&2; exit 1; } ;;
    --update) fetch "$@" ;;
    "") if verify "$@"; then echo "vendor-web: $1@$2 in $VENDOR/$1 verified"; else fetch "$@"; verify "$@"; fi ;;
  esac
done
