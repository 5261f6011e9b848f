#!/usr/bin/env bash
# Set up (with the test extras) and run the test suite: the fast tier by default.
# Extra arguments go to pytest, e.g. scripts/test.sh -m slow  (the slow tier), or -m "slow or not slow".
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh test
exec .venv/bin/python -m pytest "$@"
