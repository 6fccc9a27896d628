"""The CTI API end to end: sessions, role checks, bad commands, a full call with a screen
pop over the WebSocket, the telephony seam, the checked-in OpenAPI document and a real
uvicorn server (AG-01..AG-05, SV-01..SV-03, CC-06, CC-07, CC-09, ACD-05, ACD-07, TK-01)."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
from fastapi.testclient import TestClient
from starlette.testclient import WebSocketTestSession
from starlette.websockets import WebSocketDisconnect
from typer.testing import CliRunner

from callcore.api import (
    CLOSE_SESSION_ENDED,
    AuthenticationError,
    EngineService,
    SessionStore,
    build_server,
    create_app,
    openapi_document,
)
from callcore.center import AgentConfig, hash_password, load_center
from callcore.clock import VirtualClock, to_ms
from callcore.engine import Engine
from callcore.telephony import Instruction, SimulatedTelephony, TelephonyBridge
from ingest.contract import CallerRegion, Event, Payload, Topic
from ingest.log import EventLog
from ingest.log.embedded import EmbeddedTransport
from queuecast.cli import app as cli_app

PASSWORD = "correct horse battery"
HASH = hash_password(PASSWORD, salt=b"queuecast-tests!")
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
SHENZHEN = CallerRegion(country="中国", province="广东省", city="深圳市", carrier="中国移动")
CALLER = "+8613800138000"
OPENAPI = Path(__file__).resolve().parents[2] / "docs" / "cti-openapi.json"


def _agent(agent_id: str, **fields: Any) -> dict[str, Any]:
    return {"id": agent_id, "password_hash": HASH, **fields}


CENTER = load_center({
    "site": "hq",
    "numbers": [{"number": "4000", "entry": {"kind": "queue", "target": "sales"}},
                {"number": "4001", "entry": {"kind": "voicemail", "target": "a1"}},
                {"number": "4002", "entry": {"kind": "voicemail", "target": "sales"}}],
    "queues": [
        {"name": "sales", "ring_timeout_s": 10, "after_call_work_s": 5},
        {"name": "support"},
    ],
    "teams": [{"name": "red", "group": "east"}, {"name": "blue", "group": "east"},
              {"name": "green", "group": "west"}],
    "managers": {"m1": ["east"]},
    "agents": [
        _agent("a1", team="red", skills={"sales": 5}),
        _agent("a2", team="red", skills={"sales": 5, "support": 3}),
        _agent("b1", team="blue", skills={"sales": 5}, external_transfer=True),
        _agent("g1", team="green", skills={"support": 5}),
        _agent("lead_red", team="red", role="team_lead"),
        _agent("m1", role="manager"),
        _agent("dir", role="director"),
    ],
})
EXTENSIONS = {"a1": "1001", "a2": "1002", "b1": "2001", "g1": "3001", "lead_red": "1900",
              "m1": "8000", "dir": "9000"}


def _region(number: str) -> CallerRegion | None:
    return SHENZHEN if number.startswith("+86138") else None


@pytest.fixture
def event_log(tmp_path: Path) -> Iterator[EventLog]:
    with EventLog(EmbeddedTransport(tmp_path / "events.sqlite3"), namespace="cti") as log:
        yield log


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(START)


@pytest.fixture
def telephony() -> SimulatedTelephony:
    return SimulatedTelephony()


@pytest.fixture
def service(event_log: EventLog, clock: VirtualClock, telephony: SimulatedTelephony
            ) -> EngineService:
    return EngineService(CENTER, clock=clock, event_log=event_log, telephony=telephony,
                         region_lookup=_region, seed=0)


@pytest.fixture
def client(service: EngineService) -> Iterator[TestClient]:
    with TestClient(create_app(service)) as test_client:
        yield test_client


Login = Callable[[str], dict[str, str]]


@pytest.fixture
def login(client: TestClient) -> Login:
    """Log a user in at their extension; returns the Authorization header."""

    def log_in(user: str) -> dict[str, str]:
        response = client.post("/v1/sessions", json={
            "agent_id": user, "extension": EXTENSIONS[user], "password": PASSWORD})
        assert response.status_code == 201, response.text
        return {"Authorization": f"Bearer {response.json()['token']}"}

    return log_in


def _offer(client: TestClient, service: EngineService, caller: str = CALLER,
           dialed: str = "4000") -> str:
    assert client.portal is not None
    return client.portal.call(lambda: service.offer_call(caller=caller, dialed=dialed))


def _network(client: TestClient, action: Callable[[], Awaitable[None]]) -> None:
    """Report a network event (hang-up, remote answer, voicemail) to the service."""
    assert client.portal is not None
    client.portal.call(action)


def _tick(client: TestClient, service: EngineService, clock: VirtualClock, seconds: float
          ) -> None:
    clock.advance_to(clock.now_ms() + int(seconds * 1000))
    assert client.portal is not None
    client.portal.call(service.tick)


def _logged(event_log: EventLog) -> list[Event[Payload]]:
    with event_log.consumer(group=None, topics=[Topic.CALLS, Topic.AGENTS, Topic.TICKETS]
                            ) as consumer:
        return [d.event for batch in consumer.drain(idle=0.05) for d in batch]


def _until(ws: WebSocketTestSession, kind: str, **match: Any) -> dict[str, Any]:
    """Read messages until one of ``kind`` whose fields (or event type) match."""
    while True:
        message = ws.receive_json()
        if message["kind"] != kind:
            continue
        body = message["event"] if kind == "event" else message
        if all(body.get(k) == v for k, v in match.items()):
            return message


def _state(client: TestClient, headers: dict[str, str]) -> dict[str, Any]:
    response = client.get("/v1/agents/me", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


# -- AG-01 sessions ------------------------------------------------------------------------


def test_ag01_login_returns_a_token_and_logs_the_agent_in(
    client: TestClient, service: EngineService, event_log: EventLog
) -> None:
    response = client.post("/v1/sessions", json={
        "agent_id": "a1", "extension": "1001", "password": PASSWORD})
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["token_type"] == "bearer"
    assert len(body["token"]) >= 40
    assert body["agent"] == {**body["agent"], "agent_id": "a1", "logged_in": True,
                             "extension": "1001", "state": "not_ready", "reason": "login",
                             "queues": {"sales": 5}}
    assert service.engine.agents["a1"].extension == "1001"
    me = _state(client, {"Authorization": f"Bearer {body['token']}"})
    assert me["state"] == "not_ready"
    assert [e.type for e in _logged(event_log)] == ["agent.logged_in", "agent.state_changed"]


def test_ag01_wrong_password_and_unknown_user_get_the_same_401(
    client: TestClient, service: EngineService, event_log: EventLog
) -> None:
    wrong = client.post("/v1/sessions", json={
        "agent_id": "a1", "extension": "1001", "password": "guess"})
    unknown = client.post("/v1/sessions", json={
        "agent_id": "nobody", "extension": "1001", "password": PASSWORD})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json() == {"error": "unauthorized",
                                              "message": "agent id or password is wrong"}
    assert wrong.headers["www-authenticate"] == unknown.headers["www-authenticate"] == "Bearer"
    assert service.engine.agents == {}
    assert _logged(event_log) == []


def test_ag01_requests_without_a_valid_token_get_401(client: TestClient) -> None:
    missing = client.post("/v1/agents/me/ready")
    assert missing.status_code == 401
    assert "missing bearer token" in missing.json()["message"]
    bogus = client.post("/v1/agents/me/ready", headers={"Authorization": "Bearer nope"})
    assert bogus.status_code == 401
    assert bogus.json()["error"] == "unauthorized"
    basic = client.get("/v1/agents/me", headers={"Authorization": "Basic YTE6eA=="})
    assert basic.status_code == 401


def test_ag01_logout_revokes_the_token_and_logs_out(
    client: TestClient, service: EngineService, login: Login, event_log: EventLog
) -> None:
    headers = login("a1")
    assert client.delete("/v1/sessions/current", headers=headers).status_code == 204
    assert "a1" not in service.engine.agents
    after = client.get("/v1/agents/me", headers=headers)
    assert after.status_code == 401
    assert "revoked" in after.json()["message"]
    assert _logged(event_log)[-1].type == "agent.logged_out"


def test_ag01_login_again_at_the_same_extension_but_not_at_another(
    client: TestClient, login: Login
) -> None:
    first = login("a1")
    second = login("a1")
    assert first != second
    assert _state(client, first)["logged_in"]
    assert _state(client, second)["logged_in"]
    elsewhere = client.post("/v1/sessions", json={
        "agent_id": "a1", "extension": "1077", "password": PASSWORD})
    assert elsewhere.status_code == 409
    assert elsewhere.json() == {
        "error": "conflict",
        "message": "agent a1 is logged in at extension 1001; log out there first or ask a "
                   "supervisor to force a log-out"}


def test_ag01_logout_during_a_call_is_refused_and_keeps_the_session(
    client: TestClient, service: EngineService, login: Login
) -> None:
    headers = login("a1")
    client.post("/v1/agents/me/ready", headers=headers)
    _offer(client, service)
    client.post("/v1/agents/me/answer", headers=headers)
    refused = client.delete("/v1/sessions/current", headers=headers)
    assert refused.status_code == 409
    assert "finish it first" in refused.json()["message"]
    assert _state(client, headers)["state"] == "talking"


def test_ag01_sessions_expire() -> None:
    now = [100.0]
    store = SessionStore(ttl_s=60, now=lambda: now[0])
    token, session = store.issue(AgentConfig(id="a1"), extension="1001", takes_calls=True)
    assert store.lookup(token) == session
    now[0] += 61
    with pytest.raises(AuthenticationError, match="expired"):
        store.lookup(token)


def test_ag01_login_body_is_validated(client: TestClient) -> None:
    response = client.post("/v1/sessions", json={"agent_id": "a1", "password": PASSWORD})
    assert response.status_code == 422
    assert response.json() == {"error": "invalid", "message": "extension: Field required"}


# -- SV-03 roles and scope -------------------------------------------------------------------


def test_sv03_no_agent_endpoint_takes_another_agents_id() -> None:
    paths = openapi_document()["paths"]
    agent_paths = [p for p in paths if p.startswith("/v1/agents/")]
    assert agent_paths
    assert all(p == "/v1/agents/me" or p.startswith("/v1/agents/me/") for p in agent_paths)
    # The only paths naming another user are supervision paths.
    assert [p for p in paths if "{agent_id}" in p] == [
        "/v1/supervision/agents/{agent_id}/force", "/v1/supervision/agents/{agent_id}/join"]


def test_sv03_an_agent_token_cannot_act_for_another_agent(
    client: TestClient, service: EngineService, login: Login, event_log: EventLog
) -> None:
    a1, a2 = login("a1"), login("a2")
    before = service.engine.agents["a2"]
    logged = len(_logged(event_log))
    smuggled = client.post("/v1/agents/me/not-ready", headers=a1,
                           json={"reason": "break", "agent_id": "a2"})
    assert smuggled.status_code == 422
    assert smuggled.json()["message"] == "agent_id: Extra inputs are not permitted"
    for path, body in (("/v1/supervision/agents/a2/force", {"action": "ready"}),
                       ("/v1/supervision/agents/a2/join", {"mode": "monitor"})):
        response = client.post(path, headers=a1, json=body)
        assert response.status_code == 403
        assert response.json() == {
            "error": "forbidden",
            "message": "a1 is an agent; supervision needs the team_lead, manager or "
                       "director role"}
    assert client.get("/v1/supervision/agents", headers=a1).status_code == 403
    assert service.engine.agents["a2"] == before
    assert len(_logged(event_log)) == logged
    # a1's own command changes a1 only.
    assert client.post("/v1/agents/me/ready", headers=a1).json()["state"] == "ready"
    assert _state(client, a2)["state"] == "not_ready"


def test_sv03_an_agent_cannot_open_the_supervision_stream(client: TestClient, login: Login
                                                          ) -> None:
    token = login("a1")["Authorization"].removeprefix("Bearer ")
    with client.websocket_connect(f"/v1/supervision/events?token={token}") as ws:
        assert ws.receive_json()["error"] == "forbidden"
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
    assert closed.value.code == 4403


def test_sv03_team_lead_forces_its_own_team_only(
    client: TestClient, service: EngineService, login: Login, event_log: EventLog
) -> None:
    login("a1")
    login("b1")
    lead = login("lead_red")
    assert not _state(client, lead)["logged_in"]  # supervises without taking calls
    forced = client.post("/v1/supervision/agents/a1/force", headers=lead,
                         json={"action": "ready"})
    assert forced.status_code == 200, forced.text
    assert forced.json()["state"] == "ready"
    before = service.engine.agents["b1"]
    other_team = client.post("/v1/supervision/agents/b1/force", headers=lead,
                             json={"action": "ready"})
    assert other_team.status_code == 403
    assert other_team.json() == {"error": "forbidden",
                                 "message": "agent b1 is outside the scope of team_lead "
                                            "lead_red"}
    assert service.engine.agents["b1"] == before
    listed = client.get("/v1/supervision/agents", headers=lead).json()
    assert [(a["agent_id"], a["logged_in"]) for a in listed] == [("a1", True), ("a2", False)]
    forced_events = [e for e in _logged(event_log) if e.type == "agent.action_forced"]
    assert [msgspec.structs.astuple(e.payload)[:3] for e in forced_events] == [
        ("a1", "lead_red", "ready")]


def test_sv03_manager_acts_within_its_groups_only(
    client: TestClient, service: EngineService, login: Login
) -> None:
    login("b1")
    login("g1")
    manager = login("m1")
    inside = client.post("/v1/supervision/agents/b1/force", headers=manager,
                         json={"action": "sign_out", "queue": "sales"})
    assert inside.status_code == 200, inside.text
    assert inside.json()["queues"] == {}
    outside = client.post("/v1/supervision/agents/g1/force", headers=manager,
                          json={"action": "ready"})
    assert outside.status_code == 403
    assert "outside the scope of manager m1" in outside.json()["message"]
    scope = [a["agent_id"] for a in client.get("/v1/supervision/agents", headers=manager).json()]
    assert scope == ["a1", "a2", "b1", "lead_red"]


def test_sv03_director_acts_anywhere(client: TestClient, login: Login) -> None:
    login("g1")
    director = login("dir")
    forced = client.post("/v1/supervision/agents/g1/force", headers=director,
                         json={"action": "ready"})
    assert forced.status_code == 200
    scope = [a["agent_id"] for a in client.get("/v1/supervision/agents", headers=director).json()]
    assert scope == ["a1", "a2", "b1", "g1", "lead_red", "m1"]
    unknown = client.post("/v1/supervision/agents/ghost/force", headers=director,
                          json={"action": "ready"})
    assert unknown.status_code == 404
    assert unknown.json() == {"error": "unknown", "message": "unknown agent 'ghost'"}


@pytest.mark.timeout(30)
def test_sv02_forced_log_out_ends_the_agents_session_and_stream(
    client: TestClient, login: Login
) -> None:
    a1 = login("a1")
    lead = login("lead_red")
    token = a1["Authorization"].removeprefix("Bearer ")
    with client.websocket_connect(f"/v1/agents/me/events?token={token}") as ws:
        assert ws.receive_json()["kind"] == "hello"
        forced = client.post("/v1/supervision/agents/a1/force", headers=lead,
                             json={"action": "log_out", "reason": "end of shift"})
        assert forced.json()["logged_in"] is False
        out = _until(ws, "event", type="agent.logged_out")
        assert out["event"]["payload"]["forced_by"] == "lead_red"
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
    assert closed.value.code == CLOSE_SESSION_ENDED
    assert client.get("/v1/agents/me", headers=a1).status_code == 401


@pytest.mark.timeout(30)
def test_ag01_logout_closes_the_sessions_streams(client: TestClient, login: Login) -> None:
    lead = login("lead_red")
    with client.websocket_connect("/v1/supervision/events", headers=lead) as ws:
        assert ws.receive_json()["kind"] == "hello"
        assert client.delete("/v1/sessions/current", headers=lead).status_code == 204
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
    assert closed.value.code == CLOSE_SESSION_ENDED


def test_ag01_server_logs_never_show_stream_tokens(service: EngineService) -> None:
    build_server(service)
    record = logging.LogRecord("uvicorn.error", logging.INFO, __file__, 1,
                               '%s - "WebSocket %s" [accepted]',
                               ("127.0.0.1:5", "/v1/agents/me/events?token=s3cr3t&x=1"), None)
    assert logging.getLogger("uvicorn.error").filter(record)
    assert record.getMessage() == (
        '127.0.0.1:5 - "WebSocket /v1/agents/me/events?token=<redacted>&x=1" [accepted]')


@pytest.mark.timeout(30)
def test_sv03_supervision_stream_carries_agents_in_scope_only(
    client: TestClient, login: Login
) -> None:
    a1, b1 = login("a1"), login("b1")
    lead = login("lead_red")["Authorization"].removeprefix("Bearer ")
    with client.websocket_connect("/v1/supervision/events",
                                  headers={"Authorization": f"Bearer {lead}"}) as ws:
        hello = ws.receive_json()
        assert hello == {"kind": "hello", "supervisor_id": "lead_red", "agents": ["a1", "a2"]}
        client.post("/v1/agents/me/ready", headers=b1)
        client.post("/v1/agents/me/help", headers=a1, json={"message": "angry caller"})
        first = ws.receive_json()  # b1's event, sent first, must not have leaked
        assert first["event"]["type"] == "agent.help_requested"
        assert first["event"]["payload"] == {"agent_id": "a1", "message": "angry caller"}


@pytest.mark.timeout(30)
def test_sv01_team_lead_monitors_a_call_and_the_pbx_bridges_it_listen_only(
    client: TestClient, service: EngineService, login: Login, telephony: SimulatedTelephony
) -> None:
    a1 = login("a1")
    lead = login("lead_red")
    client.post("/v1/agents/me/ready", headers=a1)
    call_id = _offer(client, service)
    client.post("/v1/agents/me/answer", headers=a1)
    joined = client.post("/v1/supervision/agents/a1/join", headers=lead, json={"mode": "monitor"})
    assert joined.status_code == 200, joined.text
    assert telephony.for_call(call_id)[-1] == Instruction(
        "bridge", call_id, {"endpoint": EXTENSIONS["lead_red"], "mode": "listen"})
    bad_mode = client.post("/v1/supervision/agents/a1/join", headers=lead, json={"mode": "spy"})
    assert bad_mode.status_code == 422
    assert bad_mode.json()["message"].startswith("mode: Input should be 'monitor'")


# -- bad commands: a clear 4xx, and nothing changes -------------------------------------------

BAD_COMMANDS = [
    pytest.param("a2", "post", "/v1/agents/me/answer", None, 409, "conflict",
                 "nothing is ringing at agent a2", id="answer-with-nothing-ringing"),
    pytest.param("a2", "post", "/v1/agents/me/queues/nope/sign-in", None, 404, "unknown",
                 "unknown queue 'nope'", id="sign-in-unknown-queue"),
    pytest.param("a1", "post", "/v1/agents/me/transfer",
                 {"target_kind": "queue", "target": "nope"}, 404, "unknown",
                 "unknown queue 'nope'", id="transfer-to-unknown-queue"),
    pytest.param("a1", "post", "/v1/agents/me/transfer",
                 {"target_kind": "external", "target": "+8613912345678"}, 403, "forbidden",
                 "agent a1 may not transfer to external numbers (permission external_transfer)",
                 id="transfer-external-without-permission"),
    pytest.param("a1", "post", "/v1/agents/me/transfer",
                 {"target_kind": "agent", "target": "a2"}, 409, "conflict",
                 "agent a2 is not ready", id="transfer-to-agent-not-ready"),
    pytest.param("a1", "post", "/v1/agents/me/transfer",
                 {"target_kind": "planet", "target": "mars"}, 422, "invalid",
                 "target_kind: Input should be 'agent', 'queue' or 'external'",
                 id="transfer-bad-target-kind"),
    pytest.param("a2", "post", "/v1/agents/me/not-ready", {}, 422, "invalid",
                 "reason: Field required", id="not-ready-without-reason"),
    pytest.param("a2", "post", "/v1/agents/me/not-ready", {"reason": ""}, 422, "invalid",
                 "reason: String should have at least 1 character", id="not-ready-empty-reason"),
    pytest.param("a2", "post", "/v1/agents/me/not-ready", "{reason: break", 422, "invalid",
                 "body: not valid JSON; send a JSON object", id="not-ready-malformed-json"),
    pytest.param("a2", "post", "/v1/agents/me/dial", {"number": "call mum"}, 422, "invalid",
                 "'call mum' is not a dialable number", id="dial-not-a-number"),
    pytest.param("a2", "post", "/v1/agents/me/pick-up", {"call_id": "nope"}, 404, "unknown",
                 "no call 'nope' in progress", id="pick-up-unknown-call"),
    pytest.param("a2", "post", "/v1/agents/me/tickets/T-9/close", {}, 404, "unknown",
                 "no ticket 'T-9'", id="close-unknown-ticket"),
    pytest.param("a2", "post", "/v1/agents/me/tickets", {"subject": "x", "call_id": "nope"},
                 404, "unknown", "no call 'nope' is known; link the ticket to a current or "
                 "recent call, or leave call_id out", id="ticket-on-unknown-call"),
    pytest.param("a1", "post", "/v1/agents/me/hold", None, 200, None, None,
                 id="control-the-same-setup-accepts-a-good-command"),
    pytest.param("a2", "get", "/v1/queues/nope/waiting", None, 404, "unknown",
                 "unknown queue 'nope'; known: sales, support", id="waiting-unknown-queue"),
    pytest.param("g1", "get", "/v1/queues/sales/waiting", None, 403, "forbidden",
                 "agent g1 has no skill for sales", id="waiting-queue-without-skill"),
    pytest.param("a2", "get", "/v1/agents/me/missed?limit=0", None, 422, "invalid",
                 "query.limit: Input should be greater than or equal to 1",
                 id="missed-calls-limit-zero"),
    pytest.param("a2", "get", "/v1/voicemail/a1", None, 403, "forbidden",
                 "agent a2 may read only its own mailbox a2", id="voicemail-of-a-colleague"),
    pytest.param("a2", "get", "/v1/recordings?agent_id=a1", None, 403, "forbidden",
                 "agent a2 may search only its own recordings",
                 id="recordings-of-a-colleague"),
    pytest.param("a2", "get", "/v1/recordings?since=yesterday", None, 422, "invalid",
                 "query.since: Input should be a valid datetime or date, input is too short",
                 id="recordings-bad-since"),
    pytest.param("a2", "post", "/v1/agents/me/nonsense", None, 404, "unknown",
                 "no endpoint POST /v1/agents/me/nonsense", id="unknown-endpoint"),
]


@pytest.mark.parametrize(("user", "method", "path", "body", "status", "error", "message"),
                         BAD_COMMANDS)
def test_bad_commands_get_a_clear_4xx_and_change_nothing(
    client: TestClient, service: EngineService, login: Login, event_log: EventLog,
    telephony: SimulatedTelephony, user: str, method: str, path: str, body: Any, status: int,
    error: str | None, message: str | None,
) -> None:
    headers = {"a1": login("a1"), "a2": login("a2"), "g1": login("g1")}
    client.post("/v1/agents/me/ready", headers=headers["a1"])
    _offer(client, service)
    assert client.post("/v1/agents/me/answer", headers=headers["a1"]).status_code == 200

    def snapshot() -> tuple[object, ...]:
        engine = service.engine
        return (dict(engine.agents), dict(engine.calls), dict(engine.tickets),
                engine.next_timer_ms(), list(telephony.instructions),
                [e.id for e in _logged(event_log)])

    before = snapshot()
    kwargs: dict[str, Any] = {"headers": headers[user]}
    if isinstance(body, str):
        kwargs["content"] = body
        kwargs["headers"] = {**headers[user], "Content-Type": "application/json"}
    elif body is not None:
        kwargs["json"] = body
    response = client.request(method.upper(), path, **kwargs)
    assert response.status_code == status, response.text
    if error is None:
        return  # the control case: the same setup does accept a good command
    assert response.json() == {"error": error, "message": message}
    assert snapshot() == before


# -- CC-09 a full call through the API ------------------------------------------------------------


@pytest.mark.timeout(60)
def test_cc09_full_call_with_screen_pop_event_log_and_telephony(
    client: TestClient, service: EngineService, clock: VirtualClock, login: Login,
    event_log: EventLog, telephony: SimulatedTelephony,
) -> None:
    a1 = login("a1")
    token = a1["Authorization"].removeprefix("Bearer ")
    with client.websocket_connect(f"/v1/agents/me/events?token={token}") as ws:
        hello = ws.receive_json()
        assert hello["kind"] == "hello"
        assert hello["agent"]["state"] == "not_ready"
        client.post("/v1/agents/me/ready", headers=a1)

        # A first call from the number: no history yet.
        first = _offer(client, service)
        pop = _until(ws, "screen_pop")
        assert pop["call_id"] == first
        assert pop["recent_calls"] == []
        assert pop["tickets"] == []
        assert pop["customer_id"] is None
        assert client.post("/v1/agents/me/answer", headers=a1).json()["call_id"] == first
        ticket = client.post("/v1/agents/me/tickets", headers=a1, json={
            "subject": "Refund for order 881", "category": "complaint", "customer_id": "C-42"})
        assert ticket.status_code == 201, ticket.text
        assert ticket.json()["call_id"] == first  # linked to the call in hand (TK-01)
        _tick(client, service, clock, 30)
        assert client.post("/v1/agents/me/hang-up", headers=a1).json()["state"] == (
            "after_call_work")
        client.post("/v1/agents/me/not-ready", headers=a1, json={"reason": "break"})

        # The caller rings again while a1 is on a break, and waits 7 s (ACD-05).
        second = _offer(client, service)
        _tick(client, service, clock, 7)
        client.post("/v1/agents/me/ready", headers=a1)
        ringing = _until(ws, "event", type="call.ringing")
        assert ringing["event"]["payload"]["call_id"] == second
        pop = ws.receive_json()
        assert pop["kind"] == "screen_pop"
        assert {k: pop[k] for k in ("call_id", "agent_id", "caller", "dialed", "direction",
                                    "customer_id", "queue", "waited_s", "attempt")} == {
            "call_id": second, "agent_id": "a1", "caller": CALLER, "dialed": "4000",
            "direction": "inbound", "customer_id": "C-42", "queue": "sales", "waited_s": 7.0,
            "attempt": 1}
        assert pop["region"] == {"country": "中国", "province": "广东省", "city": "深圳市",
                                 "carrier": "中国移动"}
        assert pop["recent_calls"] == [{
            "call_id": first, "offered_at": "2026-03-02T09:00:00Z", "direction": "inbound",
            "queue": "sales", "agent_id": "a1", "disposition": "answered", "talk_s": 30.0,
            "recording_uri": f"recording://hq/{first}"}]
        assert [(t["subject"], t["call_id"], t["customer_id"], t["status"])
                for t in pop["tickets"]] == [("Refund for order 881", first, "C-42", "open")]

        assert client.post("/v1/agents/me/answer", headers=a1).json()["state"] == "talking"
        _tick(client, service, clock, 12)
        client.post("/v1/agents/me/hang-up", headers=a1)
        ended = _until(ws, "event", type="call.ended")
        assert ended["event"]["payload"]["call_id"] == second

    calls = [e for e in _logged(event_log) if getattr(e.payload, "call_id", None) == second
             and e.type.startswith("call.")]
    assert [e.type for e in calls] == ["call.offered", "call.queued", "call.ringing",
                                       "call.answered", "call.recording_stored", "call.ended"]
    assert all(e.recorded_at is not None for e in calls)
    assert telephony.for_call(second) == [
        Instruction("answer", second),
        Instruction("play_prompt", second, {"prompt": "music_on_hold",
                                            "variables": {"queue": "sales"}}),
        Instruction("ring", second, {"extension": "1001"}),
        Instruction("bridge", second, {"endpoint": "1001", "mode": "talk"}),
        Instruction("record", second, {"uri": f"recording://hq/{second}"}),
        Instruction("hang_up", second),
    ]


@pytest.mark.timeout(30)
def test_cc09_event_stream_refuses_a_bad_token(client: TestClient) -> None:
    with client.websocket_connect("/v1/agents/me/events?token=forged") as ws:
        refusal = ws.receive_json()
        assert refusal["kind"] == "error"
        assert refusal["error"] == "unauthorized"
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
    assert closed.value.code == CLOSE_SESSION_ENDED


@pytest.mark.timeout(30)
def test_cc09_an_agent_stream_carries_only_its_own_events(
    client: TestClient, service: EngineService, login: Login
) -> None:
    a1, a2 = login("a1"), login("a2")
    token = a2["Authorization"].removeprefix("Bearer ")
    with client.websocket_connect(f"/v1/agents/me/events?token={token}") as ws:
        ws.receive_json()
        client.post("/v1/agents/me/ready", headers=a1)
        _offer(client, service)  # rings at a1, the only ready agent
        client.post("/v1/agents/me/not-ready", headers=a2, json={"reason": "training"})
        message = ws.receive_json()
        assert message["event"]["type"] == "agent.state_changed"
        assert message["event"]["payload"]["agent_id"] == "a2"


@pytest.mark.timeout(30)
def test_ag02_background_task_fires_engine_timers(event_log: EventLog, clock: VirtualClock
                                                  ) -> None:
    service = EngineService(CENTER, clock=clock, event_log=event_log, seed=0, max_tick_s=0.02)
    with TestClient(create_app(service)) as client:
        token = client.post("/v1/sessions", json={
            "agent_id": "a1", "extension": "1001", "password": PASSWORD}).json()["token"]
        a1 = {"Authorization": f"Bearer {token}"}
        client.post("/v1/agents/me/ready", headers=a1)
        _offer(client, service)
        assert _state(client, a1)["state"] == "ringing"
        clock.advance_to(clock.now_ms() + 10_000)  # the ring timeout, with nobody ticking
        deadline = time.monotonic() + 10
        while (me := _state(client, a1))["state"] == "ringing":
            assert time.monotonic() < deadline, "the timer task did not fire the ring timeout"
            time.sleep(0.02)
        assert (me["state"], me["reason"]) == ("not_ready", "rona")
    assert "call.rona" in [e.type for e in _logged(event_log)]


# -- ACD-07 and TK-01 ----------------------------------------------------------------------------


def test_acd07_waiting_calls_and_pick_up(
    client: TestClient, service: EngineService, clock: VirtualClock, login: Login
) -> None:
    a1, a2, lead = login("a1"), login("a2"), login("lead_red")
    first = _offer(client, service)
    _tick(client, service, clock, 4)
    second = _offer(client, service, caller="+4930123456")
    waiting = client.get("/v1/queues/sales/waiting", headers=a2).json()
    assert waiting["queue"] == "sales"
    rows = [(c["call_id"], c["position"], c["waited_s"], c["region"]) for c in waiting["calls"]]
    assert rows == [
        (first, 1, 4.0, {"country": "中国", "province": "广东省", "city": "深圳市",
                         "carrier": "中国移动"}),
        (second, 2, 0.0, None)]
    assert client.get("/v1/queues/sales/waiting", headers=lead).status_code == 200
    client.post("/v1/agents/me/ready", headers=a1)
    picked = client.post("/v1/agents/me/pick-up", headers=a2, json={"call_id": first})
    assert picked.status_code == 200, picked.text
    assert (picked.json()["state"], picked.json()["call_id"]) == ("talking", first)


def test_tk01_ticket_lifecycle(client: TestClient, service: EngineService, login: Login,
                               event_log: EventLog) -> None:
    a1 = login("a1")
    client.post("/v1/agents/me/ready", headers=a1)
    call_id = _offer(client, service)
    client.post("/v1/agents/me/answer", headers=a1)
    created = client.post("/v1/agents/me/tickets", headers=a1, json={"subject": "Broken router"})
    assert created.status_code == 201
    ticket_id = created.json()["ticket_id"]
    assert created.json() == {"ticket_id": ticket_id, "status": "open", "assignee": None,
                              "created_by": "a1", "call_id": call_id}
    base = f"/v1/agents/me/tickets/{ticket_id}"
    assert client.post(f"{base}/assign", headers=a1, json={"assignee": "a2"}).json()[
        "assignee"] == "a2"
    assert client.post(f"{base}/status", headers=a1, json={"status": "in_progress"}).json()[
        "status"] == "in_progress"
    again = client.post(f"{base}/status", headers=a1, json={"status": "in_progress"})
    assert again.status_code == 409
    assert client.post(f"{base}/comments", headers=a1, json={"body": "sent a technician"}
                       ).status_code == 200
    assert client.post(f"{base}/close", headers=a1, json={"resolution": "fixed"}).json()[
        "status"] == "closed"
    closed = client.post(f"{base}/comments", headers=a1, json={"body": "late"})
    assert closed.json() == {"error": "conflict", "message": f"ticket {ticket_id} is closed"}
    types = [e.type for e in _logged(event_log) if e.type.startswith("ticket.")]
    assert types == ["ticket.created", "ticket.assigned", "ticket.status_changed",
                     "ticket.commented", "ticket.closed"]


# -- AG-05 agent views, CC-06 voicemail, CC-07 recordings ------------------------------------

SHENZHEN_VIEW = {"country": "中国", "province": "广东省", "city": "深圳市", "carrier": "中国移动"}


def test_ag05_own_calls_and_missed_calls(
    client: TestClient, service: EngineService, clock: VirtualClock, login: Login
) -> None:
    a1, a2 = login("a1"), login("a2")
    client.post("/v1/agents/me/ready", headers=a1)
    first = _offer(client, service)  # rings at a1, the only ready agent ...
    _tick(client, service, clock, 10)  # ... who lets it ring out (RONA)
    client.post("/v1/agents/me/ready", headers=a2)  # the call rings at a2 now
    client.post("/v1/agents/me/answer", headers=a2)
    _tick(client, service, clock, 30)
    client.post("/v1/agents/me/hang-up", headers=a2)
    client.post("/v1/agents/me/ready", headers=a1)
    second = _offer(client, service, caller="+4930123456")  # rings at a1; a2 is in ACW
    _tick(client, service, clock, 3)
    _network(client, lambda: service.caller_hangs_up(second))  # hung up while ringing
    out = client.post("/v1/agents/me/dial", headers=a1, json={"number": "+4930999"}).json()[
        "call_id"]
    _network(client, lambda: service.remote_answered(out))
    _tick(client, service, clock, 20)
    client.post("/v1/agents/me/hang-up", headers=a1)

    assert client.get("/v1/agents/me/calls", headers=a1).json() == [{
        "call_id": out, "offered_at": "2026-03-02T09:00:43Z",
        "answered_at": "2026-03-02T09:00:43Z", "direction": "outbound", "caller": "1001",
        "dialed": "+4930999", "region": None, "queue": None, "talk_s": 20.0,
        "disposition": "answered", "recording_uri": f"recording://hq/{out}"}]
    assert client.get("/v1/agents/me/calls", headers=a2).json() == [{
        "call_id": first, "offered_at": "2026-03-02T09:00:00Z",
        "answered_at": "2026-03-02T09:00:10Z", "direction": "inbound", "caller": CALLER,
        "dialed": "4000", "region": SHENZHEN_VIEW, "queue": "sales", "talk_s": 30.0,
        "disposition": "answered", "recording_uri": f"recording://hq/{first}"}]
    missed = client.get("/v1/agents/me/missed", headers=a1)
    assert missed.status_code == 200, missed.text
    assert missed.json() == [
        {"call_id": second, "rang_at": "2026-03-02T09:00:40Z",
         "missed_at": "2026-03-02T09:00:43Z", "reason": "caller_hung_up",
         "caller": "+4930123456", "region": None, "queue": "sales", "ring_s": 3.0},
        {"call_id": first, "rang_at": "2026-03-02T09:00:00Z",
         "missed_at": "2026-03-02T09:00:10Z", "reason": "rona", "caller": CALLER,
         "region": SHENZHEN_VIEW, "queue": "sales", "ring_s": 10.0},
    ]
    assert client.get("/v1/agents/me/missed", headers=a2).json() == []
    assert [c["call_id"] for c in client.get("/v1/agents/me/missed?limit=1",
                                             headers=a1).json()] == [second]
    too_many = client.get("/v1/agents/me/calls?limit=101", headers=a1)
    assert too_many.status_code == 422
    assert too_many.json() == {"error": "invalid",
                               "message": "query.limit: Input should be less than or equal "
                                          "to 100"}


def test_ag05_a_transferred_call_counts_each_agents_own_talk(
    client: TestClient, service: EngineService, clock: VirtualClock, login: Login
) -> None:
    a1, a2 = login("a1"), login("a2")
    client.post("/v1/agents/me/ready", headers=a1)
    call_id = _offer(client, service)
    client.post("/v1/agents/me/answer", headers=a1)
    _tick(client, service, clock, 5)
    client.post("/v1/agents/me/ready", headers=a2)
    transferred = client.post("/v1/agents/me/transfer", headers=a1,
                              json={"target_kind": "agent", "target": "a2"})
    assert transferred.status_code == 200, transferred.text
    client.post("/v1/agents/me/answer", headers=a2)
    _tick(client, service, clock, 7)
    client.post("/v1/agents/me/hang-up", headers=a2)
    mine = {user: [(c["call_id"], c["talk_s"], c["recording_uri"])
                   for c in client.get("/v1/agents/me/calls", headers=headers).json()]
            for user, headers in (("a1", a1), ("a2", a2))}
    assert mine == {"a1": [(call_id, 5.0, None)],
                    "a2": [(call_id, 7.0, f"recording://hq/{call_id}")]}


@pytest.mark.timeout(30)
def test_cc06_voicemail_boxes_visibility_and_message_waiting(
    client: TestClient, service: EngineService, clock: VirtualClock, login: Login
) -> None:
    users = {u: login(u) for u in ("a1", "a2", "lead_red", "m1", "dir")}
    token = users["a1"]["Authorization"].removeprefix("Bearer ")
    with client.websocket_connect(f"/v1/agents/me/events?token={token}") as ws:
        assert ws.receive_json()["kind"] == "hello"
        first = _offer(client, service, dialed="4001")  # straight to a1's mailbox
        _network(client, lambda: service.voicemail_recorded(first, duration_s=12.5,
                                                            mailbox="a1"))
        assert _until(ws, "message_waiting") == {"kind": "message_waiting", "mailbox": "a1",
                                                 "count": 1}
        _tick(client, service, clock, 60)
        second = _offer(client, service, caller="+4930123456", dialed="4001")
        _network(client, lambda: service.voicemail_recorded(second, duration_s=4.0,
                                                            mailbox="a1"))
        assert _until(ws, "message_waiting") == {"kind": "message_waiting", "mailbox": "a1",
                                                 "count": 2}
    queued = _offer(client, service, dialed="4002")  # the sales queue's mailbox
    _network(client, lambda: service.voicemail_recorded(queued, duration_s=9.0,
                                                        mailbox="sales"))

    own = client.get("/v1/voicemail/a1", headers=users["a1"])
    assert own.status_code == 200, own.text
    assert own.json() == {"mailbox": "a1", "count": 2, "messages": [
        {"call_id": second, "caller": "+4930123456", "region": None,
         "left_at": "2026-03-02T09:01:00Z", "duration_s": 4.0,
         "recording_uri": f"voicemail://hq/{second}"},
        {"call_id": first, "caller": CALLER, "region": SHENZHEN_VIEW,
         "left_at": "2026-03-02T09:00:00Z", "duration_s": 12.5,
         "recording_uri": f"voicemail://hq/{first}"},
    ]}
    assert client.get("/v1/voicemail/a2", headers=users["a2"]).json() == {
        "mailbox": "a2", "count": 0, "messages": []}

    def read(user: str, mailbox: str) -> tuple[int, Any]:
        response = client.get(f"/v1/voicemail/{mailbox}", headers=users[user])
        body = response.json()
        return response.status_code, body["count"] if response.status_code == 200 else body

    only_own = {"error": "forbidden", "message": "agent a2 may read only its own mailbox a2"}
    assert read("a2", "a1") == (403, only_own)
    assert read("a2", "sales") == (403, only_own)
    assert read("a2", "nobox") == (403, only_own)  # an agent learns nothing of other boxes
    assert read("lead_red", "a1") == (200, 2)
    assert read("lead_red", "sales") == (200, 1)
    assert read("lead_red", "b1") == (403, {
        "error": "forbidden",
        "message": "lead_red may not read mailbox b1: agent b1 is outside the scope of "
                   "team_lead lead_red"})
    assert read("lead_red", "m1") == (403, {
        "error": "forbidden",
        "message": "lead_red may not read mailbox m1: lead_red (team_lead) may not act on m1 "
                   "(manager)"})
    assert read("m1", "a1") == (200, 2)
    assert read("m1", "g1")[0] == 403
    assert read("dir", "g1") == (200, 0)
    assert read("dir", "nobox") == (404, {
        "error": "unknown",
        "message": "unknown mailbox 'nobox'; a mailbox is named after an agent or a queue"})


def test_cc07_recording_search_scope_and_playback_rights(
    client: TestClient, service: EngineService, clock: VirtualClock, login: Login
) -> None:
    users = {u: login(u) for u in ("a1", "a2", "b1", "g1", "lead_red", "m1", "dir")}
    # A: a1 answers, talks 5 s and transfers to a2, who talks 7 s; a2's leg is recorded.
    client.post("/v1/agents/me/ready", headers=users["a1"])
    inbound = _offer(client, service)
    client.post("/v1/agents/me/answer", headers=users["a1"])
    _tick(client, service, clock, 5)
    client.post("/v1/agents/me/ready", headers=users["a2"])
    client.post("/v1/agents/me/transfer", headers=users["a1"],
                json={"target_kind": "agent", "target": "a2"})
    client.post("/v1/agents/me/answer", headers=users["a2"])
    _tick(client, service, clock, 7)
    client.post("/v1/agents/me/hang-up", headers=users["a2"])  # stored 09:00:12

    def outbound(user: str, number: str, talk_s: float) -> str:
        call_id: str = client.post("/v1/agents/me/dial", headers=users[user],
                                   json={"number": number}).json()["call_id"]
        _network(client, lambda: service.remote_answered(call_id))
        _tick(client, service, clock, talk_s)
        client.post("/v1/agents/me/hang-up", headers=users[user])
        return call_id

    green = outbound("g1", "+4930999", 3)  # stored 09:00:15
    blue = outbound("b1", CALLER, 4)  # stored 09:00:19

    def search(user: str, **params: str) -> list[tuple[str, bool, str | None]]:
        response = client.get("/v1/recordings", headers=users[user], params=params)
        assert response.status_code == 200, response.text
        return [(r["call_id"], r["playable"], r["uri"]) for r in response.json()]

    def uri(call_id: str) -> str:
        return f"recording://hq/{call_id}"

    full = client.get("/v1/recordings", headers=users["a2"]).json()
    assert full == [{
        "call_id": inbound, "stored_at": "2026-03-02T09:00:12Z", "agent_id": "a2",
        "agents": ["a1", "a2"], "direction": "inbound", "caller": CALLER, "dialed": "4000",
        "region": SHENZHEN_VIEW, "queue": "sales", "duration_s": 7.0, "size_bytes": None,
        "reason": "forced", "playable": True, "uri": uri(inbound)}]
    # a1 took part in the call but its own leg was not recorded: listed, not playable.
    assert search("a1") == [(inbound, False, None)]
    assert search("g1") == [(green, True, uri(green))]
    assert search("lead_red") == [(inbound, True, uri(inbound))]
    assert search("m1") == [(blue, True, uri(blue)), (inbound, True, uri(inbound))]
    assert search("dir") == [(blue, True, uri(blue)), (green, True, uri(green)),
                             (inbound, True, uri(inbound))]
    assert search("dir", number=CALLER) == [(blue, True, uri(blue)),
                                            (inbound, True, uri(inbound))]
    assert search("dir", agent_id="a1") == [(inbound, True, uri(inbound))]
    assert search("m1", agent_id="b1", number="+4930999") == []
    assert search("dir", since="2026-03-02T09:00:13Z", until="2026-03-02T09:00:19Z") == [
        (green, True, uri(green))]
    assert search("dir", since="2026-03-02T10:00:16+01:00") == [(blue, True, uri(blue))]
    assert search("dir", limit="1") == [(blue, True, uri(blue))]

    def refused(user: str, **params: str) -> tuple[int, dict[str, str]]:
        response = client.get("/v1/recordings", headers=users[user], params=params)
        return response.status_code, response.json()

    assert refused("a1", agent_id="a2") == (403, {
        "error": "forbidden", "message": "agent a1 may search only its own recordings"})
    assert refused("lead_red", agent_id="b1") == (403, {
        "error": "forbidden", "message": "agent b1 is outside the scope of team_lead lead_red"})
    assert refused("dir", agent_id="ghost") == (404, {
        "error": "unknown", "message": "unknown agent 'ghost'"})
    assert refused("dir", since="2026-03-02T09:00:13Z", until="2026-03-02T09:00:13Z") == (
        422, {"error": "invalid", "message": "since must be before until"})
    assert refused("dir", since="2026-03-02T09:00:13") == (422, {
        "error": "invalid", "message": "query.since: Input should have timezone info"})


# -- the telephony seam --------------------------------------------------------------------------


def test_telephony_bridge_ring_all_hold_and_external_transfer() -> None:
    center = load_center({
        "site": "hq",
        "numbers": [{"number": "5000", "entry": {"kind": "queue", "target": "all"}}],
        "queues": [{"name": "all", "strategy": "ring_all", "after_call_work_s": 0}],
        "agents": [{"id": "x", "skills": {"all": 1}, "external_transfer": True},
                   {"id": "y", "skills": {"all": 1}}],
    })
    engine = Engine(center, clock=VirtualClock(START), seed=3)
    telephony = SimulatedTelephony()
    bridge = TelephonyBridge(telephony, center)

    def run(action: Callable[[], object]) -> None:
        action()
        for event in engine.drain():
            bridge.handle(event)

    run(lambda: engine.log_in("x", extension="201"))
    run(lambda: engine.log_in("y", extension="202"))
    run(lambda: engine.set_ready("x"))
    run(lambda: engine.set_ready("y"))
    call_id = ""

    def offer() -> None:
        nonlocal call_id
        call_id = engine.offer_call(caller="+4930555", dialed="5000")

    run(offer)
    run(lambda: engine.answer("x"))
    run(lambda: engine.hold("x"))
    run(lambda: engine.resume("x"))
    run(lambda: engine.transfer("x", target_kind="external", target="+4930999"))
    assert [(i.action, i.arguments) for i in telephony.for_call(call_id)] == [
        ("answer", {}),
        ("play_prompt", {"prompt": "music_on_hold", "variables": {"queue": "all"}}),
        ("ring", {"extension": "201"}),
        ("ring", {"extension": "202"}),
        ("hang_up", {"endpoint": "202"}),  # ring-all: the other phone stops ringing
        ("bridge", {"endpoint": "201", "mode": "talk"}),
        ("record", {"uri": f"recording://hq/{call_id}"}),
        ("play_prompt", {"prompt": "music_on_hold", "variables": {}}),
        ("bridge", {"endpoint": "201", "mode": "talk"}),
        ("hang_up", {"endpoint": "201"}),  # the agent leaves ...
        ("bridge", {"endpoint": "+4930999", "mode": "talk"}),  # ... the caller goes out
    ]  # and no final hang-up: the caller talks to the external party now


def test_telephony_bridge_whisper_and_survey() -> None:
    center = load_center({
        "site": "hq",
        "numbers": [{"number": "5000", "entry": {"kind": "queue", "target": "q"}}],
        "queues": [{"name": "q", "survey": "csat", "after_call_work_s": 0, "record": False}],
        "teams": [{"name": "red"}],
        "agents": [{"id": "x", "team": "red", "skills": {"q": 1}},
                   {"id": "lead", "team": "red", "role": "team_lead"}],
    })
    engine = Engine(center, clock=VirtualClock(START), seed=4)
    telephony = SimulatedTelephony()
    bridge = TelephonyBridge(telephony, center)
    bridge.bind_extension("lead", "299")
    engine.log_in("x", extension="201")
    engine.set_ready("x")
    call_id = engine.offer_call(caller="+4930555", dialed="5000")
    engine.answer("x")
    engine.supervise("lead", "x", "whisper")
    engine.hang_up("x")
    engine.press_digits(call_id, "5")
    for event in engine.drain():
        bridge.handle(event)
    assert [(i.action, i.arguments) for i in telephony.for_call(call_id)] == [
        ("answer", {}),
        ("play_prompt", {"prompt": "music_on_hold", "variables": {"queue": "q"}}),
        ("ring", {"extension": "201"}),
        ("bridge", {"endpoint": "201", "mode": "talk"}),  # no record: the queue does not record
        ("bridge", {"endpoint": "299", "mode": "whisper"}),
        ("hang_up", {"endpoint": "201"}),  # the agent leaves, the caller stays for the survey
        ("play_prompt", {"prompt": "survey:csat", "variables": {}}),
        ("collect_digits", {"max_digits": 1, "timeout_s": 15.0}),
        ("hang_up", {}),
    ]


# -- the OpenAPI document and a real server --------------------------------------------------------


@pytest.mark.parametrize(("number", "missing"), [
    ("{number: '95555', entry: {kind: ivr, target: main}}", "pass flows=load_flows"),
    ("{number: '95555', entry: {kind: voicemail, target: x}, schedule: weekdays}",
     "numbers 95555 have a schedule; pass --calendar FILE"),
])
def test_serve_command_refuses_a_center_it_cannot_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, number: str, missing: str
) -> None:
    monkeypatch.setenv("QUEUECAST_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("QUEUECAST_LOG_LEVEL", "ERROR")
    center = tmp_path / "center.yaml"
    center.write_text(f"numbers:\n  - {number}\n")
    result = CliRunner().invoke(cli_app, ["callcore", "serve", "--center", str(center)])
    assert result.exit_code == 2
    assert "cannot start the call-control engine" in result.output
    assert missing in " ".join(result.output.split())


def test_openapi_document_checked_in_is_current() -> None:
    checked_in = json.loads(OPENAPI.read_text(encoding="utf-8"))
    assert checked_in == openapi_document(), (
        "docs/cti-openapi.json is stale: run `queuecast callcore openapi` and commit it")


@pytest.mark.timeout(60)
def test_ag01_real_uvicorn_server_login_and_ready(event_log: EventLog) -> None:
    service = EngineService(CENTER, event_log=event_log)  # the system clock
    server = build_server(service, host="127.0.0.1", port=0)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            assert thread.is_alive(), "uvicorn exited during start-up"
            time.sleep(0.02)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
            session = http.post("/v1/sessions", json={
                "agent_id": "a1", "extension": "1001", "password": PASSWORD})
            assert session.status_code == 201, session.text
            headers = {"Authorization": f"Bearer {session.json()['token']}"}
            ready = http.post("/v1/agents/me/ready", headers=headers)
            assert ready.status_code == 200, ready.text
            assert ready.json()["state"] == "ready"
            assert abs(to_ms(datetime.fromisoformat(ready.json()["since"]))
                       - time.time() * 1000) < 60_000
    finally:
        server.should_exit = True
        thread.join(timeout=20)
        sock.close()
    assert not thread.is_alive()
    assert [e.type for e in _logged(event_log)][-1] == "agent.state_changed"
