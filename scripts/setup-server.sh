#!/usr/bin/env bash
# What the server's real-client tests use (tests/Pictor.Server.Tests/NodeClientTests.cs): node and npm for OpenAI's
# npm library and puppeteer-core, Debian's chromium for the headless browser, and the npm packages (package-lock.json).
# Without root or apt it says so and carries on: those tests are then skipped, each saying what is missing.
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
missing=()
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)
command -v chromium >/dev/null || missing+=(chromium)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "setup: installing ${missing[*]} (server browser and npm client tests)" >&2
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}") >/dev/null 2>&1 \
      || echo "setup: could not install ${missing[*]}; the server's node and browser tests will be skipped" >&2
  else
    echo "setup: ${missing[*]} missing and cannot install (need root and apt-get); those tests will be skipped" >&2
  fi
fi
js="$root/tests/Pictor.Server.Tests/js"
if command -v npm >/dev/null && [ ! -d "$js/node_modules/openai" -o ! -d "$js/node_modules/puppeteer-core" ]; then
  echo "setup: npm ci in tests/Pictor.Server.Tests/js" >&2
  (cd "$js" && npm ci --no-audit --no-fund --loglevel=error) >&2 \
    || echo "setup: npm ci failed; the server's node and browser tests will be skipped" >&2
fi
exit 0
