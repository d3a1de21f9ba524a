#!/usr/bin/env bash
# Packs the six library projects (src/Pictor.Packages.slnf: Pictor.Engine, Nn, Text, Imaging, Models, Pipelines) into
# DIR (default out/packages): a .nupkg and a .snupkg each, version 0.1.0. It builds in its own artifacts folder
# (ARTIFACTS, default out/pack-artifacts), so it never touches src/*/bin or obj, which ./pictor and the tests use.
# Usage: scripts/pack.sh [DIR] [ARTIFACTS]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
mkdir -p "${1:-$root/out/packages}"
out="$(cd "${1:-$root/out/packages}" && pwd)"
artifacts="${2:-$root/out/pack-artifacts}"
dotnet pack "$root/src/Pictor.Packages.slnf" -c Release -nologo -v q -clp:NoSummary --artifacts-path "$artifacts" -o "$out"
