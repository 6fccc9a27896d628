"""Access control of the ClickHouse server: a read-only analyst and a writer.

ClickHouse 18.16 has no SQL-driven access control (``CREATE USER`` came in 20.x), so users,
profiles and quotas live in ``users.xml``. :func:`users_xml` writes that file;
``scripts/clickhouse-server.sh`` installs it (``python -m warehouse.access > users.xml``).

* ``default``: the administrator, loopback only, no password (migrations run as it or as writer).
* ``analyst``: profile ``analyst`` with ``readonly = 1`` (SELECT only; settings cannot be
  changed, so its limits hold), ``max_execution_time``, ``max_memory_usage`` and
  ``max_rows_to_read``.
* ``writer``: profile ``writer``: INSERT and DDL, no limits beyond the defaults.

Every profile enables ``allow_experimental_low_cardinality_type`` (needed on 18.16).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from xml.sax.saxutils import escape

__all__ = ["AnalystLimits", "users_xml"]


@dataclass(frozen=True, kw_only=True)
class AnalystLimits:
    """Limits of the analyst profile; 0 means unlimited."""

    max_execution_time: int = 60
    """Seconds a query may run."""
    max_memory_usage: int = 2_000_000_000
    """Bytes a query may use."""
    max_rows_to_read: int = 0
    """Rows a query may read from tables."""


def _sha256(password: str) -> str:
    return hashlib.sha256(password.encode("utf-8")).hexdigest()


def _networks(networks: tuple[str, ...]) -> str:
    ips = "".join(f"<ip>{escape(ip)}</ip>" for ip in networks)
    return f"<networks>{ips}</networks>"


def _user(name: str, *, password: str, profile: str, networks: tuple[str, ...]) -> str:
    secret = f"<password_sha256_hex>{_sha256(password)}</password_sha256_hex>" if password \
        else "<password></password>"
    return (f"        <{name}>{secret}{_networks(networks)}"
            f"<profile>{profile}</profile><quota>default</quota></{name}>\n")


def users_xml(
    *,
    analyst_password: str,
    writer_password: str,
    analyst: AnalystLimits | None = None,
    networks: tuple[str, ...] = ("127.0.0.1", "::1"),
) -> str:
    """The whole ``users.xml`` of the warehouse server (root element ``<yandex>``).

    Passwords are stored as SHA-256; ``networks`` are the addresses users may connect from.
    """
    if not analyst_password or not writer_password:
        raise ValueError("users_xml: analyst_password and writer_password must not be empty")
    limits = analyst or AnalystLimits()
    low_cardinality = "<allow_experimental_low_cardinality_type>1" \
        "</allow_experimental_low_cardinality_type>"
    analyst_profile = (
        f"<readonly>1</readonly>{low_cardinality}"
        f"<max_execution_time>{int(limits.max_execution_time)}</max_execution_time>"
        f"<max_memory_usage>{int(limits.max_memory_usage)}</max_memory_usage>"
        f"<max_rows_to_read>{int(limits.max_rows_to_read)}</max_rows_to_read>"
        "<read_overflow_mode>throw</read_overflow_mode>"
    )
    return (
        '<?xml version="1.0"?>\n<yandex>\n    <profiles>\n'
        f"        <default>{low_cardinality}<max_memory_usage>10000000000</max_memory_usage>"
        "<load_balancing>random</load_balancing></default>\n"
        f"        <analyst>{analyst_profile}</analyst>\n"
        f"        <writer>{low_cardinality}</writer>\n"
        "    </profiles>\n    <users>\n"
        + _user("default", password="", profile="default", networks=networks)
        + _user("analyst", password=analyst_password, profile="analyst", networks=networks)
        + _user("writer", password=writer_password, profile="writer", networks=networks)
        + "    </users>\n    <quotas>\n        <default><interval><duration>3600</duration>"
        "<queries>0</queries><errors>0</errors><result_rows>0</result_rows>"
        "<read_rows>0</read_rows><execution_time>0</execution_time></interval></default>\n"
        "    </quotas>\n</yandex>\n"
    )


def _main() -> None:
    env = os.environ
    limits = AnalystLimits(
        max_execution_time=int(env.get("QUEUECAST_WAREHOUSE_ANALYST_MAX_EXECUTION_TIME", 60)),
        max_memory_usage=int(env.get("QUEUECAST_WAREHOUSE_ANALYST_MAX_MEMORY_USAGE",
                                     2_000_000_000)),
        max_rows_to_read=int(env.get("QUEUECAST_WAREHOUSE_ANALYST_MAX_ROWS_TO_READ", 0)),
    )
    print(users_xml(
        analyst_password=env.get("QUEUECAST_WAREHOUSE_ANALYST_PASSWORD", "analyst"),
        writer_password=env.get("QUEUECAST_WAREHOUSE_WRITER_PASSWORD", "writer"),
        analyst=limits,
    ), end="")


if __name__ == "__main__":
    _main()
