"""The import structure of src/repro: no cycles (imports inside functions included), and the
modules that Snakemake imports while it parses the DAG load neither pandas nor matplotlib."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
# What rules/common.smk imports (a test below keeps this list in step with the file).
DAG_IMPORTS = ("repro.code_tracking", "repro.config", "repro.config_files", "repro.data.schema",
               "repro.io", "repro.launch",
               "repro.metrics.availability", "repro.param_keys", "repro.pool_jobs",
               "repro.pretrain_jobs",
               "repro.report.ablations", "repro.report.summary", "repro.resources", "repro.runs",
               "repro.tasks")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted((SRC / "repro").rglob("*.py"))}


def imported(source: str, name: str, known: set[str], package: str | None = None) -> set[str]:
    """The repro modules that `source` (module `name`) imports anywhere in its body, functions
    included: for `from a import b` the module a.b when it is one, else a."""
    package = name.rpartition(".")[0] if package is None else package
    out: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative import
                parts = package.split(".")
                base = ".".join([*parts[: len(parts) - node.level + 1], *([base] if base else [])])
            for a in node.names:
                sub = f"{base}.{a.name}"
                out.add(sub if sub in known else base)
    return {m for m in out if m in known and m != name}


def import_graph() -> dict[str, set[str]]:
    mods = modules()
    return {name: imported(path.read_text(encoding="utf-8"), name, set(mods),
                           name if path.name == "__init__.py" else None)
            for name, path in mods.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the graph as [a, b, ..., a], or None (depth-first search)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt):], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_cycle_finder_finds_a_hidden_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycle(graph) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
    # an import inside a function counts; `from a import b` is a.b when that is a module
    source = "def f():\n    from pkg.x import y, v\n    import pkg.z\n    from . import w\n"
    assert imported(source, "pkg.m", {"pkg.x", "pkg.x.y", "pkg.z", "pkg.w"}) == {
        "pkg.x.y", "pkg.x", "pkg.z", "pkg.w"}


def test_no_import_cycle_in_repro():
    graph = import_graph()
    assert len(graph) > 30 and graph["repro.config"]  # the walk sees the package
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_dag_imports_are_light():
    """Parsing the DAG imports common.smk's modules: no pandas, matplotlib, numpy or torch
    among them (Snakemake itself loads pandas; what matters is that we add nothing heavy)."""
    common = (SRC.parent / "rules" / "common.smk").read_text(encoding="utf-8")
    lines = [ln for ln in common.splitlines() if ln.startswith(("from repro", "import repro"))]
    assert imported("\n".join(lines), "rules.common", set(modules())) == set(DAG_IMPORTS)
    code = (f"import sys; sys.path.insert(0, {str(SRC)!r}); "
            + "; ".join(f"import {m}" for m in DAG_IMPORTS)
            + "; print(sorted(m for m in ('pandas', 'matplotlib', 'numpy', 'torch')"
              " if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]"
