"""The event contract, the event log, producers and importers: the bottom of queuecast.

``ingest.contract`` defines every event; ``ingest.log`` stores and delivers them.
"""

__all__: list[str] = []
