#!/usr/bin/env bash
# System tools some tests use, from Debian's packages: promtool (package 'prometheus') lints the
# /metrics output; chromium runs the dashboard's browser test (driven by playwright-core, which
# downloads no browser of its own); python3-venv holds the conformance suite's clients. As root it
# installs what is missing; otherwise it stops at once with the exact commands to run.
# The DejaVu fonts (package 'fonts-dejavu-core') render the ocr task's labelled evaluation set.
set -euo pipefail
need=()
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || need+=(python3-venv)
[ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || need+=(fonts-dejavu-core)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "install-test-tools: the tests need Debian packages that are missing; run as root:" >&2
  echo "  sudo apt-get update && sudo apt-get install -y --no-install-recommends ${need[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
# the package starts a Prometheus server; tests need only its promtool
(systemctl stop prometheus || service prometheus stop || pkill -x prometheus) >/dev/null 2>&1 || true
