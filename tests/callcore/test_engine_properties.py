"""Random command sequences keep the engine's invariants (hypothesis state machine)."""

from __future__ import annotations

from collections import Counter

from harness import Harness, center
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from callcore.engine import CommandRejectedError

AGENTS = ["a1", "a2", "a3"]
QUEUES = ["sales", "support"]


class EngineMachine(RuleBasedStateMachine):
    """Drive one engine with arbitrary, often invalid, commands."""

    def __init__(self) -> None:
        super().__init__()
        config = center(queue_options={
            "sales": {"max_wait_s": 90, "overflow": {"kind": "queue", "target": "support"},
                      "callback_on_abandon": True, "announce_every_s": 20},
            "support": {"survey": "csat"},
        })
        self.h = Harness(config, seed=9)
        self.h.ready(*AGENTS)  # start staffed; log-out and log-in are rules too
        self.offered: list[str] = []
        self.rejected = 0

    def _try(self, command: object, *args: object, **kwargs: object) -> None:
        before = (dict(self.h.engine.agents), dict(self.h.engine.calls))
        try:
            command(*args, **kwargs)  # type: ignore[operator]
        except CommandRejectedError:
            self.rejected += 1
            assert self.h.engine.drain() == [], "a rejected command emitted events"
            assert (self.h.engine.agents, self.h.engine.calls) == before
        self.h.take()

    def _calls(self) -> list[str]:
        return sorted(self.h.engine.calls)

    @rule(number=st.sampled_from(["4001", "4002"]), priority=st.integers(0, 3))
    def offer(self, number: str, priority: int) -> None:
        call = self.h.engine.offer_call(caller=f"+86138{len(self.offered):08d}", dialed=number,
                                        priority=priority)
        self.offered.append(call)
        self.h.take()

    @rule(agent=st.sampled_from(AGENTS))
    def log_in(self, agent: str) -> None:
        self._try(self.h.engine.log_in, agent, extension=f"8{agent}")

    @rule(agent=st.sampled_from(AGENTS))
    def log_out(self, agent: str) -> None:
        self._try(self.h.engine.log_out, agent)

    @rule(agent=st.sampled_from(AGENTS))
    def ready(self, agent: str) -> None:
        self._try(self.h.engine.set_ready, agent)

    @rule(agent=st.sampled_from(AGENTS), reason=st.sampled_from(["break", "lunch"]))
    def not_ready(self, agent: str, reason: str) -> None:
        self._try(self.h.engine.set_not_ready, agent, reason=reason)

    @rule(agent=st.sampled_from(AGENTS),
          action=st.sampled_from(["answer", "hang_up", "hold", "resume", "mute", "unmute"]))
    def call_control(self, agent: str, action: str) -> None:
        self._try(getattr(self.h.engine, action), agent)

    @rule(agent=st.sampled_from(AGENTS), queue=st.sampled_from(QUEUES))
    def transfer(self, agent: str, queue: str) -> None:
        self._try(self.h.engine.transfer, agent, target_kind="queue", target=queue)

    @rule(agent=st.sampled_from(AGENTS), queue=st.sampled_from(QUEUES),
          sign_in=st.booleans())
    def skill_group(self, agent: str, queue: str, sign_in: bool) -> None:
        self._try(self.h.engine.sign_in if sign_in else self.h.engine.sign_out, agent, queue)

    @rule(data=st.data())
    def caller_hangs_up(self, data: st.DataObject) -> None:
        calls = self._calls()
        if calls:
            self._try(self.h.engine.caller_hangs_up, data.draw(st.sampled_from(calls)))

    @rule(data=st.data(), digit=st.sampled_from(["1", "5", "9"]))
    def survey(self, data: st.DataObject, digit: str) -> None:
        calls = self._calls()
        if calls:
            self._try(self.h.engine.press_digits, data.draw(st.sampled_from(calls)), digit)

    @rule(seconds=st.sampled_from([1, 5, 12, 30, 95]))
    def wait(self, seconds: int) -> None:
        self.h.wait(seconds)

    @invariant()
    def agents_and_calls_agree(self) -> None:
        engine = self.h.engine
        last_state = {}
        for event in self.h.events:
            if event.type == "agent.state_changed":
                last_state[event.payload.agent_id] = event.payload.state  # type: ignore[attr-defined]
        for agent_id, agent in engine.agents.items():
            assert last_state[agent_id] == agent.state  # exactly one state, the last one set
            if agent.state in ("ringing", "talking", "hold"):
                call = engine.calls[agent.call_id or ""]
                assert agent_id == call.agent_id or agent_id in call.ringing
        queued = [c for q in QUEUES for c in engine.waiting(q)]
        assert len(queued) == len(set(queued)), "a call is in two queues"
        for call_id in queued:
            assert engine.calls[call_id].stage == "queued"
        for call in engine.calls.values():
            if call.stage == "queued":
                assert call_id_in(engine, call.call_id)

    def teardown(self) -> None:
        engine = self.h.engine
        for call_id in list(engine.calls):
            call = engine.calls.get(call_id)
            if call is not None:
                engine.caller_hangs_up(call_id)
        self.h.wait(600)
        ended = Counter(e.payload.call_id for e in self.h.events  # type: ignore[attr-defined]
                        if e.type == "call.ended")
        assert set(ended) == set(self.offered)
        assert set(ended.values()) <= {1}, "a call ended twice"
        # A call may be answered, transferred and then abandoned in the next queue: its
        # disposition is the last of those outcomes.
        last_outcome: dict[str, str] = {}
        dispositions: dict[str, str] = {}
        for event in self.h.events:
            if event.type in ("call.answered", "call.abandoned"):
                last_outcome[event.payload.call_id] = event.type.split(".")[1]  # type: ignore[attr-defined]
            elif event.type == "call.ended":
                dispositions[event.payload.call_id] = event.payload.disposition  # type: ignore[attr-defined]
        for call_id, disposition in dispositions.items():
            if disposition in ("answered", "abandoned"):
                assert last_outcome[call_id] == disposition, call_id
        assert len(dispositions) == len(self.offered)
        assert engine.calls == {}


def call_id_in(engine: object, call_id: str) -> bool:
    return any(call_id in engine.waiting(q) for q in QUEUES)  # type: ignore[attr-defined]


def test_random_command_sequences_keep_the_invariants() -> None:
    run_state_machine_as_test(
        EngineMachine,
        settings=settings(max_examples=150, stateful_step_count=60, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow]),
    )
