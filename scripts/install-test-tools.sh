#!/usr/bin/env bash
# System tools some tests use, from Debian's packages: promtool (package 'prometheus') lints the
# /metrics output; chromium runs the dashboard's browser test (driven by playwright-core, which
# downloads no browser of its own). Tests that need promtool skip that step without it; the
# browser test fails with a pointer here, so that CI cannot pass without looking at the dashboard.
# The DejaVu fonts (package 'fonts-dejavu-core') render the ocr task's labelled evaluation set.
set -euo pipefail
need=()
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
[ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || need+=(fonts-dejavu-core)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "install-test-tools: run as root (or: sudo apt-get install ${need[*]})" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
# the package starts a Prometheus server; tests need only its promtool
(systemctl stop prometheus || service prometheus stop || pkill -x prometheus) >/dev/null 2>&1 || true
