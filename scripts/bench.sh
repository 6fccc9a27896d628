#!/usr/bin/env bash
# Run the benchmarks and append the results, with date and machine, to bench/RESULTS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
exec .venv/bin/python -m bench "$@"
