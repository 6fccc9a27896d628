#!/usr/bin/env bash
# The main job on embedded defaults: install into .venv, then run `queuecast demo`.
# Extra arguments go to the demo, e.g. scripts/demo.sh --hours 4 --speed 600
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
exec .venv/bin/queuecast demo "$@"
