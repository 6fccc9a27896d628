"""Deterministic call-control engine: IVR, ACD, agent and supervisor operations.

Runs on an injected clock, so live traffic and the simulator share one engine.
"""

__all__: list[str] = []
