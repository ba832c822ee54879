#!/usr/bin/env bash
# Refresh the lock files of tested versions (requirements/*.lock) from pyproject.toml's ranges:
#   headless.lock  batch, Dask workers, notebooks (no Qt)
#   runtime.lock   headless + the viewer (PySide6-Essentials)
#   test.lock      runtime + the test tools
#
#   bash scripts/lock.sh                 # add what pyproject.toml added; keep every other pin
#   bash scripts/lock.sh --upgrade       # take the newest releases the ranges allow
#   bash scripts/lock.sh --upgrade-package numpy
#
# Then run `bash scripts/test.sh` and commit the locks only if it passes.
# The locks target CPython 3.11 on x86_64 Linux with glibc >= 2.36 (Debian 12).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
uv=(uv)
if ! command -v uv >/dev/null; then
  [[ -x .venv/bin/uv ]] || .venv/bin/python -m pip install -q uv
  uv=(.venv/bin/uv)
fi
common=(--python-version 3.11 --python-platform x86_64-manylinux_2_36 --generate-hashes
        --constraint requirements/constraints.txt --quiet "$@")
"${uv[@]}" pip compile pyproject.toml requirements/build.in \
    "${common[@]}" -o requirements/headless.lock
"${uv[@]}" pip compile pyproject.toml requirements/build.in --extra viewer \
    "${common[@]}" -o requirements/runtime.lock
"${uv[@]}" pip compile pyproject.toml requirements/build.in --extra viewer --extra test \
    "${common[@]}" -o requirements/test.lock
echo "lock.sh: requirements/{headless,runtime,test}.lock written" >&2
