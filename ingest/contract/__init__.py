"""The event contract: envelope, typed payloads, topics, codec and JSON Schemas.

Every producer and consumer of queuecast speaks this contract; ``docs/events/`` holds
the exported schemas, and ``docs/events/README.md`` lists the types.
"""

from ingest.contract.agents import *  # noqa: F403
from ingest.contract.agents import __all__ as _agents
from ingest.contract.alarms import *  # noqa: F403
from ingest.contract.alarms import __all__ as _alarms
from ingest.contract.calls import *  # noqa: F403
from ingest.contract.calls import __all__ as _calls
from ingest.contract.codec import InvalidEventError, decode_event, encode_event, stamp
from ingest.contract.envelope import (
    AgentPayload,
    CallPayload,
    Event,
    Payload,
    TicketPayload,
    WfmPayload,
    make_event,
    to_utc_ms,
)
from ingest.contract.registry import PAYLOAD_TYPES, payload_class
from ingest.contract.tickets import *  # noqa: F403
from ingest.contract.tickets import __all__ as _tickets
from ingest.contract.topics import DATA_TOPICS, DEFAULT_PARTITIONS, Topic
from ingest.contract.wfm import *  # noqa: F403
from ingest.contract.wfm import __all__ as _wfm

__all__ = [
    "DATA_TOPICS",
    "DEFAULT_PARTITIONS",
    "PAYLOAD_TYPES",
    "AgentPayload",
    "CallPayload",
    "Event",
    "InvalidEventError",
    "Payload",
    "TicketPayload",
    "Topic",
    "WfmPayload",
    "decode_event",
    "encode_event",
    "make_event",
    "payload_class",
    "stamp",
    "to_utc_ms",
    *_agents,
    *_alarms,
    *_calls,
    *_tickets,
    *_wfm,
]
