#!/usr/bin/env bash
# The performance race of issue 4, in one invocation: GEMM through Pictor vs OpenBLAS called directly, then every model
# row against PyTorch, alternating (bench/race.py), with OPENBLAS_CORETYPE as the environment sets it and unset.
#   bash bench/run.sh [--iters 10] [--rows unet-train,...] [--processes N]   (extra arguments go to bench/race.py)
#   RACE_MODES=given|unset bash bench/run.sh ...                (one OPENBLAS_CORETYPE setting only; default both)
# Installs python3-torch from apt when it is missing (root), like scripts/setup.sh does for OpenBLAS.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/setup.sh >&2
if ! /usr/bin/python3 -c "import torch" 2>/dev/null; then
  echo "installing python3-torch (the PyTorch peer) from apt" >&2
  if [ "$(id -u)" = 0 ]; then apt-get update -qq >&2 && apt-get install -y -qq python3-torch python3-numpy >&2
  else sudo apt-get update -qq >&2 && sudo apt-get install -y -qq python3-torch python3-numpy >&2; fi
fi
dotnet build bench/Pictor.Bench/Pictor.Bench.csproj -c Release -nologo -v q -clp:ErrorsOnly >&2
dll=bench/Pictor.Bench/bin/Release/net10.0/Pictor.Bench.dll
given="${OPENBLAS_CORETYPE-}"
echo "# Pictor vs PyTorch $(/usr/bin/python3 -c 'import torch; print(torch.__version__)'), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(date -u +%Y-%m-%d)"
for mode in ${RACE_MODES:-given unset}; do
  if [ "$mode" = given ]; then
    [ -n "$given" ] && export OPENBLAS_CORETYPE="$given" || unset OPENBLAS_CORETYPE
  else
    unset OPENBLAS_CORETYPE
    [ -z "$given" ] && [ "${RACE_MODES:-given unset}" != unset ] && continue   # already ran unset
  fi
  echo
  echo "## OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-(unset)}"
  echo
  echo "GEMM (Pictor.Bench gemm): Pictor's entry point vs OpenBLAS called directly, and the managed fallback"
  echo
  out="$(PICTOR_THREADS=2 OPENBLAS_NUM_THREADS=2 dotnet "$dll" gemm 15)"
  echo "$out"
  peak="$(echo "$out" | awk -F'|' '/^\| *[0-9]+ /{for (c = 3; c <= 6; c += 3) {v=$c; gsub(/[^0-9.]/,"",v); if (v+0>m) m=v+0}} END{print m}')"   # best of OpenBLAS and managed
  /usr/bin/python3 bench/race.py --peak-gflops "${peak:-0}" "$@"
done
