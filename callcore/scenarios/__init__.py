"""Simulation scenarios shipped with queuecast: ``demo`` and ``large`` (see docs/simulator.md)."""
