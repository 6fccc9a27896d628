"""Golden traces for the stream tests: events pasted as a table, one per line.

    08:00:15.000  call.answered  call_id=c1 agent_id=a1 queue=support ring_s=3

Time (UTC, on ``DAY``), the contract type, then the payload's fields as ``name=value``
(converted to the field types by the contract). Lines starting with ``#`` are comments.
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, time

import msgspec

from ingest.contract import Event, make_event
from ingest.contract.registry import payload_class

__all__ = ["DAY", "OTHERS", "TRANSFERRED", "interleave", "parse_trace"]

DAY = date(2026, 3, 2)


def parse_trace(text: str, *, day: date = DAY, site: str = "main") -> list[Event]:
    """The events of a pasted trace, ids ``e1, e2, ...`` in line order."""
    events = []
    for line in text.strip().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        at, kind, *fields = line.split()
        values = dict(field.split("=", 1) for field in fields)
        payload = msgspec.convert(values, payload_class(kind), strict=False)
        when = datetime.combine(day, time.fromisoformat(at), tzinfo=UTC)
        events.append(make_event(payload, occurred_at=when, source="trace", site=site,
                                 event_id=f"e{len(events) + 1}"))
    return events



def interleave(events: list[Event], *, seed: int) -> list[Event]:
    """A random order of ``events`` that keeps each key's order: what consumers of several
    partitions and topics may see."""
    by_key: dict[str, list[Event]] = {}
    for event in events:
        by_key.setdefault(event.key, []).append(event)
    rng = random.Random(seed)
    out: list[Event] = []
    while by_key:
        key = rng.choice(sorted(by_key))
        out.append(by_key[key].pop(0))
        if not by_key[key]:
            del by_key[key]
    return out

# A support call answered by a1 after 15 s, held 30 s, blind-transferred to billing,
# answered there by a2 after 30 s, ended by the caller; both agents wrap up afterwards.
TRANSFERRED = """
07:59:00      agent.state_changed  agent_id=a1 state=ready
07:59:00      agent.state_changed  agent_id=a2 state=ready
08:00:00.250  call.offered         call_id=c1 direction=inbound caller=+8613800000001 dialed=4008001002
08:00:00.250  call.queued          call_id=c1 queue=support
08:00:12.250  call.ringing         call_id=c1 agent_id=a1 queue=support
08:00:12.250  agent.state_changed  agent_id=a1 state=ringing call_id=c1 queue=support
08:00:15.250  call.answered        call_id=c1 agent_id=a1 queue=support wait_s=15 ring_s=3
08:00:15.250  agent.state_changed  agent_id=a1 state=talking call_id=c1 queue=support
08:01:00.250  call.held            call_id=c1 agent_id=a1
08:01:00.250  agent.state_changed  agent_id=a1 state=hold call_id=c1
08:01:30.250  call.resumed         call_id=c1 agent_id=a1
08:01:30.250  agent.state_changed  agent_id=a1 state=talking call_id=c1
08:02:00.250  call.transferred     call_id=c1 kind=blind target_kind=queue target=billing agent_id=a1
08:02:00.250  agent.state_changed  agent_id=a1 state=after_call_work call_id=c1
08:02:00.250  call.queued          call_id=c1 queue=billing
08:02:28.250  call.ringing         call_id=c1 agent_id=a2 queue=billing
08:02:28.250  agent.state_changed  agent_id=a2 state=ringing call_id=c1 queue=billing
08:02:30.250  call.answered        call_id=c1 agent_id=a2 queue=billing wait_s=30 ring_s=2
08:02:30.250  agent.state_changed  agent_id=a2 state=talking call_id=c1 queue=billing
08:05:00.250  call.ended           call_id=c1 disposition=answered ended_by=caller agent_id=a2
08:05:00.250  agent.state_changed  agent_id=a2 state=after_call_work call_id=c1
08:05:20.250  agent.state_changed  agent_id=a1 state=ready
08:05:45.250  agent.state_changed  agent_id=a2 state=not_ready reason=break
"""

# c2 abandons after 40 s in the queue; c3 hangs up in the IVR; c4 finds billing closed and
# is overflowed to voicemail; c5 is answered, then the caller rates the agent in a survey.
OTHERS = """
09:00:00  call.offered     call_id=c2 direction=inbound caller=+8613800000002 dialed=4008001001
09:00:00  call.queued      call_id=c2 queue=sales
09:00:40  call.abandoned   call_id=c2 stage=queue queue=sales wait_s=40
09:00:40  call.ended       call_id=c2 disposition=abandoned ended_by=caller queue=sales
09:10:00  call.offered     call_id=c3 direction=inbound caller=+8613800000003 dialed=4008001000
09:10:00  call.ivr_entered call_id=c3 flow=main
09:10:09  call.abandoned   call_id=c3 stage=ivr
09:10:09  call.ended       call_id=c3 disposition=abandoned ended_by=caller
09:20:00  call.offered     call_id=c4 direction=inbound caller=+8613800000004 dialed=4008001003
09:20:00  call.overflowed  call_id=c4 queue=billing reason=no_agents target_kind=voicemail target=billing
09:20:00  call.ivr_entered call_id=c4 flow=voicemail
09:21:00  call.voicemail_left call_id=c4 mailbox=billing duration_s=55
09:21:00  call.ended       call_id=c4 disposition=voicemail ended_by=caller
09:30:00  call.offered     call_id=c5 direction=inbound caller=+8613800000005 dialed=4008001002
09:30:00  call.queued      call_id=c5 queue=support
09:30:05  call.answered    call_id=c5 agent_id=a3 queue=support wait_s=5
09:30:05  agent.state_changed agent_id=a3 state=talking call_id=c5 queue=support
09:32:05  agent.state_changed agent_id=a3 state=after_call_work call_id=c5 queue=support
09:32:05  call.ivr_entered call_id=c5 flow=survey
09:32:20  call.survey_answered call_id=c5 survey=csat score=4 scale_max=5 agent_id=a3
09:32:21  call.ended       call_id=c5 disposition=answered ended_by=caller agent_id=a3
09:33:05  agent.state_changed agent_id=a3 state=ready
"""
