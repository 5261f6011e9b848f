#!/usr/bin/env bash
# Set up with the bench extras (vs-mlrt's ORT and OpenVINO plugins beside vssr), then run the peer
# benchmark. Arguments go to bench/peer.py, e.g. scripts/bench.sh --frames 50 --runs 3
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh "test,bench"
# vs-mlrt's ov plugin ships its own libopenvino; vspipe loads it before a script's first line, so
# make this environment import the openvino package first (see vssr/backends/ov.py)
.venv/bin/python -c "from vssr.backends.ov import install_import_hook; install_import_hook()"
exec .venv/bin/python bench/peer.py "$@"
