"""Projections: pure folds of contract events into live views and warehouse facts.

Hosted by faust-streaming on Kafka and by an in-process runner over the embedded log.
"""

__all__: list[str] = []
