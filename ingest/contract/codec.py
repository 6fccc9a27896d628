"""JSON encoding and strict validation of events.

Decoding is two-pass: a cheap look at ``type`` and ``schema_version`` picks the typed
decoder, which then validates the whole envelope and payload in one C-speed pass.
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache

import msgspec

from ingest.contract.envelope import Event, Payload, to_utc_ms
from ingest.contract.registry import PAYLOAD_TYPES

__all__ = ["InvalidEventError", "decode_event", "encode_event", "parse_version", "stamp"]


class InvalidEventError(ValueError):
    """Bytes that are not a valid event of the contract; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _Head(msgspec.Struct):
    type: str
    schema_version: str


_head_decoder = msgspec.json.Decoder(_Head)
_decoders: dict[str, msgspec.json.Decoder[Event[Payload]]] = {
    name: msgspec.json.Decoder(Event[cls]) for name, cls in PAYLOAD_TYPES.items()
}
_encoder = msgspec.json.Encoder()


@lru_cache(maxsize=256)
def parse_version(text: str) -> tuple[int, int]:
    """``"1.2"`` -> ``(1, 2)``; ``ValueError`` for anything else."""
    major, dot, minor = text.partition(".")
    if not (dot and major.isdigit() and minor.isdigit()):
        raise ValueError(f"schema_version {text!r} is not of the form MAJOR.MINOR, e.g. '1.0'")
    return int(major), int(minor)


def _check_version(event_type: str, version: str) -> None:
    try:
        major, _minor = parse_version(version)
    except ValueError as exc:
        raise InvalidEventError(str(exc)) from None
    supported = PAYLOAD_TYPES[event_type].VERSION[0]
    if major != supported:
        newer = "newer" if major > supported else "older"
        raise InvalidEventError(
            f"{event_type} schema version {version} is {newer} than the supported "
            f"major version {supported}.x; "
            + ("upgrade this consumer" if major > supported else "convert it before producing")
        )


def _check_key(event: Event[Payload]) -> Event[Payload]:
    expected_key = event.payload.partition_key()
    if event.key != expected_key:
        raise InvalidEventError(
            f"key {event.key!r} does not match the payload's {event.payload.KEY} "
            f"{expected_key!r} - at `$.key`"
        )
    return event


def decode_event(data: bytes | str, *, expected_type: str | None = None) -> Event[Payload]:
    """Parse and validate one event; raises ``InvalidEventError`` with the reason.

    A newer *minor* version of a known type is accepted (unknown fields are ignored);
    another *major* version is refused, since its meaning may have changed.
    ``expected_type`` is a hint that saves the first pass when the caller knows it.
    """
    hinted = _decoders.get(expected_type or "")
    if hinted is not None:
        try:
            event = hinted.decode(data)
        except msgspec.MsgspecError:
            pass  # the full path below finds the precise reason
        else:
            if event.type == expected_type:
                _check_version(event.type, event.schema_version)
                return _check_key(event)
    try:
        head = _head_decoder.decode(data)
    except msgspec.ValidationError as exc:
        raise InvalidEventError(f"envelope: {exc}") from None
    except msgspec.DecodeError as exc:
        raise InvalidEventError(f"not valid JSON: {exc}") from None
    decoder = _decoders.get(head.type)
    if decoder is None:
        raise InvalidEventError(f"unknown event type {head.type!r}")
    _check_version(head.type, head.schema_version)
    try:
        return _check_key(decoder.decode(data))
    except msgspec.ValidationError as exc:
        raise InvalidEventError(str(exc)) from None


def encode_event(event: Event[Payload]) -> bytes:
    """The canonical JSON bytes of ``event``."""
    return _encoder.encode(event)


def stamp(event: Event[Payload], recorded_at: datetime) -> Event[Payload]:
    """``event`` with ``recorded_at`` set and ``occurred_at`` in UTC milliseconds."""
    return msgspec.structs.replace(
        event, occurred_at=to_utc_ms(event.occurred_at), recorded_at=to_utc_ms(recorded_at)
    )
