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
# Sum the per-project summaries. Normal verbosity prints "Total tests: N" then "Passed: N" / "Failed: N" /
# "Skipped: N" lines; minimal verbosity prints "Passed!  - Failed: 0, Passed: 111, Skipped: 0, ...".
awk '/^ +Passed: +[0-9]+$/ { p += $2 } /^ +Failed: +[0-9]+$/ { f += $2 } /^ +Skipped: +[0-9]+$/ { s += $2 }
     /(Passed|Failed)! +- +Failed:/ { split($0, a, /[:,]/); f += a[2]; p += a[4]; s += a[6] }
     END { printf "%d passed, %d failed, %d skipped\n", p, f, s }' "$log"
rm -f "$log"
exit "$rc"
