#!/usr/bin/env bash
# Install into .venv and run the whole suite: lint, schema check, tests.
# The tests start every server they need (the Tansu Kafka broker) on loopback.
# Extra arguments go to pytest, e.g. scripts/test.sh -k eventlog
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
.venv/bin/ruff check .
.venv/bin/queuecast events schema --check
mkdir -p artifacts
exec .venv/bin/pytest --junitxml=artifacts/junit.xml "$@"
