"""IVR flows: a YAML definition validated on load, and a pure interpreter (IVR-01..IVR-04, CC-10).

A flow is a graph of nodes (menus, prompts, digit collection, PIN check, data lookups, time and
dialled-number branches, transfers, voicemail, survey, hang-up). :func:`load_flows` reads and
validates YAML files, collecting every problem into one :class:`FlowError`. :func:`start` and
:func:`step` drive one call through a flow: each returns a :class:`Step`, the new immutable
:class:`IvrSession` and an ordered tuple of directives for the engine. The interpreter has no
clock, no randomness and no I/O; the engine passes the time, the business calendar and the
results of hooks in.

Protocol with the engine: it runs the directives of a step in order, a :class:`PlayPrompt`
finishing before the next directive starts (digits pressed while a menu prompt plays may count
as barge-in). Every step ends with exactly one of :class:`AwaitDigits` (answer with
:class:`Digits` or :class:`InputTimeout`), :class:`CallHook` (answer with :class:`HookResult`),
or a terminal directive (:class:`Transfer`, :class:`LeaveVoicemail`, :class:`HangUp`), after
which the session is done. :class:`FlowEntered`, :class:`NodeVisited`, :class:`Left` and
:class:`SurveyAnswer` are facts that map 1:1 to the contract's ``IvrEntered``,
``IvrNodeVisited``, ``IvrLeft`` and ``SurveyAnswered``.
"""

from __future__ import annotations

import difflib
import functools
import hashlib
import re
from collections.abc import Callable, Collection, Hashable, Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal, Protocol

import msgspec
import yaml

__all__ = [
    "EXAMPLE_FLOWS_DIR",
    "NODE_KINDS",
    "AwaitDigits",
    "CalendarLookup",
    "CalendarState",
    "CallHook",
    "CollectNode",
    "Digits",
    "Directive",
    "DnisBranchNode",
    "Flow",
    "FlowEntered",
    "FlowError",
    "FlowProblem",
    "HangUp",
    "HangupNode",
    "HookResult",
    "InputTimeout",
    "IvrSession",
    "LeaveVoicemail",
    "Left",
    "LookupNode",
    "MenuNode",
    "Node",
    "NodeVisited",
    "PinCheckNode",
    "PlayPrompt",
    "Prompt",
    "PromptNode",
    "PromptSpec",
    "Step",
    "Stimulus",
    "SurveyAnswer",
    "SurveyNode",
    "TimeBranchNode",
    "Transfer",
    "TransferNode",
    "VoicemailNode",
    "caller_hung_up",
    "load_flows",
    "parse_flows",
    "start",
    "step",
]

EXAMPLE_FLOWS_DIR = Path(__file__).parent / "flows"
"""The example flows shipped with the package (``main.yaml``, ``clinic.yaml``)."""

BUILTIN_VARIABLES = frozenset({"caller", "dialed"})
"""Variables the interpreter sets on entry: the caller's number and the dialled number."""

# ---------------------------------------------------------------------------------------------
# Flow definition
# ---------------------------------------------------------------------------------------------

Timeout = Annotated[float, msgspec.Meta(gt=0, le=300)]
Retries = Annotated[int, msgspec.Meta(ge=0, le=9)]
DigitCount = Annotated[int, msgspec.Meta(ge=0, le=32)]
NonEmpty = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]


