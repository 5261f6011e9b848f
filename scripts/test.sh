#!/usr/bin/env bash
# Set up (with the test extras), lint (ruff) and type-check (mypy --strict), then run the test
# suite: the fast tier by default.
# Extra arguments go to pytest, e.g. scripts/test.sh -m slow  (the slow tier), or -m "slow or not slow".
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh test
# lint and types first: fast (~20 s), and a failure here is cheaper to read than a test's
echo "==> ruff check"
.venv/bin/ruff check vssr tests bench tools
echo "==> mypy (strict, all of vssr)"
.venv/bin/mypy
exec .venv/bin/python -m pytest "$@"
