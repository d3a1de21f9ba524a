#!/usr/bin/env bash
# Packs the Pictor libraries into the local feed samples/HelloPictor/packages, builds the sample against it and runs
# it: writes samples/HelloPictor/hello.png. Arguments go to the sample: [MODEL_DIR] [PROMPT] [OUT.png].
# Restores into a packages folder of its own (out/hello-packages), from which the previous Pictor packages are removed
# first, so the ones just packed are used (a 0.1.0 already in ~/.nuget/packages would otherwise win).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
bash "$here/../../scripts/pack.sh" "$here/packages" >/dev/null
pkgs="$here/../../out/hello-packages"
rm -rf "$pkgs"/pictor.*
dotnet build "$here/HelloPictor.csproj" -c Release -nologo -v q -clp:NoSummary -p:RestorePackagesPath="$pkgs"
cd "$here"
dotnet bin/Release/net10.0/HelloPictor.dll "$@"