class Prompt(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A recorded file, a text-to-speech text, or both (the file plays; the text is its script)."""

    file: NonEmpty | None = None
    text: str | None = None


PromptSpec = str | Prompt
"""A prompt in YAML: a bare string is text-to-speech; a mapping names a ``file`` and/or ``text``."""


class _NodeBase(
    msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, tag_field="kind"
):
    description: str | None = None


class PromptNode(_NodeBase, frozen=True, kw_only=True, tag="prompt"):
    """Play a prompt, then go to ``next`` (IVR-03)."""

    prompt: PromptSpec
    next: str


class MenuNode(_NodeBase, frozen=True, kw_only=True, tag="menu"):
    """Play a prompt and branch on one key (IVR-01).

    ``*`` returns to the previous menu unless it is an option; ``0`` goes to the flow's
    ``zero_out`` node unless it is an option. An invalid key or a timeout re-prompts (after the
    ``invalid`` / ``no_input`` prompt) up to ``max_retries`` times, then goes to ``on_timeout``
    (last failure a timeout, if set) or ``on_fail``.
    """

    prompt: PromptSpec
    options: dict[str, str]
    on_fail: str
    on_timeout: str | None = None
    timeout_s: Timeout = 5.0
    max_retries: Retries = 2
    invalid: PromptSpec | None = None
    no_input: PromptSpec | None = None


class CollectNode(_NodeBase, frozen=True, kw_only=True, tag="collect"):
    """Collect ``min_digits``..``max_digits`` digits into ``variable``, then ``next`` (IVR-03).

    ``secret`` (e.g. a card number for a payment hook) keeps the digits out of
    :class:`NodeVisited`; the variable still holds them for templates and hooks.
    """

    prompt: PromptSpec
    variable: NonEmpty
    next: str
    on_fail: str
    max_digits: DigitCount = 20
    min_digits: DigitCount = 1
    terminator: Literal["#", "*"] | None = "#"
    timeout_s: Timeout = 10.0
    max_retries: Retries = 2
    invalid: PromptSpec | None = None
    no_input: PromptSpec | None = None
    secret: bool = False


class PinCheckNode(_NodeBase, frozen=True, kw_only=True, tag="pin_check"):
    """Collect a PIN and verify it through ``hook`` (IVR-03).

    The hook gets ``args`` plus the PIN in :attr:`CallHook.secret`; a result with values means
    valid (``store`` keeps some of them), no values means wrong. After ``max_retries`` + 1 wrong
    or missing PINs the call goes to ``on_fail``; a hook error goes to ``on_error`` (default
    ``on_fail``). The PIN never appears in directives other than the :class:`CallHook`.
    """

    prompt: PromptSpec
    hook: NonEmpty
    next: str
    on_fail: str
    on_error: str | None = None
    args: dict[str, str] = msgspec.field(default_factory=dict)
    store: tuple[str, ...] = ()
    min_digits: DigitCount = 4
    max_digits: DigitCount = 8
    terminator: Literal["#", "*"] | None = "#"
    timeout_s: Timeout = 10.0
    max_retries: Retries = 2
    invalid: PromptSpec | None = None
    no_input: PromptSpec | None = None


class LookupNode(_NodeBase, frozen=True, kw_only=True, tag="lookup"):
    """Call a data hook (e.g. a balance) and branch on its result (IVR-03).

    ``args`` values are templates over variables; ``store`` names result values to keep as
    variables. A result missing a stored name counts as an error. ``on_error`` defaults to
    ``on_missing``.
    """

    hook: NonEmpty
    on_found: str
    on_missing: str
    on_error: str | None = None
    args: dict[str, str] = msgspec.field(default_factory=dict)
    store: tuple[str, ...] = ()
    prompt: PromptSpec | None = None


class TimeBranchNode(_NodeBase, frozen=True, kw_only=True, tag="time_branch"):
    """Branch on the business-calendar state of ``schedule`` (IVR-02, CC-05).

    ``holiday`` and ``lunch`` default to ``closed``.
    """

    schedule: NonEmpty
    open: str
    closed: str
    holiday: str | None = None
    lunch: str | None = None


class DnisBranchNode(_NodeBase, frozen=True, kw_only=True, tag="dnis_branch"):
    """Branch on the dialled number, compared digits only (IVR-02)."""

    routes: dict[str, str]
    default: str


class TransferNode(_NodeBase, frozen=True, kw_only=True, tag="transfer"):
    """Leave the IVR to a queue, an agent or an external number (IVR-03)."""

    target_kind: Literal["queue", "agent", "external"]
    target: NonEmpty
    priority: int | None = None
    prompt: PromptSpec | None = None


class VoicemailNode(_NodeBase, frozen=True, kw_only=True, tag="voicemail"):
    """Leave the IVR to record a message in ``mailbox`` (IVR-03, CC-06)."""

    mailbox: NonEmpty
    prompt: PromptSpec | None = None


class SurveyNode(_NodeBase, frozen=True, kw_only=True, tag="survey"):
    """Ask for a keypad score 1..``scale_max``, thank, and hang up (CC-10)."""

    survey: NonEmpty
    prompt: PromptSpec
    scale_max: Annotated[int, msgspec.Meta(ge=2, le=9)] = 3
    timeout_s: Timeout = 8.0
    max_retries: Retries = 1
    invalid: PromptSpec | None = None
    no_input: PromptSpec | None = None
    thanks: PromptSpec | None = None


class HangupNode(_NodeBase, frozen=True, kw_only=True, tag="hangup"):
    """End the call, after an optional goodbye prompt (IVR-03)."""

    prompt: PromptSpec | None = None
    reason: NonEmpty = "completed"


Node = (
    PromptNode | MenuNode | CollectNode | PinCheckNode | LookupNode | TimeBranchNode
    | DnisBranchNode | TransferNode | VoicemailNode | SurveyNode | HangupNode
)

def _kind(cls: type[Node]) -> str:
    tag = cls.__struct_config__.tag
    assert isinstance(tag, str)
    return tag


NODE_KINDS: dict[str, type[Node]] = {
    _kind(cls): cls
    for cls in (
        PromptNode, MenuNode, CollectNode, PinCheckNode, LookupNode, TimeBranchNode,
        DnisBranchNode, TransferNode, VoicemailNode, SurveyNode, HangupNode,
    )
}
"""Node classes by their YAML ``kind``."""

_INPUT_NODES = (MenuNode, CollectNode, PinCheckNode, SurveyNode)
_InputNode = MenuNode | CollectNode | PinCheckNode | SurveyNode


class Flow(msgspec.Struct, frozen=True, kw_only=True):
    """One validated flow. ``version`` is the YAML's ``version`` or a hash of the definition."""

    name: str
    start: str
    nodes: dict[str, Node]
    version: str
    zero_out: str | None = None
    description: str | None = None
    source: str = "<string>"


class _FlowSpec(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    start: str
    nodes: dict[str, Any]
    zero_out: str | None = None
    version: NonEmpty | None = None
    description: str | None = None


# ---------------------------------------------------------------------------------------------
# Loading and validation
# ---------------------------------------------------------------------------------------------


class FlowProblem(msgspec.Struct, frozen=True):
    """One problem found in a flow file: where it is and how to fix it."""

    source: str
    flow: str | None
    node: str | None
    message: str

    def __str__(self) -> str:
        where = [self.source]
        if self.flow is not None:
            where.append(f"flow '{self.flow}'")
        if self.node is not None:
            where.append(f"node '{self.node}'")
        return f"{', '.join(where)}: {self.message}"


class FlowError(ValueError):
    """Flow files failed validation; ``problems`` lists every problem found (IVR-04)."""

    def __init__(self, problems: Iterable[FlowProblem]) -> None:
        self.problems = tuple(problems)
        count = len(self.problems)
        lines = "\n".join(f"  - {problem}" for problem in self.problems)
        super().__init__(f"{count} problem{'s' if count != 1 else ''} in IVR flows:\n{lines}")


class _Loader(yaml.SafeLoader):
    """Safe YAML where mapping keys stay the text as written and duplicate keys are recorded.

    Plain YAML turns ``0755`` into 493 and ``yes`` into True; menu keys, dialled numbers and
    node names must survive as written.
    """

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.duplicates: list[tuple[int, str]] = []

    def construct_mapping(
        self, node: yaml.MappingNode, deep: bool = False
    ) -> dict[Hashable, Any]:
        self.flatten_mapping(node)
        mapping: dict[Hashable, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise yaml.constructor.ConstructorError(
                    None, None, "mapping keys must be plain values", key_node.start_mark
                )
            key: str = key_node.value
            if key in mapping:
                self.duplicates.append((key_node.start_mark.line + 1, key))
            mapping[key] = self.construct_object(value_node, deep=deep)
        return mapping


_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}")
_VARIABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
_KEYPAD_KEYS = frozenset("0123456789*#")
_LABEL_MAX = 128  # the contract's Label: IvrLeft.target, AnnouncementPlayed.prompt
_TEMPLATE = re.compile(r"\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_]*)\}|[{}]")
_DIALLED = re.compile(r"\+?[0-9][0-9 -]{0,38}")
_MSGSPEC_AT = re.compile(r"(?P<msg>.*?)(?: - at `\$(?P<path>[^`]*)`)?", re.S)


def parse_flows(
    text: str,
    *,
    source: str = "<string>",
    hooks: Collection[str] | None = None,
    schedules: Collection[str] | None = None,
) -> dict[str, Flow]:
    """Parse and validate the flows in one YAML text (IVR-04).

    ``hooks`` and ``schedules``, when given, are the names lookups, PIN checks and time
    branches may use. Raises :class:`FlowError` listing every problem.
    """
    problems: list[FlowProblem] = []
    flows = _parse(text, source, hooks, schedules, problems)
    if problems:
        raise FlowError(problems)
    return {flow.name: flow for flow in flows}


def load_flows(
    *paths: str | Path,
    hooks: Collection[str] | None = None,
    schedules: Collection[str] | None = None,
) -> dict[str, Flow]:
    """Load and validate flow files (a folder means its ``*.yaml`` and ``*.yml`` files) (IVR-04).

    Flow names must be unique across the files. Raises :class:`FlowError` listing every problem
    in every file; :class:`FileNotFoundError` if a path does not exist.
    """
    if not paths:
        raise ValueError("load_flows() needs at least one path; pass a YAML file or a folder")
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            files.extend(sorted([*path.glob("*.yaml"), *path.glob("*.yml")]))
        elif path.is_file():
            files.append(path)
        else:
            raise FileNotFoundError(f"flow file or folder {str(path)!r} does not exist")
    problems: list[FlowProblem] = []
    flows: dict[str, Flow] = {}
    for file in files:
        for flow in _parse(file.read_text(encoding="utf-8"), str(file), hooks, schedules, problems):
            if flow.name in flows:
                problems.append(FlowProblem(
                    str(file), flow.name, None,
                    f"flow name is also defined in {flows[flow.name].source}; flow names must be "
                    "unique across files, so rename one of them",
                ))
            else:
                flows[flow.name] = flow
    if problems:
        raise FlowError(problems)
    return flows


def _parse(
    text: str,
    source: str,
    hooks: Collection[str] | None,
    schedules: Collection[str] | None,
    problems: list[FlowProblem],
) -> list[Flow]:
    loader = _Loader(text)
    try:
        data = loader.get_single_data()
    except yaml.YAMLError as exc:
        reason = " ".join(str(exc).split())
        problems.append(FlowProblem(source, None, None, f"not valid YAML: {reason}"))
        return []
    finally:
        loader.dispose()
    for line, key in loader.duplicates:
        problems.append(FlowProblem(
            source, None, None,
            f"line {line}: key '{key}' appears twice in one mapping (YAML keeps only the last); "
            "rename or delete one",
        ))
    if not isinstance(data, dict) or not isinstance(data.get("flows"), dict) or not data["flows"]:
        problems.append(FlowProblem(
            source, None, None,
            "the file must be a mapping with a non-empty `flows:` mapping of flow name to "
            "{start: NODE, nodes: {...}}",
        ))
        return []
    for key in data:
        if key != "flows":
            problems.append(FlowProblem(
                source, None, None, f"unknown top-level key '{key}'; only `flows:` is allowed"
            ))
    built = [_build_flow(name, raw, source, hooks, schedules, problems)
             for name, raw in data["flows"].items()]
    return [flow for flow in built if flow is not None]


def _build_flow(
    name: str,
    raw: Any,
    source: str,
    hooks: Collection[str] | None,
    schedules: Collection[str] | None,
    problems: list[FlowProblem],
) -> Flow | None:
    def problem(node: str | None, message: str) -> None:
        problems.append(FlowProblem(source, name, node, message))

    if not _NAME.fullmatch(name):
        problem(None, "flow names are 1-64 letters, digits, '_', '.' or '-'; rename the flow")
    if not isinstance(raw, dict):
        problem(None, "a flow must be a mapping with `start:` and `nodes:`")
        return None
    try:
        spec = msgspec.convert(raw, _FlowSpec)
    except msgspec.ValidationError as exc:
        problem(None, _describe(exc, _FlowSpec, "flow"))
        return None
    if not spec.nodes:
        problem(None, "`nodes` is empty; a flow needs at least its start node")
        return None
    nodes: dict[str, Node] = {}
    for node_name, raw_node in spec.nodes.items():
        if not _NAME.fullmatch(node_name):
            problem(node_name, "node names are 1-64 letters, digits, '_', '.' or '-'; rename it")
        node = _build_node(raw_node, functools.partial(problem, node_name))
        if node is not None:
            nodes[node_name] = node
    version = spec.version or "sha256:" + hashlib.sha256(
        msgspec.json.encode([spec.start, spec.zero_out, nodes])
    ).hexdigest()[:12]
    flow = Flow(
        name=name, start=spec.start, nodes=nodes, version=version, zero_out=spec.zero_out,
        description=spec.description, source=source,
    )
    complete = len(nodes) == len(spec.nodes)
    for where, message in _check(flow, set(spec.nodes), hooks, schedules, graph=complete):
        problem(where, message)
    return flow


def _build_node(raw: Any, problem: Callable[[str], None]) -> Node | None:
    kinds = ", ".join(sorted(NODE_KINDS))
    if not isinstance(raw, dict):
        problem(f"a node must be a mapping with a `kind:` ({kinds})")
        return None
    kind = raw.get("kind")
    if kind is None:
        problem(f"missing `kind`; set it to one of: {kinds}")
        return None
    cls = NODE_KINDS.get(kind) if isinstance(kind, str) else None
    if cls is None:
        problem(f"unknown kind '{kind}'; use one of: {kinds}{_did_you_mean(str(kind), NODE_KINDS)}")
        return None
    try:
        return msgspec.convert(raw, cls)
    except msgspec.ValidationError as exc:
        problem(_describe(exc, cls, f"{kind} node"))
        return None


def _describe(exc: msgspec.ValidationError, cls: type[msgspec.Struct], what: str) -> str:
    """Rewrite a msgspec error as a message naming the field and the fix."""
    match = _MSGSPEC_AT.fullmatch(str(exc))
    assert match is not None  # the pattern matches any text
    message, path = match["msg"], (match["path"] or "").lstrip(".")
    at = f" in `{path}`" if path else ""
    fields = [f for f in cls.__struct_fields__ if f not in ("kind", "description")]
    if missing := re.fullmatch(r"Object missing required field `(\w+)`", message):
        return (f"missing required field `{missing[1]}`{at}; add it "
                f"(fields of a {what}: {', '.join(fields)})")
    if unknown := re.fullmatch(r"Object contains unknown field `(.+)`", message):
        if path:  # prompts are the only nested mappings
            what, fields = "prompt", list(Prompt.__struct_fields__)
        hint = _did_you_mean(unknown[1], fields)
        return (f"unknown field `{unknown[1]}`{at}; remove it or fix the spelling{hint} "
                f"(fields of a {what}: {', '.join(fields)})")
    hint = ""
    if "Expected `str" in message and re.search(r"got `(int|float|bool|null)`", message):
        hint = "; quote the value so YAML keeps it as text"
    elif "Expected `str | object`" in message:
        hint = "; write a text, or a mapping with `file` and/or `text`"
    return f"`{path or what}`: {message}{hint}"


def _did_you_mean(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _template_vars(template: str) -> tuple[list[str], bool]:
    """The variables a template uses, and whether its braces are well formed."""
    names: list[str] = []
    ok = True
    for match in _TEMPLATE.finditer(template):
        if match[1] is not None:
            names.append(match[1])
        elif match[0] in ("{", "}"):
            ok = False
    return names, ok


def _render(template: str, variables: Mapping[str, str]) -> str:
    """Fill ``{name}`` from variables (unset names render empty); ``{{`` and ``}}`` are braces."""

    def fill(match: re.Match[str]) -> str:
        if match[1] is not None:
            return variables.get(match[1], "")
        return match[0][0]

    return _TEMPLATE.sub(fill, template)


def _targets(node: Node) -> list[tuple[str, str, bool]]:
    """The node's outgoing edges: (field, target, whether taking it needs a valid keypress)."""
    match node:
        case PromptNode():
            return [("next", node.next, False)]
        case MenuNode():
            edges = [(f"options['{key}']", target, True) for key, target in node.options.items()]
            edges.append(("on_fail", node.on_fail, False))
            if node.on_timeout is not None:
                edges.append(("on_timeout", node.on_timeout, False))
            return edges
        case CollectNode():
            return [("next", node.next, True), ("on_fail", node.on_fail, False)]
        case PinCheckNode():
            edges = [("next", node.next, True), ("on_fail", node.on_fail, False)]
            if node.on_error is not None:
                edges.append(("on_error", node.on_error, False))
            return edges
        case LookupNode():
            edges = [("on_found", node.on_found, False), ("on_missing", node.on_missing, False)]
            if node.on_error is not None:
                edges.append(("on_error", node.on_error, False))
            return edges
        case TimeBranchNode():
            edges = [("open", node.open, False), ("closed", node.closed, False)]
            edges += [(field, target, False) for field, target in
                      (("holiday", node.holiday), ("lunch", node.lunch)) if target is not None]
            return edges
        case DnisBranchNode():
            edges = [(f"routes['{key}']", target, False) for key, target in node.routes.items()]
            return [*edges, ("default", node.default, False)]
        case _:
            return []


def _prompts(node: Node) -> list[tuple[str, PromptSpec]]:
    fields = ("prompt", "invalid", "no_input", "thanks")
    return [(f, getattr(node, f)) for f in fields if getattr(node, f, None) is not None]


def _templates(node: Node) -> list[tuple[str, str]]:
    """(field, template) pairs whose ``{variables}`` are filled at run time."""
    found: list[tuple[str, str]] = []
    for field, spec in _prompts(node):
        text = spec if isinstance(spec, str) else spec.text
        if text is not None:
            found.append((field if isinstance(spec, str) else f"{field}.text", text))
    if isinstance(node, LookupNode | PinCheckNode):
        found += [(f"args.{key}", value) for key, value in node.args.items()]
    if isinstance(node, TransferNode):
        found.append(("target", node.target))
    if isinstance(node, VoicemailNode):
        found.append(("mailbox", node.mailbox))
    return found


def _sets(node: Node) -> list[tuple[str, str]]:
    """(field, variable) pairs the node stores into."""
    if isinstance(node, CollectNode):
        return [("variable", node.variable)]
    if isinstance(node, LookupNode | PinCheckNode):
        return [("store", name) for name in node.store]
    return []


def _check(
    flow: Flow,
    names: set[str],
    hooks: Collection[str] | None,
    schedules: Collection[str] | None,
    *,
    graph: bool,
) -> list[tuple[str | None, str]]:
    """Every problem in one flow as (node, message); graph checks need all nodes to have parsed."""
    out: list[tuple[str | None, str]] = []

    def missing(target: str) -> str:
        hint = _did_you_mean(target, names)
        return f"add a node '{target}' or point it at an existing node{hint}"

    if flow.start not in names:
        out.append((None, f"`start` names '{flow.start}', which is not a node of this flow; "
                          f"{missing(flow.start)}"))
    if flow.zero_out is not None and flow.zero_out not in names:
        out.append((None, f"`zero_out` names '{flow.zero_out}', which is not a node of this "
                          f"flow; {missing(flow.zero_out)}"))
    variables = set(BUILTIN_VARIABLES)
    for node in flow.nodes.values():
        variables.update(name for _, name in _sets(node))
    for name, node in flow.nodes.items():
        out += [(name, message) for message in _check_node(node, hooks, schedules)]
        for field, target, _ in _targets(node):
            if target not in names:
                out.append((name, f"`{field}` points to '{target}', which is not a node of this "
                                  f"flow; {missing(target)}"))
        for field, template in _templates(node):
            used, well_formed = _template_vars(template)
            if not well_formed:
                out.append((name, f"`{field}` has a stray '{{' or '}}'; write {{name}} for a "
                                  "variable and {{ or }} for a literal brace"))
            for var in used:
                if var not in variables:
                    out.append((name, f"`{field}` uses {{{var}}}, which no node sets; set it with "
                                      "a collect `variable` or a lookup/pin_check `store`, or fix "
                                      f"the name{_did_you_mean(var, variables)}"))
        for field, spec in _prompts(node):
            if isinstance(spec, Prompt) and spec.file is None and spec.text is None:
                out.append((name, f"`{field}` needs a `file` or a `text`"))
    if graph and flow.start in names:
        out += _check_graph(flow)
    return out


def _check_node(
    node: Node, hooks: Collection[str] | None, schedules: Collection[str] | None
) -> list[str]:
    out: list[str] = []
    if isinstance(node, MenuNode):
        if not node.options:
            out.append("`options` is empty; map at least one key to a node")
        out += [f"option key '{key}' is not a single keypad key; use one of 0-9, * or #"
                for key in node.options if key not in _KEYPAD_KEYS]
    if isinstance(node, CollectNode | PinCheckNode):
        if node.min_digits > node.max_digits:
            out.append(f"min_digits {node.min_digits} is greater than max_digits "
                       f"{node.max_digits}; lower min_digits or raise max_digits")
        if node.max_digits == 0:
            out.append("max_digits is 0; allow at least one digit")
    for field, var in _sets(node):
        if not _VARIABLE.fullmatch(var):
            out.append(f"`{field}` '{var}' is not a variable name; use letters, digits and '_', "
                       "not starting with a digit")
        elif var in BUILTIN_VARIABLES:
            out.append(f"`{field}` '{var}' is set by the interpreter; choose another name")
    if isinstance(node, LookupNode | PinCheckNode) and hooks is not None and node.hook not in hooks:
        out.append(f"hook '{node.hook}' is not a known hook; use one of: "
                   f"{', '.join(sorted(hooks)) or '(none)'}{_did_you_mean(node.hook, hooks)}, or "
                   "register it with the engine")
    if (isinstance(node, TimeBranchNode) and schedules is not None
            and node.schedule not in schedules):
        out.append(f"schedule '{node.schedule}' is not a known schedule; use one of: "
                   f"{', '.join(sorted(schedules)) or '(none)'}"
                   f"{_did_you_mean(node.schedule, schedules)}, or add it to the business calendar")
    if isinstance(node, DnisBranchNode):
        if not node.routes:
            out.append("`routes` is empty; map at least one dialled number to a node")
        seen: dict[str, str] = {}
        for number in node.routes:
            if not _DIALLED.fullmatch(number):
                out.append(f"route '{number}' is not a phone number; use digits, optionally "
                           "with a leading '+' and '-' or spaces")
                continue
            digits = _digits_only(number)
            if digits in seen:
                out.append(f"routes '{seen[digits]}' and '{number}' are the same number; "
                           "keep one")
            seen[digits] = number
    return out


def _check_graph(flow: Flow) -> list[tuple[str | None, str]]:
    """Unreachable nodes and loops a caller who never presses a key could not leave."""
    out: list[tuple[str | None, str]] = []
    edges: dict[str, list[tuple[str, str, bool]]] = {}
    for name, node in flow.nodes.items():
        edges[name] = _targets(node)
        if isinstance(node, MenuNode) and "0" not in node.options and flow.zero_out is not None:
            edges[name].append(("zero_out", flow.zero_out, True))
    reached = {flow.start}
    frontier = [flow.start]
    while frontier:
        for _, target, _ in edges[frontier.pop()]:
            if target in flow.nodes and target not in reached:
                reached.add(target)
                frontier.append(target)
    out += [(name, f"unreachable from start '{flow.start}'; link to it from another node or "
                   "delete it") for name in flow.nodes if name not in reached]
    # Edges taken without a valid keypress: a cycle of them traps a silent caller forever.
    quiet = {
        name: [(field, target) for field, target, keyed in node_edges
               if not keyed and target in flow.nodes]
        for name, node_edges in edges.items()
    }
    for cycle in _cycles(quiet):
        path = " -> ".join(f"{name} ({field})" for name, field in cycle)
        path += f" -> {cycle[0][0]}"
        if any(isinstance(flow.nodes[name], _INPUT_NODES) for name, _ in cycle):
            out.append((cycle[0][0], f"a caller who never presses a valid key loops forever: "
                                     f"{path}; point one of these at a node that ends the call "
                                     "(hangup, transfer or voicemail)"))
        else:
            out.append((cycle[0][0], f"infinite loop with no node waiting for the caller: {path}; "
                                     "point one of these elsewhere or put a menu on the loop"))
    return out


def _cycles(graph: dict[str, list[tuple[str, str]]]) -> list[list[tuple[str, str]]]:
    """One cycle per group of nodes that loop, each as [(node, field taken), ...]."""
    alive = set(graph)
    changed = True
    while changed:  # drop nodes that cannot be on a cycle (no way onward among the rest)
        changed = False
        for name in list(alive):
            if not any(target in alive for _, target in graph[name]):
                alive.discard(name)
                changed = True
    cycles: list[list[tuple[str, str]]] = []
    covered: set[str] = set()
    for first in graph:
        if first not in alive or first in covered:
            continue
        path: list[tuple[str, str]] = []
        index: dict[str, int] = {}
        name = first
        while name not in index:
            index[name] = len(path)
            field, target = next((f, t) for f, t in graph[name] if t in alive)
            path.append((name, field))
            name = target
        cycle = path[index[name]:]
        if covered.isdisjoint(node for node, _ in cycle):
            cycles.append(cycle)
        covered.update(node for node, _ in path)
    return cycles


def _digits_only(number: str) -> str:
    return "".join(ch for ch in number if "0" <= ch <= "9")


# ---------------------------------------------------------------------------------------------
# Runtime: session, stimuli, directives
# ---------------------------------------------------------------------------------------------

CalendarState = Literal["open", "closed", "holiday", "lunch"]
_CALENDAR_STATES = frozenset({"open", "closed", "holiday", "lunch"})


class CalendarLookup(Protocol):
    """The business calendar as the interpreter sees it (CC-05, IVR-02)."""

    def __call__(self, schedule: str, at: datetime, /) -> CalendarState:
        """The state of ``schedule`` at the instant ``at``."""
        ...


class IvrSession(msgspec.Struct, frozen=True, kw_only=True):
    """Where one call stands in its flow. Immutable: each step returns a new one.

    ``waiting`` is what the interpreter expects next: ``digits`` (:class:`Digits` or
    :class:`InputTimeout`), ``hook`` (:class:`HookResult`) or ``done``. ``menus`` is the chain of
    menus entered, the current one last (``*`` goes back one). ``retries`` counts failed
    attempts at the current node. Secrets such as PINs are never kept.
    """

    flow: str
    node: str
    waiting: Literal["digits", "hook", "done"]
    menus: tuple[str, ...] = ()
    retries: int = 0
    variables: dict[str, str] = msgspec.field(default_factory=dict)
    at: datetime | None = None

    @property
    def done(self) -> bool:
        """Whether the call has left the flow."""
        return self.waiting == "done"


class Digits(msgspec.Struct, frozen=True):
    """Keys the caller pressed, as the engine collected them for :class:`AwaitDigits`."""

    text: str


class InputTimeout(msgspec.Struct, frozen=True):
    """The caller pressed nothing within :attr:`AwaitDigits.timeout_s`."""


class HookResult(msgspec.Struct, frozen=True, kw_only=True):
    """A hook's answer: ``values`` when found/valid, neither when missing/wrong, or an ``error``."""

    values: dict[str, Any] | None = None
    error: str | None = None


Stimulus = Digits | InputTimeout | HookResult


class FlowEntered(msgspec.Struct, frozen=True, kw_only=True):
    """Fact: the call entered the flow (contract ``IvrEntered``)."""

    flow: str
    flow_version: str


class NodeVisited(msgspec.Struct, frozen=True, kw_only=True):
    """Fact: the call passed a node, or made one attempt at an input node (``IvrNodeVisited``).

    ``digits`` is what was pressed (``None`` for PINs and for non-keypad input). ``outcome``:
    ``played``; ``matched:K``, ``zero_out``, ``back``, ``invalid``, ``timeout`` (menus);
    ``collected``; ``pin_ok``, ``pin_failed``, ``error``; ``found``, ``missing``; a calendar
    state; ``route:NUMBER``, ``default``; ``transfer``, ``voicemail``, ``hangup``; ``score:N``.
    It precedes the node's own prompts and exit; at input nodes it follows the caller's input.
    """

    flow: str
    node: str
    kind: str
    digits: str | None
    outcome: str


class PlayPrompt(msgspec.Struct, frozen=True, kw_only=True):
    """Play a recorded ``file``, or speak ``text`` when there is no file.

    ``prompt`` labels it for ``AnnouncementPlayed(kind="prompt")``: the file name, else
    ``NODE.FIELD``. ``text`` has its variables filled in.
    """

    prompt: str
    file: str | None
    text: str | None


class AwaitDigits(msgspec.Struct, frozen=True, kw_only=True):
    """Collect up to ``max_digits`` keys, ending early on ``terminator``; wait.

    Answer :class:`Digits` with the keys (terminator included or not), or :class:`InputTimeout`
    if none came within ``timeout_s`` after the prompts. ``secret`` keys must not be logged.
    """

    max_digits: int
    timeout_s: float
    terminator: str | None
    secret: bool = False


class CallHook(msgspec.Struct, frozen=True, kw_only=True):
    """Call the named hook with ``args`` (and a PIN in ``secret``); wait for :class:`HookResult`."""

    hook: str
    args: dict[str, str]
    secret: str | None = None

    def __repr__(self) -> str:
        secret = "None" if self.secret is None else "'***'"
        return f"CallHook(hook={self.hook!r}, args={self.args!r}, secret={secret})"


class Transfer(msgspec.Struct, frozen=True, kw_only=True):
    """Terminal: hand the call to a queue, an agent or an external number."""

    target_kind: Literal["queue", "agent", "external"]
    target: str
    priority: int | None = None


class LeaveVoicemail(msgspec.Struct, frozen=True, kw_only=True):
    """Terminal: record a message into ``mailbox``."""

    mailbox: str


class SurveyAnswer(msgspec.Struct, frozen=True, kw_only=True):
    """Fact: the caller scored the call (contract ``SurveyAnswered``, CC-10)."""

    survey: str
    score: int
    scale_max: int


class Left(msgspec.Struct, frozen=True, kw_only=True):
    """Fact: the call left the flow at ``node`` (contract ``IvrLeft``)."""

    flow: str
    node: str
    exit: Literal["transfer", "voicemail", "survey", "hangup", "caller_hangup", "error"]
    target_kind: Literal["queue", "agent", "external", "voicemail"] | None = None
    target: str | None = None


class HangUp(msgspec.Struct, frozen=True, kw_only=True):
    """Terminal: end the call.

    ``reason``: a hangup node's ``reason`` (default ``completed``), ``survey_completed``,
    ``survey_unanswered``, or ``ivr_error`` with a ``detail`` for the log.
    """

    reason: str
    detail: str | None = None


Directive = (
    FlowEntered | NodeVisited | PlayPrompt | AwaitDigits | CallHook | Transfer | LeaveVoicemail
    | SurveyAnswer | Left | HangUp
)


class Step(msgspec.Struct, frozen=True):
    """The session after a stimulus and the directives to run, in order.

    ``accepted`` is False when the stimulus did not fit what the session waited for (late
    digits, a hook result while waiting for keys, anything after the end); nothing changed then.
    """

    session: IvrSession
    directives: tuple[Directive, ...]
    accepted: bool = True


# ---------------------------------------------------------------------------------------------
# Interpreter
# ---------------------------------------------------------------------------------------------


def start(
    flow: Flow,
    *,
    dialed: str,
    caller: str,
    at: datetime | None = None,
    calendar: CalendarLookup | None = None,
) -> Step:
    """Enter ``flow`` for a call from ``caller`` to ``dialed`` at the instant ``at``.

    ``calendar`` is required when the flow has a ``time_branch`` (so is ``at``, when one is
    reached). The variables ``caller`` and ``dialed`` are set for templates and hooks.
    """
    if calendar is None and any(isinstance(n, TimeBranchNode) for n in flow.nodes.values()):
        raise ValueError(
            f"flow {flow.name!r} has a time_branch; pass calendar= to start() and step()"
        )
    session = IvrSession(
        flow=flow.name, node=flow.start, waiting="digits",
        variables={"caller": caller, "dialed": dialed}, at=at,
    )
    run = _Run(flow, session, calendar, at)
    run.out.append(FlowEntered(flow=flow.name, flow_version=flow.version))
    run.goto(flow.start)
    return run.result()


def step(
    flow: Flow,
    session: IvrSession,
    stimulus: Stimulus,
    *,
    at: datetime | None = None,
    calendar: CalendarLookup | None = None,
) -> Step:
    """Advance ``session`` by one stimulus (``at`` defaults to the session's last instant)."""
    if session.flow != flow.name:
        raise ValueError(f"session is in flow {session.flow!r}, not {flow.name!r}; pass that flow")
    waiting_for = {"digits": (Digits, InputTimeout), "hook": (HookResult,), "done": ()}
    if not isinstance(stimulus, waiting_for[session.waiting]):
        return Step(session, (), accepted=False)
    run = _Run(flow, session, calendar, at)
    node = flow.nodes.get(session.node)
    if isinstance(stimulus, HookResult) and isinstance(node, LookupNode | PinCheckNode):
        run.on_hook(node, stimulus)
    elif isinstance(stimulus, Digits | InputTimeout) and isinstance(node, _INPUT_NODES):
        run.on_input(node, stimulus)
    else:  # the flow changed under a live session (reload): end the call cleanly
        run.error(f"node {session.node!r} no longer waits for this input")
    return run.result()


def caller_hung_up(flow: Flow, session: IvrSession) -> Step:
    """The caller hung up inside the IVR: record where (``IvrLeft`` exit ``caller_hangup``)."""
    if session.done:
        return Step(session, (), accepted=False)
    left = Left(flow=flow.name, node=session.node, exit="caller_hangup")
    return Step(msgspec.structs.replace(session, waiting="done"), (left,))


class _Run:
    """One start/step call: mutable scratch state, frozen into a Step at the end."""

    def __init__(
        self,
        flow: Flow,
        session: IvrSession,
        calendar: CalendarLookup | None,
        at: datetime | None,
    ) -> None:
        self.flow = flow
        self.calendar = calendar
        self.at = at if at is not None else session.at
        self.node = session.node
        self.waiting = session.waiting
        self.menus = session.menus
        self.retries = session.retries
        self.variables = session.variables
        self.out: list[Directive] = []

    def result(self) -> Step:
        session = IvrSession(
            flow=self.flow.name, node=self.node, waiting=self.waiting, menus=self.menus,
            retries=self.retries, variables=self.variables, at=self.at,
        )
        return Step(session, tuple(self.out))

    # -- directives --------------------------------------------------------------------------

    def visited(self, node: Node, outcome: str, digits: str | None = None) -> None:
        self.out.append(NodeVisited(
            flow=self.flow.name, node=self.node, kind=_kind(type(node)), digits=_loggable(digits),
            outcome=outcome,
        ))

    def play(self, spec: PromptSpec | None, field: str) -> None:
        if spec is None:
            return
        file: str | None
        text: str | None
        if isinstance(spec, str):
            file, text = None, spec
        else:
            file, text = spec.file, spec.text
        rendered = None if text is None else _render(text, self.variables)
        self.out.append(PlayPrompt(prompt=file or f"{self.node}.{field}", file=file, text=rendered))

    def leave(
        self,
        how: Literal["transfer", "voicemail", "survey", "hangup", "error"],
        final: Directive,
        target_kind: Literal["queue", "agent", "external", "voicemail"] | None = None,
        target: str | None = None,
    ) -> None:
        self.out.append(Left(flow=self.flow.name, node=self.node, exit=how,
                             target_kind=target_kind, target=target))
        self.out.append(final)
        self.waiting = "done"

    def error(self, detail: str) -> None:
        """End the call (a validated flow only gets here if it changed under a live session)."""
        self.leave("error", HangUp(reason="ivr_error", detail=detail))

    # -- moving ------------------------------------------------------------------------------

    def goto(self, target: str) -> None:
        """Enter ``target`` and pass through nodes until one waits or ends the call."""
        # Validation forbids cycles without input, so more hops than nodes means a broken flow.
        for _ in range(len(self.flow.nodes) + 1):
            node = self.flow.nodes.get(target)
            if node is None:
                self.error(f"node {target!r} does not exist")
                return
            self.node, self.retries = target, 0
            following = self.enter(node)
            if following is None:
                return
            target = following
        self.error("loop without input")

    def enter(self, node: Node) -> str | None:
        """Run one node on entry; the next node for pass-through nodes, else None."""
        match node:
            case PromptNode():
                self.visited(node, "played")
                self.play(node.prompt, "prompt")
                return node.next
            case MenuNode():
                if self.node in self.menus:
                    self.menus = self.menus[: self.menus.index(self.node) + 1]
                else:
                    self.menus = (*self.menus, self.node)
                self.ask(node)
            case CollectNode() | PinCheckNode() | SurveyNode():
                self.ask(node)
            case LookupNode():
                self.play(node.prompt, "prompt")
                self.call_hook(node)
            case TimeBranchNode():
                state = self.calendar_state(node)
                self.visited(node, state)
                fallback = {"holiday": node.holiday, "lunch": node.lunch}.get(state)
                return node.open if state == "open" else fallback or node.closed
            case DnisBranchNode():
                dialed = _digits_only(self.variables.get("dialed", ""))
                for number, target in node.routes.items():
                    if dialed and _digits_only(number) == dialed:
                        self.visited(node, f"route:{number}")
                        return target
                self.visited(node, "default")
                return node.default
            case TransferNode():
                target = _render(node.target, self.variables)
                if not 0 < len(target) <= _LABEL_MAX:
                    self.error(f"transfer target rendered to {len(target)} characters")
                    return None
                self.visited(node, "transfer")
                self.play(node.prompt, "prompt")
                self.leave("transfer", Transfer(target_kind=node.target_kind, target=target,
                                                priority=node.priority),
                           node.target_kind, target)
            case VoicemailNode():
                mailbox = _render(node.mailbox, self.variables)
                if not 0 < len(mailbox) <= _LABEL_MAX:
                    self.error(f"mailbox rendered to {len(mailbox)} characters")
                    return None
                self.visited(node, "voicemail")
                self.play(node.prompt, "prompt")
                self.leave("voicemail", LeaveVoicemail(mailbox=mailbox), "voicemail", mailbox)
            case HangupNode():
                self.visited(node, "hangup")
                self.play(node.prompt, "prompt")
                self.leave("hangup", HangUp(reason=node.reason))
        return None

    def ask(self, node: _InputNode) -> None:
        self.play(node.prompt, "prompt")
        if isinstance(node, CollectNode | PinCheckNode):
            await_ = AwaitDigits(max_digits=node.max_digits, timeout_s=node.timeout_s,
                                 terminator=node.terminator, secret=_secret(node))
        else:
            await_ = AwaitDigits(max_digits=1, timeout_s=node.timeout_s, terminator=None)
        self.out.append(await_)
        self.waiting = "digits"

    def call_hook(self, node: LookupNode | PinCheckNode, secret: str | None = None) -> None:
        args = {key: _render(value, self.variables) for key, value in node.args.items()}
        self.out.append(CallHook(hook=node.hook, args=args, secret=secret))
        self.waiting = "hook"

    def calendar_state(self, node: TimeBranchNode) -> str:
        if self.calendar is None:
            raise ValueError(f"flow {self.flow.name!r} node {self.node!r} is a time_branch; "
                             "pass calendar= to start() and step()")
        if self.at is None:
            raise ValueError(f"flow {self.flow.name!r} node {self.node!r} is a time_branch; "
                             "pass at= (the current instant) to start() or step()")
        state = self.calendar(node.schedule, self.at)
        if state not in _CALENDAR_STATES:
            raise ValueError(f"calendar returned {state!r} for schedule {node.schedule!r}; it "
                             "must return 'open', 'closed', 'holiday' or 'lunch'")
        return state

    # -- input -------------------------------------------------------------------------------

    def on_input(self, node: _InputNode, stimulus: Digits | InputTimeout) -> None:
        if isinstance(stimulus, InputTimeout):
            self.visited(node, "timeout")
            self.failed(node, timeout=True)
            return
        text = stimulus.text
        match node:
            case MenuNode():
                self.on_menu_key(node, text)
            case SurveyNode():
                if len(text) == 1 and "1" <= text <= str(node.scale_max):
                    self.visited(node, f"score:{text}", text)
                    self.out.append(SurveyAnswer(survey=node.survey, score=int(text),
                                                 scale_max=node.scale_max))
                    self.play(node.thanks, "thanks")
                    self.leave("survey", HangUp(reason="survey_completed"))
                else:
                    self.visited(node, "invalid", text)
                    self.failed(node, timeout=False)
            case CollectNode() | PinCheckNode():
                if node.terminator is not None and text.endswith(node.terminator):
                    text = text[:-1]
                shown = None if _secret(node) else stimulus.text
                if not (re.fullmatch(r"[0-9]*", text)
                        and node.min_digits <= len(text) <= node.max_digits):
                    self.visited(node, "invalid", shown)
                    self.failed(node, timeout=False)
                elif isinstance(node, PinCheckNode):
                    self.call_hook(node, secret=text)
                else:
                    self.variables = {**self.variables, node.variable: text}
                    self.visited(node, "collected", None if node.secret else text)
                    self.goto(node.next)

    def on_menu_key(self, node: MenuNode, key: str) -> None:
        if key in node.options:
            self.visited(node, f"matched:{key}", key)
            self.goto(node.options[key])
        elif key == "0" and self.flow.zero_out is not None:
            self.visited(node, "zero_out", key)
            self.goto(self.flow.zero_out)
        elif key == "*" and len(self.menus) >= 2:
            self.visited(node, "back", key)
            self.goto(self.menus[-2])
        else:
            self.visited(node, "invalid", key)
            self.failed(node, timeout=False)

    def failed(self, node: _InputNode, *, timeout: bool) -> None:
        """Count a failed attempt: re-prompt, or leave once the retries are used up."""
        self.retries += 1
        if self.retries <= node.max_retries:
            self.play(node.no_input if timeout else node.invalid,
                      "no_input" if timeout else "invalid")
            self.ask(node)
        elif isinstance(node, SurveyNode):
            self.leave("survey", HangUp(reason="survey_unanswered"))
        elif isinstance(node, MenuNode) and timeout and node.on_timeout is not None:
            self.goto(node.on_timeout)
        else:
            self.goto(node.on_fail)

    # -- hooks -------------------------------------------------------------------------------

    def on_hook(self, node: LookupNode | PinCheckNode, result: HookResult) -> None:
        values = result.values
        error: str | None
        if result.error is None and values is not None and not all(k in values for k in node.store):
            values, error = None, "result lacks a stored name"
        else:
            error = result.error
        if error is not None:
            self.visited(node, "error")
            fallback = node.on_missing if isinstance(node, LookupNode) else node.on_fail
            self.goto(node.on_error or fallback)
        elif values is None:
            if isinstance(node, LookupNode):
                self.visited(node, "missing")
                self.goto(node.on_missing)
            else:
                self.visited(node, "pin_failed")
                self.failed(node, timeout=False)
        else:
            self.variables = {**self.variables, **{k: _text(values[k]) for k in node.store}}
            self.visited(node, "found" if isinstance(node, LookupNode) else "pin_ok")
            self.goto(node.on_found if isinstance(node, LookupNode) else node.next)


def _secret(node: CollectNode | PinCheckNode) -> bool:
    return isinstance(node, PinCheckNode) or node.secret


def _loggable(digits: str | None) -> str | None:
    """Keys as the contract's ``Digits`` allows them (keypad keys, at most 64), else None."""
    if digits is None or len(digits) > 64 or not set(digits) <= _KEYPAD_KEYS:
        return None
    return digits


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)
