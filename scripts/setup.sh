#!/usr/bin/env bash
# Create .venv (Python >= 3.12), install vssr with the given extras, ffmpeg where missing, and
# write VapourSynth's runtime configuration (vspipe refuses to run without it).
# Usage: scripts/setup.sh EXTRAS   e.g. scripts/setup.sh run  or  scripts/setup.sh test
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-run}"

find_python() {
    local candidate
    for candidate in .venv/bin/python python3.12 python3.13 python3 python; do
        if command -v "$candidate" >/dev/null 2>&1 &&
            "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; then
            echo "$candidate"; return 0
        fi
    done
    if command -v pyenv >/dev/null 2>&1; then
        candidate="$(pyenv root)/versions/$(pyenv versions --bare | grep -E '^3\.1[2-9]' | sort -V | tail -n 1)/bin/python"
        [ -x "$candidate" ] && { echo "$candidate"; return 0; }
    fi
    echo "vssr needs Python >= 3.12 (VapourSynth's wheel does); install it and run again" >&2
    return 1
}

if [ ! -x .venv/bin/python ]; then
    python="$(find_python)"
    echo "==> creating .venv with $("$python" --version)"
    "$python" -m venv .venv
fi
echo "==> installing vssr[$extras] into .venv"
.venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[$extras]"

if ! command -v ffmpeg >/dev/null 2>&1; then
    echo "==> installing ffmpeg"
    sudo_cmd=""; [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
    $sudo_cmd apt-get update -qq && $sudo_cmd apt-get install -y -qq ffmpeg >/dev/null
fi
# vspipe finds its Python through this file; write it for this venv
.venv/bin/vapoursynth config >/dev/null
