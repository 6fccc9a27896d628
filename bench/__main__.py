"""``python -m bench [NAME ...]``: run benchmarks (all by default), append to RESULTS.md."""

from __future__ import annotations

import sys

from bench import eventlog, forecasting, simulator, streams, warehouse, wfm

SUITES = {"eventlog": eventlog.run, "forecasting": forecasting.run, "simulator": simulator.run,
          "streams": streams.run,
          "warehouse": warehouse.run, "wfm": wfm.run}


def main(argv: list[str]) -> None:
    """Run the named suites (all when none is named) and print their results."""
    unknown = [name for name in argv if name not in SUITES]
    if unknown:
        raise SystemExit(f"unknown benchmark {unknown}; choose from {sorted(SUITES)}")
    for name in argv or list(SUITES):
        print(SUITES[name]())


main(sys.argv[1:])
