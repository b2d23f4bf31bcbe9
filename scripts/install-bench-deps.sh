#!/usr/bin/env bash
# Install the system tools the benchmarks need, if missing: wrk (the HTTP load generator
# that bench/api_load.py drives) and redis-server (the Celery broker bench/jobs_celery.py
# starts on loopback). Uses apt-get; sudo when not root.
set -euo pipefail
need=()
command -v wrk >/dev/null 2>&1 || need+=(wrk)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
if [ ${#need[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -q
  $sudo apt-get install -y -q --no-install-recommends "${need[@]}"
fi
