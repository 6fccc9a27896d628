"""Machine description and the Markdown results file."""

from __future__ import annotations

import os
import platform
import subprocess
from datetime import UTC, datetime
from pathlib import Path

__all__ = ["append_results", "machine"]

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def machine() -> str:
    """CPU model, cores, memory, OS and Python of this machine, on one line."""
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        memory = f"{pages / 2**30:.0f} GiB"
    except (ValueError, OSError):
        memory = "? GiB"
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, check=False).stdout.strip() or "uncommitted"
    except OSError:
        commit = "unknown"
    return (f"{model}, {os.cpu_count()} cores, {memory}, {platform.system()} "
            f"{platform.release()}, Python {platform.python_version()}, commit {commit}")


def append_results(title: str, header: list[str], rows: list[list[str]], notes: str = "") -> str:
    """Append a dated table to ``bench/RESULTS.md`` and return the Markdown written."""
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [f"## {title} ({stamp})", "", f"Machine: {machine()}", ""]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "---|" * len(header))
    lines.extend("| " + " | ".join(row) + " |" for row in rows)
    if notes:
        lines += ["", notes]
    text = "\n".join(lines) + "\n\n"
    if not RESULTS.exists():
        RESULTS.write_text("# Benchmark results\n\nNewest last; written by `scripts/bench.sh`."
                           "\n\n", encoding="utf-8")
    with RESULTS.open("a", encoding="utf-8") as out:
        out.write(text)
    return text
