#!/usr/bin/env bash
# Run the benchmarks and append the results, with date and machine, to bench/RESULTS.md.
# The peer we compare against (pyworkforce 0.5.4) is installed here, into .venv, first.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
peer=0.5.4
if [ "$(.venv/bin/python -c 'from importlib.metadata import version as v; print(v("pyworkforce"))' 2>/dev/null)" != "$peer" ]; then
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev,bench]'
  # it declares Python >= 3.12; its code runs on 3.11, so fetch the 3.12 wheel and ignore that
  .venv/bin/python -m pip download --quiet --disable-pip-version-check --no-deps \
    --python-version 3.12 --only-binary=:all: -d .venv/peers "pyworkforce==$peer"
  .venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps \
    --ignore-requires-python ".venv/peers/pyworkforce-$peer-py3-none-any.whl"
fi
exec .venv/bin/python -m bench "$@"
