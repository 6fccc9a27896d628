"""Execute the analyst notebooks: ``python -m notebooks.run [--warehouse URL] [--out DIR]``.

Each jupytext percent file is converted to a notebook, run cell by cell with nbclient in a
kernel of this interpreter, and written executed to ``DIR/<name>.ipynb``. ``-p NAME=VALUE``
overrides a parameter (a cell is added after the one tagged ``parameters`` in each notebook
that has it). The exit status
is 1 when a cell fails; the message names the notebook, the cell and its line in the file.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import jupytext
import nbformat
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import AsyncKernelManager
from jupyter_core.utils import run_sync
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

__all__ = [
    "FOLDER", "KERNEL", "NOTEBOOKS", "NotebookError", "declared", "execute", "main", "parameters",
]

FOLDER = Path(__file__).resolve().parent
"""Where the notebooks live; kernels start here so that ``import analyst`` works."""

NOTEBOOKS: tuple[str, ...] = ("interval_kpis", "agent_performance")
"""The notebooks run by default, in order (``FOLDER/<name>.py``)."""

KERNEL = "queuecast-notebooks"
"""The private kernel spec: this interpreter, whatever ``python3`` spec is installed."""


class NotebookError(RuntimeError):
    """A notebook cell raised; the message names the notebook, cell, line and error."""


@dataclass(frozen=True)
class _Cell:
    index: int
    line: int | None  # the ``# %%`` line in the .py file; None for an injected cell


def parameters(pairs: Sequence[str]) -> dict[str, object]:
    """``NAME=VALUE`` pairs; a VALUE that is a Python literal (``None``, ``20``, ``["a"]``)
    is that value, anything else is the text itself."""
    values: dict[str, object] = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        if not sep or not name.isidentifier():
            raise SystemExit(f"-p {pair!r}: write NAME=VALUE, e.g. -p START=2026-03-02")
        try:
            values[name] = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            values[name] = text
    return values


@contextmanager
def _kernel_manager() -> Iterator[AsyncKernelManager]:
    """A kernel manager whose only spec runs ipykernel on ``sys.executable``; the kernel is
    shut down on exit (it may hold a chdb folder, which one process at a time can own)."""
    with tempfile.TemporaryDirectory(prefix="queuecast-kernel-") as folder:
        spec = Path(folder) / KERNEL
        spec.mkdir()
        (spec / "kernel.json").write_text(json.dumps({
            "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": f"Python {sys.version_info.major}.{sys.version_info.minor} "
                            "(queuecast)",
            "language": "python",
            "metadata": {"debugger": False},
        }), encoding="utf-8")
        sockets = ({"transport": "ipc", "ip": str(Path(folder) / "kernel")}
                   if os.name == "posix" else {})  # local sockets: no TCP ports to others
        km = AsyncKernelManager(kernel_name=KERNEL, **sockets,
                                kernel_spec_manager=KernelSpecManager(kernel_dirs=[folder]))
        try:
            yield km
        finally:  # nbclient leaves a kernel it did not create running
            if km.has_kernel:
                run_sync(km.shutdown_kernel)()


def _read(path: Path) -> tuple[nbformat.NotebookNode, list[_Cell]]:
    """The notebook of a percent file and where each cell's code starts in the file."""
    text = path.read_text(encoding="utf-8")
    notebook = jupytext.reads(text, fmt="py:percent")
    markers = [n for n, line in enumerate(text.splitlines(), 1) if line.startswith("# %%")]
    if len(markers) != len(notebook.cells):
        return notebook, [_Cell(i, None) for i in range(len(notebook.cells))]
    return notebook, [_Cell(i, line + 1) for i, line in enumerate(markers)]


def _parameters_cell(notebook: nbformat.NotebookNode) -> int | None:
    return next((i for i, cell in enumerate(notebook.cells)
                 if "parameters" in cell.metadata.get("tags", [])), None)


def declared(path: Path) -> set[str]:
    """The names the cell tagged ``parameters`` of the notebook assigns."""
    notebook, _ = _read(path)
    index = _parameters_cell(notebook)
    if index is None:
        return set()
    tree = ast.parse(notebook.cells[index].source)
    return {target.id for node in tree.body if isinstance(node, ast.Assign | ast.AnnAssign)
            for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
            if isinstance(target, ast.Name)}


