#!/usr/bin/env bash
# MPICH for data-parallel training (mpiexec.mpich -n N ./pictor train ...) and its tests
# (tests/Pictor.Cli.Tests/DistributedTests.cs). MPICH rather than Open MPI: see docs/distributed.md.
# Without root or apt it says so and carries on: those tests are then skipped, each saying what is missing.
set -uo pipefail
if command -v mpiexec.mpich >/dev/null && ldconfig -p 2>/dev/null | grep 'libmpich\.so\.12' >/dev/null; then exit 0; fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "setup: installing mpich (data-parallel training and its tests)" >&2
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mpich) >/dev/null 2>&1 \
    || echo "setup: could not install mpich; the distributed training tests will be skipped" >&2
else
  echo "setup: mpich missing and cannot install it (need root and apt-get); distributed tests will be skipped" >&2
fi
exit 0
