#!/usr/bin/env bash
# PyTorch for the subnet measurement tool (tools/gpu/profile_subnets.py) on a machine that has no
# PyTorch of its own: a virtual environment outside the repository, ~/.cache/sloserve/torch-venv
# (or $SLOSERVE_TORCH_VENV). PyPI's Linux x86-64 wheel of torch is the CUDA build and pulls NVIDIA's
# runtime libraries with it (several GB); on a machine without a GPU it runs on the CPU. GPU machines
# that already carry PyTorch (as the lent ones here do) need none of this: run the tool with their python3.
# Prints the venv's python on success.
set -euo pipefail
VENV="${SLOSERVE_TORCH_VENV:-$HOME/.cache/sloserve/torch-venv}"
TORCH_VERSION="${SLOSERVE_TORCH_VERSION:-2.11.0}"
PY="${PYTHON:-python3}"
if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c "import torch, numpy" >/dev/null 2>&1; then
  echo "$VENV/bin/python"
  exit 0
fi
"$PY" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)' ||
  { echo "install-torch: needs Python >= 3.10 (set PYTHON=...)" >&2; exit 1; }
"$PY" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --upgrade pip >&2
"$VENV/bin/python" -m pip install --quiet "torch==$TORCH_VERSION" numpy >&2
"$VENV/bin/python" -c "import torch; print('install-torch: torch', torch.__version__, 'in $VENV', file=__import__('sys').stderr)"
echo "$VENV/bin/python"