def _load(path: Path, values: dict[str, object]) -> tuple[nbformat.NotebookNode, list[_Cell]]:
    """The notebook with the overrides it declares injected after its parameters cell."""
    notebook, cells = _read(path)
    own = {name: value for name, value in values.items() if name in declared(path)}
    index = _parameters_cell(notebook)
    if own and index is not None:
        source = "\n".join(f"{name} = {value!r}" for name, value in own.items())
        cell = nbformat.v4.new_code_cell(source, metadata={"tags": ["injected-parameters"]})
        notebook.cells.insert(index + 1, cell)
        cells.insert(index + 1, _Cell(index + 1, None))
        cells = [_Cell(i, c.line) for i, c in enumerate(cells)]
    return notebook, cells


def _failure(path: Path, cell: _Cell, source: str, error: CellExecutionError) -> str:
    where = f"line {cell.line}" if cell.line is not None else "injected parameters"
    first = next((s for s in source.splitlines() if s.strip()), "")
    return (f"{path.name}: cell {cell.index + 1} ({where}: {first.strip()[:70]}) raised "
            f"{error.ename}: {error.evalue}")


def execute(path: Path, out: Path, *, values: dict[str, object] | None = None,
            progress: Progress | None = None, timeout_s: int = 600) -> Path:
    """Run the notebook of ``path`` and write it executed to ``out/<stem>.ipynb``.

    The notebook is written even when a cell fails (up to that cell), then
    :class:`NotebookError` is raised.
    """
    notebook, cells = _load(path, values or {})
    target = out / f"{path.stem}.ipynb"
    task = progress.add_task(path.stem, total=len(cells)) if progress else None
    failure: str | None = None
    with _kernel_manager() as km, ExitStack() as stack:
        client = NotebookClient(notebook, km=km, timeout=timeout_s, kernel_name=KERNEL,
                                resources={"metadata": {"path": str(FOLDER)}})
        try:
            stack.enter_context(client.setup_kernel())
        except RuntimeError as error:
            raise NotebookError(f"{path.name}: the kernel ({sys.executable} -m "
                                f"ipykernel_launcher) did not start: {error}") from None
        for cell in cells:
            try:
                client.execute_cell(notebook.cells[cell.index], cell.index)
            except CellExecutionError as error:
                failure = _failure(path, cell, notebook.cells[cell.index].source, error)
                break
            finally:
                if progress is not None and task is not None:
                    progress.advance(task)
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                       "language": "python"}
    out.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, target)
    if failure is not None:
        raise NotebookError(f"{failure}\n  executed notebook: {target}")
    return target


def main(argv: Sequence[str] | None = None) -> int:
    """The command line; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m notebooks.run", description=__doc__.split(
        "\n\n")[0])
    parser.add_argument("names", nargs="*", metavar="NAME", default=list(NOTEBOOKS),
                        help=f"notebooks to run (default: {' '.join(NOTEBOOKS)})")
    parser.add_argument("--warehouse", metavar="URL",
                        help="chdb:///path or clickhouse://...; default: $QUEUECAST_WAREHOUSE, "
                             "else the queuecast settings")
    parser.add_argument("--out", metavar="DIR", type=Path, default=Path("build/notebooks"),
                        help="where the executed .ipynb files go (default: build/notebooks)")
    parser.add_argument("-p", "--param", metavar="NAME=VALUE", action="append", default=[],
                        help="override a parameter, e.g. -p START=2026-03-02 (repeatable)")
    parser.add_argument("--timeout", metavar="S", type=int, default=600,
                        help="seconds a cell may run (default: 600)")
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if not (FOLDER / f"{n}.py").is_file()]
    if unknown:
        parser.error(f"no notebook {', '.join(unknown)}; choose from {', '.join(NOTEBOOKS)}")
    if args.warehouse:
        os.environ["QUEUECAST_WAREHOUSE"] = args.warehouse  # the kernels inherit it
    values = parameters(args.param)
    known = set().union(*(declared(FOLDER / f"{n}.py") for n in args.names))
    if stray := sorted(set(values) - known):
        parser.error(f"no notebook among {', '.join(args.names)} has the parameter "
                     f"{', '.join(stray)}; they have {', '.join(sorted(known))}")
    console = Console(stderr=True)
    failed: list[str] = []
    with Progress(TextColumn("{task.description:<20}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console) as progress:
        for name in args.names:
            began = time.perf_counter()
            try:
                target = execute(FOLDER / f"{name}.py", args.out, values=values,
                                 progress=progress, timeout_s=args.timeout)
            except NotebookError as error:
                failed.append(name)
                progress.console.print(f"[red]FAILED[/red] {error}")
            else:
                progress.console.print(f"[green]ok[/green] {name} -> {target} "
                                       f"({time.perf_counter() - began:.1f} s)")
    if failed:
        console.print(f"[red]{len(failed)} notebook(s) failed: {', '.join(failed)}[/red]")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
