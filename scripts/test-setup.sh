#!/usr/bin/env bash
# Run by `npm test` before anything else, so that a fresh clone needs nothing but `npm ci && npm test`:
# Debian packages (as root; otherwise the exact commands to run), then the conformance suite's
# Python environment and perf_analyzer under ~/.cache/sloserve. Both are instant once installed.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-test-tools.sh
bash scripts/python-env.sh
