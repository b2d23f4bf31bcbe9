#!/usr/bin/env bash
# Install the system packages the test suite needs, if missing: PostgreSQL (the suite starts
# its own server on loopback in a temporary folder) and ExifTool (the reference the metadata
# tests compare against). Uses apt-get; sudo when not root.
set -euo pipefail
need=()
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
command -v exiftool >/dev/null 2>&1 || need+=(libimage-exiftool-perl)
if [ ${#need[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -q
  $sudo apt-get install -y -q --no-install-recommends "${need[@]}"
fi
