#!/usr/bin/env bash
# Install into ./.venv and run every gate: lint, format, types, import contracts, tests.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[dev]'
echo "== ruff check";        .venv/bin/ruff check .
echo "== ruff format";       .venv/bin/ruff format --check .
echo "== mypy --strict src"; .venv/bin/mypy --strict src/
echo "== import-linter";     .venv/bin/lint-imports
echo "== pytest";            .venv/bin/pytest -W error "$@"
