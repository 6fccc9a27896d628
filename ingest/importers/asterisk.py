"""Asterisk ``queue_log`` lines into contract events.

A line is ``epoch|callid|queue|agent|event|data1|data2|...``: the header's five fields,
then zero to five data fields (Asterisk 1.2-1.8 wrote them as one pipe-separated ``data``
set, 10+ as ``data1..data5``; in the file both are pipes, so both read the same way).
Missing trailing data fields read as empty. The call id of every call event is
``{system}:{callid}`` (the Asterisk uniqueid); event ids are derived from the line's text,
so importing the same files again gives the same events.

``parse_queue_log(lines, state=...)`` yields one ``Outcome`` per line; pass one
``QueueLogState`` to several calls to import rotated files in order (a call entering the
queue in one file and answered in the next keeps its ``dialed`` number and is offered once).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

from ingest.contract import (
    AgentLoggedIn,
    AgentLoggedOut,
    AgentStateChanged,
    CallAbandoned,
    CallAnswered,
    CallEnded,
    CallOffered,
    CallQueued,
    CallTransferred,
    Event,
    Payload,
    RingNoAnswer,
    SkillGroupSignedIn,
    SkillGroupSignedOut,
    make_event,
)
from ingest.importers.report import (
    Converted,
    LineError,
    NoEvent,
    Outcome,
    RecordError,
    checked,
    event_id,
)

__all__ = ["EVENTS", "NO_EVENT", "QueueLogState", "parse_queue_log"]

NO_EVENT: dict[str, str] = {
    "CONFIGRELOAD": "CONFIGRELOAD",
    "QUEUESTART": "QUEUESTART",
    "DID": "DID (its number becomes the dialed number of the call's call.offered)",
    "RINGCANCELED": "RINGCANCELED (the contract has no ring-cancelled event)",
    "INFO": "INFO",
}
"""queue_log events counted as "no event", with the label the report uses."""

ANONYMOUS = "anonymous"
"""The caller of a call whose ENTERQUEUE carries no caller id (``caller`` is required)."""


@dataclass(slots=True)
class QueueLogState:
    """What an import remembers between lines and between rotated files."""

    system: str = "asterisk"
    dids: dict[str, str] = field(default_factory=dict)
    offered: set[str] = field(default_factory=set)
    seen: Counter[str] = field(default_factory=Counter)


@dataclass(frozen=True, slots=True)
class _Line:
    at: datetime
    callid: str
    queue: str | None
    agent: str | None
    event: str
    data: tuple[str, ...]

    def datum(self, index: int) -> str:
        return self.data[index].strip() if index < len(self.data) else ""



def _opt(text: str) -> str | None:
    text = text.strip()
    return None if text in ("", "NONE") else text


def _seconds(line: _Line, index: int, name: str, *, scale: float = 1.0) -> float:
    text = line.datum(index)
    if not text:
        return 0.0
    try:
        value = float(text) / scale
    except ValueError:
        raise RecordError(
            f"{line.event} {name} {text!r} (data{index + 1}) is not a number") from None
    if value < 0:
        raise RecordError(f"{line.event} {name} {text!r} (data{index + 1}) is negative")
    return value


def _need_agent(line: _Line) -> str:
    if line.agent is None:
        raise RecordError(f"{line.event} without an agent (the 4th field is empty or NONE)")
    return line.agent


def _need_call(line: _Line) -> str:
    if _opt(line.callid) is None:
        raise RecordError(f"{line.event} without a call id (the 2nd field is empty or NONE)")
    return line.callid


Built = list[Payload]


def _enter(line: _Line, state: QueueLogState, call: str) -> Built:
    queue = line.queue or "default"
    position = line.datum(2)
    out: Built = []
    if call not in state.offered:
        state.offered.add(call)
        caller = line.datum(1)[:40] or ANONYMOUS
        dialed = state.dids.pop(call, None) or queue
        out.append(CallOffered(call_id=call, direction="inbound", caller=caller,
                               dialed=dialed[:40]))
    out.append(CallQueued(call_id=call, queue=queue,
                          position=int(position) if position.isdigit() and int(position) else 1))
    return out


def _connect(line: _Line, call: str) -> Built:
    return [CallAnswered(call_id=call, agent_id=_need_agent(line), queue=line.queue,
                         wait_s=_seconds(line, 0, "holdtime"),
                         ring_s=_seconds(line, 2, "ringtime"))]


def _complete(ended_by: str) -> Callable[[_Line, str], Built]:
    def build(line: _Line, call: str) -> Built:
        _seconds(line, 1, "calltime")
        return [CallEnded(call_id=call, disposition="answered", ended_by=ended_by,  # type: ignore[arg-type]
                          agent_id=_need_agent(line), queue=line.queue)]
    return build


def _abandon(line: _Line, call: str) -> Built:
    wait = _seconds(line, 2, "waittime")
    return [CallAbandoned(call_id=call, stage="queue", queue=line.queue, wait_s=wait),
            CallEnded(call_id=call, disposition="abandoned", ended_by="caller", queue=line.queue)]


def _exit(disposition: str, ended_by: str) -> Callable[[_Line, str], Built]:
    def build(line: _Line, call: str) -> Built:
        return [CallEnded(call_id=call, disposition=disposition,  # type: ignore[arg-type]
                          ended_by=ended_by, queue=line.queue)]  # type: ignore[arg-type]
    return build


def _transfer(kind: str) -> Callable[[_Line, str], Built]:
    def build(line: _Line, call: str) -> Built:
        if kind == "consult":  # ATTENDEDTRANSFER: method|data|holdtime|calltime|origposition
            target = ":".join(p for p in (line.datum(0), line.datum(1)) if p)
        else:  # TRANSFER, BLINDTRANSFER: extension|context|holdtime|calltime|origposition
            target = "@".join(p for p in (line.datum(0), line.datum(1)) if p)
        if not target:
            raise RecordError(f"{line.event} without a target (data1 and data2 are empty)")
        return [CallTransferred(call_id=call, kind=kind, target_kind="external",  # type: ignore[arg-type]
                                target=target[:128], agent_id=line.agent),
                CallEnded(call_id=call, disposition="transferred_external", ended_by="agent",
                          agent_id=line.agent, queue=line.queue)]
    return build


def _rona(line: _Line, call: str) -> Built:
    return [RingNoAnswer(call_id=call, agent_id=_need_agent(line), queue=line.queue,
                         ring_s=_seconds(line, 0, "ringtime (ms)", scale=1000.0))]


def _agent_dump(line: _Line, call: str) -> Built:
    return [CallEnded(call_id=call, disposition="failed", ended_by="agent",
                      agent_id=_need_agent(line), queue=line.queue)]


CALL_EVENTS: dict[str, Callable[[_Line, str], Built]] = {
    "CONNECT": _connect,
    "COMPLETEAGENT": _complete("agent"),
    "COMPLETECALLER": _complete("caller"),
    "ABANDON": _abandon,
    "EXITWITHTIMEOUT": _exit("no_agents", "system"),
    "EXITEMPTY": _exit("no_agents", "system"),
    "EXITWITHKEY": _exit("ivr_completed", "caller"),
    "RINGNOANSWER": _rona,
    "TRANSFER": _transfer("blind"),
    "BLINDTRANSFER": _transfer("blind"),
    "ATTENDEDTRANSFER": _transfer("consult"),
    "AGENTDUMP": _agent_dump,
}


def _agent_line(line: _Line) -> Built:
    agent = _need_agent(line)
    kind, reason = line.event, _opt(line.datum(0))
    if kind == "ADDMEMBER":
        return [SkillGroupSignedIn(agent_id=agent, queue=_need_queue(line))]
    if kind == "REMOVEMEMBER":
        return [SkillGroupSignedOut(agent_id=agent, queue=_need_queue(line))]
    if kind in ("PAUSE", "PAUSEALL"):
        return [AgentStateChanged(agent_id=agent, state="not_ready", reason=reason,
                                  queue=line.queue if kind == "PAUSE" else None)]
    if kind in ("UNPAUSE", "UNPAUSEALL"):
        return [AgentStateChanged(agent_id=agent, state="ready",
                                  queue=line.queue if kind == "UNPAUSE" else None)]
    if kind in ("AGENTLOGIN", "AGENTCALLBACKLOGIN"):
        return [AgentLoggedIn(agent_id=agent, extension=reason or agent)]
    # AGENTLOGOFF: channel|logintime; AGENTCALLBACKLOGOFF: exten@context|logintime|reason
    return [AgentLoggedOut(agent_id=agent, reason=_opt(line.datum(2)))]


def _need_queue(line: _Line) -> str:
    if line.queue is None:
        raise RecordError(f"{line.event} without a queue (the 3rd field is empty or NONE)")
    return line.queue


AGENT_EVENTS = frozenset({
    "ADDMEMBER", "REMOVEMEMBER", "PAUSE", "UNPAUSE", "PAUSEALL", "UNPAUSEALL", "AGENTLOGIN",
    "AGENTCALLBACKLOGIN", "AGENTLOGOFF", "AGENTCALLBACKLOGOFF",
})

EVENTS: frozenset[str] = frozenset({"ENTERQUEUE", *CALL_EVENTS, *AGENT_EVENTS, *NO_EVENT})
"""Every queue_log event this importer knows; any other is reported as an error."""


def _split(text: str) -> _Line:
    fields = text.split("|")
    if len(fields) < 5:
        raise RecordError(f"{len(fields)} fields, a queue_log line has at least 5 "
                   "(epoch|callid|queue|agent|event)")
    epoch = fields[0].strip()
    try:
        seconds = float(epoch)
        at = datetime.fromtimestamp(seconds, UTC)
    except (ValueError, OverflowError, OSError):
        raise RecordError(f"epoch {epoch[:40]!r} is not a Unix time in seconds") from None
    if not 315_532_800 <= seconds < 4_102_444_800:  # 1980 .. 2100: a garbled number
        raise RecordError(f"epoch {epoch!r} is outside 1980..2100")
    event = fields[4].strip()
    return _Line(at=at, callid=fields[1].strip(), queue=_opt(fields[2]), agent=_opt(fields[3]),
                 event=event, data=tuple(fields[5:]))


def _convert(text: str, state: QueueLogState) -> tuple[_Line, list[Payload] | str]:
    """The line and its payloads, or its no-event label."""
    line = _split(text)
    return line, _payloads(line, state)


def _payloads(line: _Line, state: QueueLogState) -> list[Payload] | str:
    kind = line.event
    if kind in NO_EVENT:
        if kind == "DID" and _opt(line.callid) and line.datum(0):
            state.dids[f"{state.system}:{line.callid}"] = line.datum(0)
        return NO_EVENT[kind]
    if kind in AGENT_EVENTS:
        return _agent_line(line)
    if kind == "ENTERQUEUE":
        return _enter(line, state, f"{state.system}:{_need_call(line)}")
    build = CALL_EVENTS.get(kind)
    if build is None:
        raise RecordError(f"unknown queue_log event {kind[:40]!r}" if kind
                          else "the event field is empty")
    return build(line, f"{state.system}:{_need_call(line)}")


def parse_queue_log(
    lines: Iterable[bytes], *, source: str = "queue_log", state: QueueLogState | None = None,
) -> Iterator[Outcome]:
    """One ``Converted``, ``NoEvent`` or ``LineError`` per line of ``lines`` (raw bytes).

    Blank lines are errors too (every line is accounted for); a line with NUL bytes (an
    unclean write) or bytes that are not UTF-8 is an error and the lines after it import.
    """
    state = state if state is not None else QueueLogState()
    for number, raw in enumerate(lines, start=1):
        raw = raw.rstrip(b"\r\n")
        if b"\x00" in raw:
            rest = raw.replace(b"\x00", b"")
            yield LineError(source, number, f"{len(raw) - len(rest)} NUL bytes (an unclean "
                            f"write); the line is not imported; the bytes after them read "
                            f"{rest[:80].decode('utf-8', 'replace')!r}")
            continue
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            yield LineError(source, number, f"not UTF-8 (byte {exc.start + 1} is "
                            f"0x{raw[exc.start]:02x})")
            continue
        if not text.strip():
            yield LineError(source, number, "empty line")
            continue
        try:
            line, built = _convert(text, state)
        except RecordError as exc:
            yield LineError(source, number, str(exc))
            continue
        if isinstance(built, str):
            yield NoEvent(number, built)
            continue
        state.seen[text] += 1
        events: list[Event[Payload]] = [
            make_event(payload, occurred_at=line.at, source=f"{state.system}.queue_log",
                       event_id=event_id(state.system, text, state.seen[text], k))
            for k, payload in enumerate(built)
        ]
        problem = checked(events)
        yield (LineError(source, number, problem) if problem
               else Converted(number, tuple(events)))
