#!/usr/bin/env bash
# Install the system packages the test suite needs, if missing: PostgreSQL (the suite starts
# its own server on loopback in a temporary folder), ExifTool (the reference the metadata
# tests compare against), Pango and a font for PDF reports, jq and xxd, age (the inbox's
# tests decrypt with it), Chromium, and Redis (the Celery broker; the suite starts its own
# redis-server on loopback in a temporary folder). Uses apt-get; sudo when not root.
set -euo pipefail
need=()
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
command -v exiftool >/dev/null 2>&1 || need+=(libimage-exiftool-perl)
# The case file's PDF report (WeasyPrint needs Pango and a font); jq and xxd run the
# by-hand checks of docs/casefiles.md.
ldconfig -p | grep -q libpangoft2-1.0.so.0 || need+=(libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0)
[ -e /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || need+=(fonts-dejavu-core)
command -v jq >/dev/null 2>&1 || need+=(jq)
command -v xxd >/dev/null 2>&1 || need+=(xxd)
# The insider inbox: the reference `age` tool its round-trip tests decrypt with.
command -v age >/dev/null 2>&1 || need+=(age)
# Debian's Chromium for the browser tests (Playwright drives it; it never downloads one).
[ -x /usr/bin/chromium ] || need+=(chromium)
# npm, to fetch axe-core for the accessibility check of the team's pages (below).
command -v npm >/dev/null 2>&1 || need+=(npm)
# The broker of the distributed-jobs tests (jobs = celery).
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
if [ ${#need[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -q
  $sudo apt-get install -y -q --no-install-recommends "${need[@]}"
fi

# axe-core, run inside the browser by the accessibility check of the team's pages: a
# pinned version from the npm registry (npm checks it against the registry's integrity
# hash), unpacked once into build/ (not committed; `make clean` removes it).
AXE_VERSION=4.10.3
axe_dir="$(cd "$(dirname "$0")/.." && pwd)/build/test-deps/axe-core-$AXE_VERSION"
if [ ! -f "$axe_dir/axe.min.js" ]; then
  mkdir -p "$axe_dir"
  tarball=$(cd "$axe_dir" && npm pack --silent "axe-core@$AXE_VERSION" | tail -n 1)
  tar -xzf "$axe_dir/$tarball" -C "$axe_dir" --strip-components=1 package/axe.min.js \
    package/LICENSE
  rm -f "$axe_dir/$tarball"
fi
