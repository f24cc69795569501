#!/usr/bin/env bash
# The Python side of the conformance suite (test/conformance), outside the repository:
# - a virtual environment with Triton's own clients from PyPI (tritonclient[all]) and grpcio-tools,
#   pinned in test/conformance/requirements.txt: $CACHE/venv;
# - perf_analyzer from PyPI (perf-analyzer): its wheels are built for glibc >= 2.38, so on an older
#   system (Debian 12 has 2.36) it runs under Debian 13's C and C++ runtime, fetched by apt-get into
#   a private folder (no system package changes): $CACHE/perf-analyzer, started by $CACHE/bin/perf_analyzer.
# Quiet and instant when nothing changed (a stamp of this script and the requirements).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${SLOSERVE_CACHE:-$HOME/.cache/sloserve}
VENV=$CACHE/venv
PA=$CACHE/perf-analyzer
REQ=$ROOT/test/conformance/requirements.txt
PA_VERSION=2.60.0
PYTHON=${PYTHON:-python3}

stamp=$( (cat "$0" "$REQ"; uname -m) | sha256sum | cut -c1-16)
if [ -f "$CACHE/.python-env-stamp" ] && [ "$(cat "$CACHE/.python-env-stamp")" = "$stamp" ] \
  && [ -x "$VENV/bin/python" ] && [ -x "$CACHE/bin/perf_analyzer" ]; then
  exit 0
fi
say() { echo "python-env: $*" >&2; }

if ! "$PYTHON" -c 'import venv, ensurepip' >/dev/null 2>&1; then
  if [ "$(id -u)" -ne 0 ]; then
    say "Python's venv module is missing; run: sudo apt-get install -y python3-venv  (then rerun npm test)"
    exit 1
  fi
  say "installing python3-venv (Debian)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
fi

mkdir -p "$CACHE/bin"
say "creating $VENV (tritonclient[all], grpcio-tools; about 250 MB, a minute the first time)"
rm -rf "$VENV"
"$PYTHON" -m venv "$VENV"
"$VENV/bin/pip" install -q --disable-pip-version-check -r "$REQ"

case "$(uname -m)" in
  x86_64) arch=x86_64 deb=amd64 loader=ld-linux-x86-64.so.2 ;;
  aarch64) arch=aarch64 deb=arm64 loader=ld-linux-aarch64.so.1 ;;
  *) say "perf_analyzer has no wheel for $(uname -m)"; exit 1 ;;
esac
say "installing perf_analyzer $PA_VERSION into $PA"
rm -rf "$PA"
"$VENV/bin/pip" install -q --disable-pip-version-check --target "$PA/wheel" --no-deps --only-binary=:all: \
  --platform "manylinux_2_38_$arch" "perf-analyzer==$PA_VERSION"
bin=$PA/wheel/perf_analyzer/bin/perf_analyzer
chmod +x "$bin"
launcher=$CACHE/bin/perf_analyzer
if "$bin" --version >/dev/null 2>&1 || ! ldd "$bin" 2>&1 | grep -q "not found"; then
  printf '#!/bin/sh\nexec "%s" "$@"\n' "$bin" >"$launcher"
else
  # The system's glibc/libstdc++ are older than the binary's: take Debian 13's with a private apt
  # state (our own lists and cache), so nothing on the system changes.
  command -v apt-get >/dev/null || { say "perf_analyzer needs glibc >= 2.38 and this is not a Debian system"; exit 1; }
  apt=$PA/apt
  mkdir -p "$apt/lists/partial" "$apt/archives/partial" "$apt/prefs.d" "$PA/debs" "$PA/runtime"
  echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main" \
    >"$apt/sources.list"
  opts=(-o "Dir::Etc::SourceList=$apt/sources.list" -o Dir::Etc::SourceParts=/dev/null
    -o Dir::Etc::Preferences=/dev/null -o "Dir::Etc::PreferencesParts=$apt/prefs.d"
    -o "Dir::State=$apt" -o "Dir::State::Lists=$apt/lists" -o Dir::State::status=/dev/null
    -o "Dir::Cache=$apt" -o "Dir::Cache::Archives=$apt/archives"
    -o "APT::Architecture=$deb" -o "APT::Architectures=$deb" -o APT::Sandbox::User=root)
  say "fetching Debian 13's libc6, libstdc++6 and libgcc-s1 for it (private apt state in $apt)"
  apt-get "${opts[@]}" -qq update
  (cd "$PA/debs" && apt-get "${opts[@]}" -qq download libc6 libstdc++6 libgcc-s1)
  for f in "$PA"/debs/*.deb; do dpkg-deb -x "$f" "$PA/runtime"; done
  libs=$PA/runtime/usr/lib/$arch-linux-gnu
  [ -x "$libs/$loader" ] || { say "no $loader in the fetched libc6"; exit 1; }
  # Debian 13's loader and runtime first, the system's libraries (libssl, zlib) after them.
  printf '#!/bin/sh\nexec "%s" --library-path "%s" "%s" "$@"\n' \
    "$libs/$loader" "$libs:/usr/lib/$arch-linux-gnu:/lib/$arch-linux-gnu" "$bin" >"$launcher"
fi
chmod +x "$launcher"
"$launcher" --version >/dev/null 2>&1 || "$launcher" -h 2>&1 | grep -q "perf_analyzer\|Usage" || {
  say "perf_analyzer does not start:"
  "$launcher" -h 2>&1 | head -5 >&2
  exit 1
}
echo "$stamp" >"$CACHE/.python-env-stamp"
say "ready: $VENV/bin/python, $launcher"
