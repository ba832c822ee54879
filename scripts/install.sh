#!/usr/bin/env bash
# Set up everything lumbar-instability needs on a fresh Debian 12 machine with Python 3.11.
#
#   bash scripts/install.sh             # runtime: Debian libraries for Qt's xcb platform + .venv with the viewer
#   bash scripts/install.sh --test      # also: xvfb, dicom3tools, poppler-utils and the test tools
#   bash scripts/install.sh --headless  # batch / Dask worker / notebook: no Qt, no apt-get
#
# Python packages come from the lock files of tested versions (requirements/*.lock, with hashes),
# never from whatever PyPI serves today; `bash scripts/lock.sh` refreshes them.
# Idempotent: re-running only installs what is missing.  Needs root or sudo for apt-get.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"

with_tests=0
headless=0
lock=requirements/runtime.lock
case "${1:-}" in
  --test) with_tests=1; lock=requirements/test.lock ;;
  --headless) headless=1; lock=requirements/headless.lock ;;
  "") ;;
  *) echo "install.sh: unknown option '$1' (use --test or --headless)" >&2; exit 2 ;;
esac

# Qt 6 xcb platform plugin runtime libraries (PySide6-Essentials wheel links against these).
debs=(libegl1 libgl1 libxkbcommon0 libxkbcommon-x11-0 libfontconfig1 libdbus-1-3
      libxcb-cursor0 libxcb-icccm4 libxcb-image0 libxcb-keysyms1 libxcb-randr0
      libxcb-render-util0 libxcb-shape0 libxcb-xinerama0 libxcb-xkb1 libxcb-xfixes0
      libxcb-sync1 libxcb-shm0 libxcb-glx0 libxrender1 libxi6 fonts-dejavu-core)
if (( with_tests )); then
  debs+=(xvfb xauth dicom3tools poppler-utils)
fi

(( headless )) && debs=()
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
# Exactly the locked versions, each checked against its hash; then the project itself, built with the
# locked setuptools and no dependency resolution of its own (so nothing unlocked can slip in).
.venv/bin/python -m pip install -q --disable-pip-version-check --require-hashes --no-deps -r "$lock"
.venv/bin/python -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
.venv/bin/python -m pip check >/dev/null || { .venv/bin/python -m pip check >&2; exit 1; }
