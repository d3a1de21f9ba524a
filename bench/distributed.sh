#!/usr/bin/env bash
# Data-parallel training on this machine: the same run (--batch is the global batch) as 1 process x 2 threads and as
# 2 MPICH ranks x 1 thread, alternating, for OPENBLAS_CORETYPE as the environment sets it and unset. Prints the step
# time (forward + backward + allreduce + AdamW, no validation) and the allreduce's share, from the trainer's "timing:"
# line, plus the gradient bytes per step for the scale model of docs/distributed.md.
#   bash bench/distributed.sh [STEPS] [ROUNDS] [PRESET] [BATCH]     (defaults 30 3 xs 32)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
steps="${1:-30}"; rounds="${2:-3}"; preset="${3:-xs}"; batch="${4:-32}"
command -v mpiexec.mpich >/dev/null || { echo "mpiexec.mpich missing: bash scripts/setup-mpi.sh" >&2; exit 1; }
./pictor info >/dev/null   # builds the CLI outside the measurement
dll=src/Pictor.Cli/bin/Release/net10.0/pictor.dll
work="$(mktemp -d)"; trap 'rm -rf "$work"' EXIT
dotnet "$dll" data shapes --out "$work/data" --count 2000 --seed 1 >/dev/null 2>&1
args=(train diffusion --data "$work/data" --preset "$preset" --size 32 --batch "$batch" --steps "$steps"
      --val-every 100000 --ckpt-every 100000 --val-images 8)
given="${OPENBLAS_CORETYPE-}"
for mode in given unset; do
  [ "$mode" = unset ] && [ -z "$given" ] && continue
  if [ "$mode" = given ]; then label="OPENBLAS_CORETYPE=${given:-(unset)}"; pre=(env); else
    label="OPENBLAS_CORETYPE unset"; pre=(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE); fi
  for r in $(seq "$rounds"); do
    rm -rf "$work/one" "$work/two"
    one=$("${pre[@]}" PICTOR_THREADS=2 dotnet "$dll" "${args[@]}" --out "$work/one" 2>&1 | grep '^timing:')
    two=$("${pre[@]}" mpiexec.mpich -n 2 dotnet "$dll" "${args[@]}" --out "$work/two" 2>&1 | grep -E '^(timing|data-parallel):')
    echo "$label round $r, preset $preset, batch $batch:"
    echo "  1 process x 2 threads: ${one#timing: }"
    echo "  2 ranks x 1 thread:    $(echo "$two" | grep '^timing:' | sed 's/^timing: //')"
    [ "$r" = 1 ] && echo "  $(echo "$two" | grep '^data-parallel:' | sed 's/.*gradient allreduce/gradient allreduce/')"
  done
done
