"""Erlang staffing, shift scheduling and rostering: a pure library over DataFrames."""

from scheduling.erlang import (
    QueueMetrics,
    StaffingResult,
    apply_shrinkage,
    erlang_b,
    erlang_c,
    offered_load,
    queue_metrics,
    required_agents,
)

__all__ = [
    "QueueMetrics",
    "StaffingResult",
    "apply_shrinkage",
    "erlang_b",
    "erlang_c",
    "offered_load",
    "queue_metrics",
    "required_agents",
]
