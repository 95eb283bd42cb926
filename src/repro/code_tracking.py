"""Which code a job runs, as a content hash: its rerun trigger for code.

Snakemake's own code trigger compares a script's mtime with the outputs (a `git checkout` or a
copy reruns the whole rule) and never looks at the modules the script imports (an edited metric
reruns nothing). The workflow turns that trigger off (`rerun-triggers` in the profiles) and gives
each job a `code` param instead: a hash of the content of its workflow script and of every
`repro` module the script reaches through `import` statements (anywhere in a module, so lazy
imports count) and through module names written as strings (`import_module("repro.x")`).

The methods are tracked per run: a train or predict job reaches the method classes only
through `repro.methods.METHOD_CLASSES` (strings), which this module leaves out of the script's
closure and adds back for the job's own method, so that an edit to methods/warmup.py reruns the
warmup runs and no sft run. The DAG-time modules (DAG_MODULES: repro.config and what turns the
config into params and resources) are left out of every job's code: what they decide reaches a
job as its params.

Static analysis, done once per DAG parse (about 100 small files): cheap.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from functools import cache
from pathlib import Path

SRC = Path(__file__).resolve().parents[1]  # the folder holding the `repro` package
SCRIPTS = SRC.parent / "workflow_scripts"  # the rules' scripts
PACKAGE = "repro"
# reached by name, per run: left out of a script's closure (see module docstring)
METHOD_MODULES = {"sft": "repro.methods.sft", "warmup": "repro.methods.warmup",
                  "cosup": "repro.methods.cosup"}
# The DAG-time modules: they turn the config into each job's params and resources, so an edit
# of theirs that changes what a job does changes its params; counted as a job's code, they
# would make an edit to any module they reach (a metric's availability check, say) retrain
# every model. Left out of every closure (a job's script may still call them).
DAG_MODULES = ("repro.config", "repro.config_checks", "repro.resources", "repro.pool_jobs",
               "repro.param_keys")


@cache
def module_file(name: str) -> Path | None:
    """The source file of a `repro` module or package (None if there is none)."""
    parts = name.split(".")
    if parts[0] != PACKAGE:
        return None
    base = SRC.joinpath(*parts)
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def _module_name(path: Path) -> str:
    rel = path.relative_to(SRC).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def _resolve_from(path: Path, module: str) -> str | None:
    """The absolute name of the module of a `from <module> import` (relative ones resolved)."""
    level = len(module) - len(module.lstrip("."))
    if level == 0:
        return module
    if not path.is_relative_to(SRC):
        return None
    package = _module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    base = package[: len(package) - (level - 1)]
    return ".".join(base + ([module[level:]] if module[level:] else []))


# import statements anywhere in a file (lazy ones in functions too), and quoted module names.
# A text scan, not a parse: ten times faster, and what it may over-read (an import written in
# a docstring) only tracks a file more.
_IMPORT = re.compile(r"^[ \t]*import[ \t]+([\w. \t,]+)", re.M)
_FROM = re.compile(r"^[ \t]*from[ \t]+([.\w]+)[ \t]+import[ \t]+(\([^)]*\)|[^\n#;]+)", re.M)
_QUOTED = re.compile(r"""["'](repro(?:\.[A-Za-z_][A-Za-z0-9_]*)+)["']""")


@cache
def imported_names(path: Path) -> frozenset[str]:
    """Module names a file imports (including `from m import x` as m and m.x, since x may be a
    submodule) and `repro.*` module names it holds as strings."""
    text = path.read_text(encoding="utf-8")
    names: set[str] = set()
    for m in _IMPORT.finditer(text):
        names.update(part.split()[0] for part in m.group(1).split(",") if part.strip())
    for m in _FROM.finditer(text):
        module = _resolve_from(path, m.group(1))
        if module:
            names.add(module)
            items = m.group(2).strip("() \t\n").replace("\n", " ").split(",")
            names.update(f"{module}.{item.split()[0]}" for item in items if item.strip())
    names.update(m.group(1) for m in _QUOTED.finditer(text))
    return frozenset(names)


def _parents(name: str) -> list[str]:
    """A module and the packages it lives in (importing a.b.c runs a/__init__, a/b/__init__)."""
    parts = name.split(".")
    return [".".join(parts[: i + 1]) for i in range(len(parts))]


@cache
def closure(entry: Path, exclude: frozenset[str] = frozenset()) -> frozenset[Path]:
    """The entry file and every repro module it reaches (and, for a workflow script, the
    helper modules beside it that it imports), except the modules in `exclude` (and what only
    they reach)."""
    seen: set[Path] = set()
    todo = [entry.resolve()]
    local_dir = entry.resolve().parent
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for name in imported_names(path):
            for module in _parents(name):
                if module in exclude:
                    break
                found = module_file(module)
                if found is None and "." not in module and path.parent == local_dir:
                    local = local_dir / f"{module}.py"  # e.g. workflow_scripts/_src_path.py
                    found = local if local.is_file() else None
                if found is not None and found not in seen:
                    todo.append(found)
    return frozenset(seen)


def digest(paths: Iterable[Path]) -> str:
    """sha256 (16 hex digits) over the files' names (relative to the repository) and contents,
    in name order: the same code gives the same digest in any checkout."""
    root = SRC.parent
    h = hashlib.sha256()
    for path in sorted(paths, key=lambda p: _label(p, root)):
        h.update(_label(path, root).encode())
        h.update(b"\0")
        h.update(path.read_bytes())
        h.update(b"\0")
    return h.hexdigest()[:16]


@cache
def _label(path: Path, root: Path) -> str:
    path = path.resolve()
    for base in (root, root.parent):
        if path.is_relative_to(base):
            return path.relative_to(base).as_posix()
    return path.as_posix()


@cache
def script_code(script: str | Path, method: str | None = None) -> str:
    """The code param of a job of the workflow script `script` (a path, or the name of one in
    workflow_scripts/): its closure without the method classes, plus the closure of `method`'s
    module when the job runs one."""
    return digest(_job_files(script, method))


def script_path(script: str | Path) -> Path:
    path = Path(script)
    return SCRIPTS / f"{script}.py" if path.suffix != ".py" else path


def _job_files(script: str | Path, method: str | None) -> set[Path]:
    script = script_path(script)
    # another method's module is never reached; nor are the DAG-time modules
    exclude = frozenset(METHOD_MODULES.values()) | frozenset(DAG_MODULES)
    files = set(closure(script, exclude))
    if method is not None:
        module = module_file(METHOD_MODULES[method])
        if module is None:
            raise ValueError(f"no module for method {method!r}")
        files |= closure(module, exclude)
    return files


def tracked_files(script: str | Path, method: str | None = None) -> list[str]:
    """The files behind `script_code(script, method)` (repository-relative), for tests."""
    return sorted(_label(p, SRC.parent) for p in _job_files(script, method))


def clear_caches() -> None:
    """Forget every file read (for tests that edit or move the sources)."""
    for fn in (module_file, imported_names, closure, _label, script_code):
        fn.cache_clear()
