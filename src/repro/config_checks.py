"""What a config is checked for when Snakemake builds the DAG (also in a dry run), beyond the
schema's types: every key of an override section and every method option is one the pipeline
reads, and every local-looking model path exists. Each fault is a ConfigError naming the key,
so that a typo stops the run before its first job instead of falling back to a default.

Light: no torch, no transformers (repro.methods loads its option classes only).
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import yaml

from repro.errors import ConfigError

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "config" / "schema.yaml"
# A hub id: `name` or `owner/name` of letters, digits, -, _, . (no leading ./ or trailing /).
HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?$")


def schema() -> dict[str, Any]:
    with open(SCHEMA_PATH, encoding="utf-8") as f:
        return yaml.safe_load(f)


def schema_error(config: dict[str, Any]) -> str | None:
    """The config's most relevant schema violation as `config: <dotted path>: <message>` (not
    the schema and the whole config, which Snakemake's own message prints); None if valid."""
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import best_match

    error = best_match(Draft202012Validator(schema()).iter_errors(config))
    if error is None:
        return None
    where = ".".join(str(p) for p in error.absolute_path) or "(top level)"
    return f"config: {where}: {error.message}"


def check_config(config: dict[str, Any], run_options: list[tuple[Any, dict[str, Any]]]
                 ) -> None:
    """Every check of this module; the first fault raises ConfigError naming its key.
    `run_options`: each run (repro.runs.Run) with its resolved method options."""
    check_overrides(config)
    check_method_options(config, run_options)
    check_synthetic_options(config)
    check_model_paths(config)


# --- override sections ---------------------------------------------------------------------

def _without_defaults(node: Any) -> Any:
    """A schema with its `default`s removed: an override section holds only what it sets."""
    if isinstance(node, dict):
        return {k: _without_defaults(v) for k, v in node.items() if k != "default"}
    if isinstance(node, list):
        return [_without_defaults(v) for v in node]
    return node


def _strict_section(name: str, root: dict[str, Any]) -> dict[str, Any]:
    section = copy.deepcopy(root["properties"][name])
    section["additionalProperties"] = False
    section.pop("description", None)
    return _without_defaults(section)


def override_sections(config: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """(where, section, mapping) of every place that overrides `training` or `decoding`:
    models.<m>.training, datasets.<d>.training, experiments[i].training and a variant's
    `training` and `decoding`."""
    out = []
    for name, model in config.get("models", {}).items():
        out.append((f"models.{name}.training", "training", model.get("training") or {}))
    for name, d in config.get("datasets", {}).items():
        out.append((f"datasets.{name}.training", "training", d.get("training") or {}))
    for i, exp in enumerate(config.get("experiments", [])):
        out.append((f"experiments[{i}].training", "training", exp.get("training") or {}))
        for method, variants in exp.get("methods", {}).items():
            for variant, over in variants.items():
                for section in ("training", "decoding"):
                    where = f"experiments[{i}].methods.{method}.{variant}.{section}"
                    out.append((where, section, (over or {}).get(section) or {}))
    return out


def check_overrides(config: dict[str, Any]) -> None:
    """Each override section holds only keys (and values) its top-level section allows."""
    from jsonschema import Draft202012Validator

    root = schema()
    validators = {s: Draft202012Validator(_strict_section(s, root))
                  for s in ("training", "decoding")}
    for where, section, mapping in override_sections(config):
        error = next(iter(validators[section].iter_errors(mapping)), None)
        if error is not None:
            path = ".".join([where, *(str(p) for p in error.absolute_path)])
            raise ConfigError(f"config: {path}: {error.message}")


# --- method options ------------------------------------------------------------------------

def check_method_options(config: dict[str, Any],
                         run_options: list[tuple[Any, dict[str, Any]]]) -> None:
    """Every run's resolved method options (methods.<m> under its variant's, given with the
    run in `run_options`) are options of its method (repro.methods.check_options), and every
    `methods` entry names a method."""
    from repro.methods import METHOD_CLASSES, check_options

    for name in config.get("methods") or {}:
        if name not in METHOD_CLASSES:
            raise ConfigError(f"config: methods.{name}: unknown method (known: "
                              f"{', '.join(sorted(METHOD_CLASSES))})")
    checked: set[tuple[str, str, str]] = set()
    for run, options in run_options:
        key = (run.method, run.variant, repr(sorted(options.items())))
        if key in checked:
            continue
        checked.add(key)
        try:
            check_options(run.method, options, run.variant)
        except ConfigError as e:
            raise ConfigError(f"config: methods.{run.method} / variant '{run.variant}' "
                              f"(run {run.id}): {e}") from None


# --- synthetic sources ---------------------------------------------------------------------

def check_synthetic_options(config: dict[str, Any]) -> None:
    """A synthetic source's `options` are options of its generator."""
    from repro.data.synthetic import check_options
    from repro.io import DataError

    for name, d in config.get("datasets", {}).items():
        source = d.get("source") or {}
        if source.get("kind") != "synthetic":
            continue
        try:
            check_options(source.get("generator", d["task"]), source.get("options") or {})
        except DataError as e:
            raise ConfigError(f"config: datasets.{name}.source.options: {e}") from None


# --- model paths ---------------------------------------------------------------------------

def looks_local(path: str) -> bool:
    """A path to read from disk rather than a hub id: absolute, ~, ./ or ../, a trailing /,
    or a path that exists."""
    return (path.startswith(("/", "./", "../", "~")) or path.endswith("/")
            or Path(path).expanduser().exists())


def model_path_problem(name: str, path: str) -> str | None:
    """Why models.<name>.path cannot work, or None: a local-looking path that is not a
    directory, or a string that is neither a directory nor a hub id (`owner/name`)."""
    key = f"models.{name}.path"
    if looks_local(path):
        if not Path(path).expanduser().is_dir():
            return (f"config: {key}: local model directory '{path}' does not exist (relative "
                    f"paths are read from the working directory, {Path.cwd()}); set it to a "
                    "checkpoint directory or a hub id")
        return None
    if not HUB_ID.fullmatch(path):
        return (f"config: {key}: '{path}' is neither an existing directory nor a hub id "
                "(owner/name); set it to a checkpoint directory or a hub id")
    return None


def check_model_paths(config: dict[str, Any]) -> None:
    """Every hf model's path is an existing directory or looks like a hub id (a hub id is
    resolved offline by its base_model job, which names the model on failure)."""
    for name, model in config.get("models", {}).items():
        if model.get("kind") != "hf" or not model.get("path"):
            continue
        problem = model_path_problem(name, str(model["path"]))
        if problem:
            raise ConfigError(problem)
