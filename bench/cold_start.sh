#!/usr/bin/env bash
# Cold start of the CLI to a written PNG: one 32x32 image from models/emoji (20 DPM-Solver++ steps, CFG 3), each run a
# fresh process, Release build already compiled. Prints wall time and peak RSS per run, for OPENBLAS_CORETYPE as the
# environment sets it and unset (the issue's target: <= 3 s).
#   bash bench/cold_start.sh [RUNS]      (default 5)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
runs="${1:-5}"
./pictor info >/dev/null   # builds the CLI when it is missing or stale, outside the measurement
dll=src/Pictor.Cli/bin/Release/net10.0/pictor.dll
out="$(mktemp -d)"
given="${OPENBLAS_CORETYPE-}"
for mode in given unset; do
  if [ "$mode" = given ]; then label="OPENBLAS_CORETYPE=${given:-(unset)}"; else label="OPENBLAS_CORETYPE unset"; fi
  [ "$mode" = unset ] && [ -z "$given" ] && continue
  times=()
  for i in $(seq "$runs"); do
    if [ "$mode" = given ]; then
      t=$(/usr/bin/time -f "%e %M" dotnet "$dll" generate "grinning face, noto style" --out "$out/cs.png" 2>&1 >/dev/null | tail -1)
    else
      t=$(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE /usr/bin/time -f "%e %M" dotnet "$dll" generate \
        "grinning face, noto style" --out "$out/cs.png" 2>&1 >/dev/null | tail -1)
    fi
    times+=("$(echo "$t" | awk '{printf "%.2f s (%d MiB)", $1, $2 / 1024}')")
  done
  echo "$label: ${times[*]}"
done
rm -rf "$out"
