#!/usr/bin/env bash
# The throwaway reference environment that makes tests/data/*_refs.npz (never a vssr dependency):
# .refenv/ (Python 3.11: the CPU torch 2.13.0 wheel exists for it) with torch and numpy, and the
# upstream sources the generators import, unpacked from PyPI into .refenv/src/:
#   vs-rife 5.7.0 (.refenv/src/vsrife/vsrife) and BasicSR 1.4.2 (.refenv/src/basicsr-1.4.2).
# Then: .refenv/bin/python tests/data/make_rife_refs.py  and  .refenv/bin/python tests/data/make_edvr_refs.py
set -euo pipefail
cd "$(dirname "$0")/.."
python="${PYTHON311:-python3.11}"
command -v "$python" >/dev/null 2>&1 || python="$(pyenv root 2>/dev/null)/versions/$(pyenv versions --bare 2>/dev/null | grep -E '^3\.11' | tail -n 1)/bin/python"
[ -x .refenv/bin/python ] || "$python" -m venv .refenv
.refenv/bin/python -m pip install --quiet --disable-pip-version-check "torch==2.13.0" numpy
mkdir -p .refenv/src
.refenv/bin/python -m pip download --quiet --disable-pip-version-check --no-deps -d .refenv/src vsrife==5.7.0 basicsr==1.4.2
(cd .refenv/src && python3 -m zipfile -e vsrife-5.7.0-py3-none-any.whl vsrife && tar xzf basicsr-1.4.2.tar.gz)
echo "==> .refenv ready: .refenv/bin/python tests/data/make_rife_refs.py; .refenv/bin/python tests/data/make_edvr_refs.py"
