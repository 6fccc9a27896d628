"""The event contract: round trips, validation reasons, schemas and their compatibility rule."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import msgspec
import pytest
from hypothesis import given, settings
from strategies import events

from ingest.contract import (
    PAYLOAD_TYPES,
    CallOffered,
    CallQueued,
    InvalidEventError,
    Topic,
    decode_event,
    encode_event,
    make_event,
    stamp,
)
from ingest.contract.codec import parse_version
from ingest.contract.schema import (
    compatibility_problems,
    event_schema,
    export_schemas,
    stale_schemas,
)

DOCS_EVENTS = Path(__file__).resolve().parent.parent / "docs" / "events"
AT = datetime(2026, 3, 2, 9, 30, 15, 123456, tzinfo=UTC)


def offered(**changes: object) -> bytes:
    event = make_event(
        CallOffered(call_id="c-1", direction="inbound", caller="+8613800138000",
                    dialed="4008001234"),
        occurred_at=AT, source="test", event_id="e-1",
    )
    raw = msgspec.to_builtins(event)
    for path, value in changes.items():
        *parents, leaf = path.split("__")
        node = raw
        for parent in parents:
            node = node[parent]
        if value is None:
            del node[leaf]
        else:
            node[leaf] = value
    return json.dumps(raw).encode()


def test_contract_covers_every_event_the_foundation_names() -> None:
    expected = {
        "call.offered", "call.ivr_entered", "call.ivr_node", "call.ivr_left", "call.queued",
        "call.announcement_played", "call.ringing", "call.rona", "call.answered", "call.held",
        "call.resumed", "call.muted", "call.transferred", "call.consulted", "call.conferenced",
        "call.supervisor_joined", "call.overflowed", "call.abandoned", "call.voicemail_left",
        "call.callback_requested", "call.survey_answered", "call.recording_stored",
        "call.ended", "agent.logged_in", "agent.logged_out", "agent.state_changed",
        "agent.skill_group_signed_in", "agent.skill_group_signed_out", "agent.action_forced",
        "ticket.created", "ticket.assigned", "ticket.status_changed", "ticket.commented",
        "ticket.closed", "wfm.forecast_published", "wfm.schedule_published",
        "wfm.schedule_changed",
    }
    assert expected <= set(PAYLOAD_TYPES)


@pytest.mark.parametrize(
    ("prefix", "topic", "key"),
    [("call.", Topic.CALLS, "call_id"), ("agent.", Topic.AGENTS, "agent_id"),
     ("ticket.", Topic.TICKETS, "ticket_id"), ("wfm.", Topic.WFM, "queue"),
     ("alarm.", Topic.ALARMS, "queue")],
)
def test_topics_and_partition_keys_are_defined_once_per_domain(
    prefix: str, topic: Topic, key: str
) -> None:
    classes = [cls for name, cls in PAYLOAD_TYPES.items() if name.startswith(prefix)]
    assert classes
    assert {(cls.TOPIC, cls.KEY) for cls in classes} == {(topic, key)}


@settings(max_examples=300, deadline=None)
@given(events())
def test_every_event_type_round_trips(event: object) -> None:
    assert decode_event(encode_event(event)) == event  # type: ignore[arg-type]


def test_envelope_carries_identity_version_times_and_key() -> None:
    event = decode_event(offered())
    assert event.id == "e-1"
    assert event.type == "call.offered"
    assert event.schema_version == "1.0"
    assert event.key == "c-1"
    assert event.occurred_at == datetime(2026, 3, 2, 9, 30, 15, 123000, tzinfo=UTC)
    assert event.recorded_at is None


def test_stamp_normalizes_to_utc_milliseconds() -> None:
    event = decode_event(offered(occurred_at="2026-03-02T17:30:15.123999+08:00"))
    stamped = stamp(event, datetime(2026, 3, 2, 9, 31, 0, 999999, tzinfo=UTC))
    assert stamped.occurred_at == datetime(2026, 3, 2, 9, 30, 15, 123000, tzinfo=UTC)
    assert stamped.occurred_at.utcoffset() == timedelta(0)
    assert stamped.recorded_at == datetime(2026, 3, 2, 9, 31, 0, 999000, tzinfo=UTC)
    assert b'"occurred_at":"2026-03-02T09:30:15.123000Z"' in encode_event(stamped)


def test_make_event_refuses_naive_times() -> None:
    payload = CallQueued(call_id="c", queue="q")
    with pytest.raises(ValueError, match="no timezone"):
        make_event(payload, occurred_at=datetime(2026, 1, 1), source="t")
    eastern = make_event(payload, occurred_at=datetime(2026, 1, 1, 8, tzinfo=timezone(
        timedelta(hours=8))), source="t")
    assert eastern.occurred_at == datetime(2026, 1, 1, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b'{"id": "x", "type": ', "not valid JSON"),
        (b"[1, 2]", "envelope: Expected `object`, got `array`"),
        (b"{}", "envelope: Object missing required field `type`"),
        (offered(type="call.teleported"), "unknown event type 'call.teleported'"),
        (offered(schema_version="2.0"), "newer than the supported major version 1.x"),
        (offered(schema_version="0.9"), "older than the supported major version 1.x"),
        (offered(schema_version="one"), "not of the form MAJOR.MINOR"),
        (offered(payload__caller=None), "missing required field `caller` - at `$.payload`"),
        (offered(payload__caller=8613800138000), "Expected `str`, got `int` - at "
                                                  "`$.payload.caller`"),
        (offered(payload__direction="sideways"), "Invalid enum value 'sideways'"),
        (offered(occurred_at="2026-03-02T09:30:15"), "timezone component - at `$.occurred_at`"),
        (offered(key="c-2"), "key 'c-2' does not match the payload's call_id 'c-1'"),
        (offered(id=""), "Expected `str` of length >= 1 - at `$.id`"),
    ],
)
def test_invalid_events_are_refused_with_a_reason(data: bytes, reason: str) -> None:
    with pytest.raises(InvalidEventError) as caught:
        decode_event(data)
    assert reason in caught.value.reason


def test_newer_minor_versions_are_read_and_unknown_fields_ignored() -> None:
    event = decode_event(offered(schema_version="1.7", payload__added_later="x", extra=1))
    assert event.schema_version == "1.7"
    assert event.payload == CallOffered(call_id="c-1", direction="inbound",
                                        caller="+8613800138000", dialed="4008001234")


def test_parse_version() -> None:
    assert parse_version("1.12") == (1, 12)
    with pytest.raises(ValueError, match=r"MAJOR\.MINOR"):
        parse_version("1")


def test_checked_in_schemas_match_the_code() -> None:
    assert stale_schemas(DOCS_EVENTS) == [], (
        "event models changed: bump the type's VERSION (minor for additive changes), run "
        "`queuecast events schema` and commit docs/events/"
    )


@pytest.mark.parametrize("event_type", sorted(PAYLOAD_TYPES))
def test_current_schema_is_compatible_with_every_checked_in_version_of_its_major(
    event_type: str,
) -> None:
    current = event_schema(event_type)
    major = PAYLOAD_TYPES[event_type].VERSION[0]
    history = sorted((DOCS_EVENTS / event_type).glob(f"{major}.*.json"))
    assert history, f"no checked-in schema for {event_type}"
    for path in history:
        old = json.loads(path.read_text(encoding="utf-8"))
        assert compatibility_problems(old, current) == [], f"{event_type} vs {path.name}"


def _payload_def(schema: dict, name: str) -> dict:
    return schema["$defs"][name]


def test_compatibility_rule_allows_only_additive_changes() -> None:
    old = event_schema("call.queued")

    added_optional = copy.deepcopy(old)
    _payload_def(added_optional, "CallQueued")["properties"]["skill"] = {"type": "string"}
    assert compatibility_problems(old, added_optional) == []

    added_required = copy.deepcopy(added_optional)
    _payload_def(added_required, "CallQueued")["required"].append("skill")
    assert compatibility_problems(old, added_required) == [
        "$.payload.skill: required now but absent before; add new fields with a default"
    ]

    removed = copy.deepcopy(old)
    del _payload_def(removed, "CallQueued")["properties"]["priority"]
    assert compatibility_problems(old, removed) == ["$.payload.priority: field removed"]

    retyped = copy.deepcopy(old)
    _payload_def(retyped, "CallQueued")["properties"]["queue"] = {"type": "integer"}
    assert compatibility_problems(old, retyped) == [
        "$.payload.queue: type string is no longer accepted"
    ]

    narrowed = copy.deepcopy(old)
    _payload_def(narrowed, "CallQueued")["properties"]["queue"]["maxLength"] = 10
    assert compatibility_problems(old, narrowed) == [
        "$.payload.queue: maxLength narrowed from 128 to 10"
    ]


def test_compatibility_rule_on_enums_and_nested_lists() -> None:
    old = event_schema("agent.logged_in")
    new = copy.deepcopy(old)
    skill = new["$defs"]["SkillLevel"]
    del skill["properties"]["level"]
    assert compatibility_problems(old, new) == ["$.payload.skills[].level: field removed"]

    old = event_schema("call.ended")
    fewer = copy.deepcopy(old)
    fewer["$defs"]["CallEnded"]["properties"]["disposition"]["enum"].remove("voicemail")
    assert compatibility_problems(old, fewer) == ["$.payload.disposition: values ['voicemail']"
                                                  " were removed"]
    more = copy.deepcopy(old)
    more["$defs"]["CallEnded"]["properties"]["disposition"]["enum"].append("deflected")
    assert compatibility_problems(old, more) == []


def test_export_writes_only_changed_files(tmp_path: Path) -> None:
    first = export_schemas(tmp_path)
    assert len(first) == len(PAYLOAD_TYPES) + 1  # one per type and the index
    assert export_schemas(tmp_path) == []
    assert stale_schemas(tmp_path) == []
    index = (tmp_path / "README.md").read_text(encoding="utf-8")
    assert "| `call.offered` | 1.0 | calls | call_id |" in index
