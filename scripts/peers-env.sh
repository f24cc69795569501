#!/usr/bin/env bash
# The peers that `npm run bench:peers` measures sloserve against, from PyPI, into virtual
# environments outside the repository: one per peer, because their pinned web stacks do not agree
# with each other. Idempotent: an environment whose stamp matches its package list is kept.
#   SLOSERVE_PEERS_ENV   where they go (default ~/.cache/sloserve/peers-venv)
#   PYTHON               the interpreter to build them from (default python3; 3.10–3.12)
# Prints the root folder on stdout when done; perf_analyzer is then $root/bin/perf_analyzer.
set -euo pipefail
root="${SLOSERVE_PEERS_ENV:-$HOME/.cache/sloserve/peers-venv}"
py="${PYTHON:-python3}"
mkdir -p "$root/bin"

# Same onnxruntime release as the onnxruntime-node that sloserve ships with, so that the model
# runs on the same kernels in every server.
ort="onnxruntime==1.30.0"
envs=(
  # PyTriton bundles a real tritonserver binary (C++ HTTP/gRPC front ends, dynamic batcher, Python backend).
  "triton|nvidia-pytriton==0.7.0 $ort"
  "ray|ray[serve]==2.60.0 $ort"
  # MLServer has no ONNX runtime package: the peer is a custom MLModel (tools/peers/mlserver_onnx.py).
  # uvloop 0.22 made get_event_loop() raise where MLServer 1.7.1 calls it to start its workers.
  "mlserver|mlserver==1.7.1 uvloop<0.22 $ort"
  "clients|tritonclient[all]==2.73.0 $ort"
)

for spec in "${envs[@]}"; do
  name="${spec%%|*}"
  pkgs="${spec#*|}"
  dir="$root/$name"
  if [ -f "$dir/.stamp" ] && [ "$(cat "$dir/.stamp")" = "$pkgs" ]; then continue; fi
  echo "peers-env: $name: $pkgs" >&2
  rm -rf "$dir"
  "$py" -m venv "$dir"
  "$dir/bin/python" -m pip install -q --upgrade pip >&2
  # shellcheck disable=SC2086 # the package list is meant to split into words
  "$dir/bin/python" -m pip install -q $pkgs >&2
  echo "$pkgs" >"$dir/.stamp"
done

# perf_analyzer: PyPI's wheel is the C++ binary built for glibc >= 2.38 (manylinux_2_38). On an
# older system (Debian 12 has 2.36) it runs under Debian 13's C and C++ runtime libraries, unpacked
# into a private folder and used through their own loader; nothing of the system's is replaced.
pa_version="2.60.0"
pa="$root/perf-analyzer"
if [ ! -f "$pa/.stamp" ] || [ "$(cat "$pa/.stamp")" != "$pa_version" ]; then
  echo "peers-env: perf-analyzer $pa_version" >&2
  rm -rf "$pa" && mkdir -p "$pa"
  arch="$(uname -m)"
  "$root/clients/bin/python" -m pip download -q --no-deps --only-binary=:all: --python-version 3.11 \
    --platform "manylinux_2_38_$arch" -d "$pa/wheel" "perf-analyzer==$pa_version" >&2
  "$root/clients/bin/python" -m zipfile -e "$pa"/wheel/*.whl "$pa/unpacked"
  bin="$pa/unpacked/perf_analyzer/bin/perf_analyzer"
  chmod +x "$bin"
  glibc="$(getconf GNU_LIBC_VERSION | awk '{print $2}')"
  if [ "$(printf '%s\n2.38\n' "$glibc" | sort -V | head -1)" = "2.38" ]; then
    printf '#!/bin/sh\nexec "%s" "$@"\n' "$bin" >"$root/bin/perf_analyzer"
  else
    apt="$pa/apt"
    mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial" "$pa/sysroot"
    echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main" \
      >"$apt/sources.list"
    o=(-o "Dir::Etc::SourceList=$apt/sources.list" -o Dir::Etc::SourceParts=/dev/null
      -o "Dir::State::Lists=$apt/lists" -o "Dir::Cache=$apt/cache" -o Dir::State::status=/dev/null
      -o APT::Sandbox::User=root)
    apt-get "${o[@]}" update -qq >&2
    (cd "$apt" && apt-get "${o[@]}" download -qq libc6 libstdc++6 libgcc-s1 >&2)
    for deb in "$apt"/*.deb; do dpkg-deb -x "$deb" "$pa/sysroot"; done
    lib="$pa/sysroot/usr/lib/$arch-linux-gnu"
    printf '#!/bin/sh\nexec "%s" --library-path "%s:/lib/%s-linux-gnu:/usr/lib/%s-linux-gnu" "%s" "$@"\n' \
      "$(ls "$lib"/ld-linux-*.so.*)" "$lib" "$arch" "$arch" "$bin" >"$root/bin/perf_analyzer"
    rm -rf "$apt"
  fi
  chmod +x "$root/bin/perf_analyzer"
  "$root/bin/perf_analyzer" --version >&2
  echo "$pa_version" >"$pa/.stamp"
fi
echo "$root"
