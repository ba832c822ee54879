#!/usr/bin/env bash
# Install everything the tests need (Debian packages and pip extras) and run the whole suite:
# lint (ruff), the import-layer contracts (import-linter) and pytest.
#   bash scripts/test.sh [PYTEST-ARGS...]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
bash scripts/install.sh --test
echo "== ruff" && .venv/bin/ruff check .
echo "== import-linter" && .venv/bin/lint-imports
echo "== pytest" && .venv/bin/python -m pytest "$@"
