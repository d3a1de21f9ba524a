#!/usr/bin/env bash
# The test command (README, .ci/run): installs OpenBLAS when missing, builds, runs every test project, and ends with
# one line "N passed, N failed, N skipped".
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/setup.sh
log="$(mktemp)"
dotnet test Pictor.slnx -c Release -nologo --logger "console;verbosity=normal" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
# Sum the per-project summaries: "Passed!  - Failed: 0, Passed: 111, Skipped: 0, Total: 111, ..."
awk -F'[:,]' '/(Passed|Failed)! +- +Failed:/ { f += $2; p += $4; s += $6 } END { printf "%d passed, %d failed, %d skipped\n", p, f, s }' "$log"
rm -f "$log"
exit "$rc"
