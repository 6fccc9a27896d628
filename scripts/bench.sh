#!/usr/bin/env bash
# Run the benchmarks and append the results, with date and machine, to bench/RESULTS.md.
# The peers we compare against (pyworkforce) are installed here, not in the test venv's needs.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
if ! .venv/bin/python -c 'import pyworkforce' 2>/dev/null; then
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev,bench]'
fi
exec .venv/bin/python -m bench "$@"
