"""Dash apps for supervisors, planners and analysts, composing the other packages."""

__all__: list[str] = []
