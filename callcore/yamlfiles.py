"""Reading configuration documents given as a YAML file or as an in-memory mapping."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

__all__ = ["read_document"]


def read_document(source: Path | str | Mapping[str, Any], *, what: str,
                  error: type[ValueError]) -> tuple[Any, str]:
    """The parsed document and a name for it in messages (the path, or ``what``).

    Invalid YAML raises ``error`` naming the file.
    """
    if isinstance(source, Mapping):
        return source, what
    path = Path(source)
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8")), str(path)
    except yaml.YAMLError as exc:
        raise error(f"{path}: not valid YAML: {exc}") from None
