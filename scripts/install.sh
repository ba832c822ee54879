#!/usr/bin/env bash
# Set up everything lumbar-instability needs on a fresh Debian 12 machine with Python 3.11.
#
#   bash scripts/install.sh          # runtime: Debian libraries for Qt's xcb platform + .venv with the package
#   bash scripts/install.sh --test   # also: xvfb, dicom3tools, poppler-utils and the test extras
#
# Idempotent: re-running only installs what is missing.  Needs root or sudo for apt-get.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"

with_tests=0
[[ "${1:-}" == "--test" ]] && with_tests=1

# Qt 6 xcb platform plugin runtime libraries (PySide6-Essentials wheel links against these).
debs=(libegl1 libgl1 libxkbcommon0 libxkbcommon-x11-0 libfontconfig1 libdbus-1-3
      libxcb-cursor0 libxcb-icccm4 libxcb-image0 libxcb-keysyms1 libxcb-randr0
      libxcb-render-util0 libxcb-shape0 libxcb-xinerama0 libxcb-xkb1 libxcb-xfixes0
      libxcb-sync1 libxcb-shm0 libxcb-glx0 libxrender1 libxi6 fonts-dejavu-core)
if (( with_tests )); then
  debs+=(xvfb xauth dicom3tools poppler-utils)
fi

missing=()
for p in "${debs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if (( ${#missing[@]} )); then
  sudo_cmd=()
  [[ $(id -u) -ne 0 ]] && sudo_cmd=(sudo)
  echo "install.sh: apt-get install ${missing[*]}" >&2
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

python="${PYTHON:-python3.11}"
command -v "$python" >/dev/null || python=python3
if [[ ! -x .venv/bin/python ]]; then
  "$python" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
if (( with_tests )); then
  .venv/bin/python -m pip install -q -e ".[test]"
else
  .venv/bin/python -m pip install -q -e .
fi
