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
# The broker of the distributed-jobs tests (jobs = celery).
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
if [ ${#need[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -q
  $sudo apt-get install -y -q --no-install-recommends "${need[@]}"
fi
