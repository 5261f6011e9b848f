#!/usr/bin/env bash
# Set up with the bench extras (vs-mlrt's ORT and OpenVINO plugins beside vssr), then run the peer
# benchmark. Arguments go to bench/peer.py, e.g. scripts/bench.sh --frames 50 --runs 3
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh "test,bench"
# bench/peer.py imports openvino before the VapourSynth core exists, so vs-mlrt's ov plugin and
# vssr share one OpenVINO build in this process (see vssr/backends/ov.py)
exec .venv/bin/python bench/peer.py "$@"
