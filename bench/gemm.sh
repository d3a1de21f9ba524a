#!/usr/bin/env bash
# GEMM benchmark, run twice: with OPENBLAS_CORETYPE as the environment gives it, and with it unset.
#   bash bench/gemm.sh [iterations]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/scripts/setup.sh"
dotnet build "$root/bench/Pictor.Bench" -c Release -nologo -v q -clp:ErrorsOnly
dll="$root/bench/Pictor.Bench/bin/Release/net10.0/Pictor.Bench.dll"
echo "## as given"
dotnet "$dll" gemm "${1:-15}"
echo
echo "## OPENBLAS_CORETYPE unset"
env -u OPENBLAS_CORETYPE dotnet "$dll" gemm "${1:-15}"
