#!/usr/bin/env bash
# Installs what Pictor uses at run time on a fresh Debian/Ubuntu machine: OpenBLAS (optional, for the fast GEMM).
# Without root or apt it says so and carries on: the managed SIMD GEMM is used instead.
set -uo pipefail
bash "$(dirname "${BASH_SOURCE[0]}")/setup-server.sh"   # node, chromium, npm packages: the server's client tests
bash "$(dirname "${BASH_SOURCE[0]}")/setup-mpi.sh"      # MPICH: data-parallel training (mpiexec.mpich) and its tests
if ldconfig -p 2>/dev/null | grep 'libopenblas\.so\.0' >/dev/null; then exit 0; fi   # not grep -q: under pipefail its early exit fails ldconfig (SIGPIPE)
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "setup: installing libopenblas0-pthread" >&2
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libopenblas0-pthread) >&2 \
    || echo "setup: could not install OpenBLAS; the managed GEMM will be used" >&2
else
  echo "setup: libopenblas not found and cannot install it (need root and apt-get); the managed GEMM will be used" >&2
fi
exit 0
