"""Runs and where their files live: the one mapping from a run to its directory and back.

A run is (task, dataset, model, method, variant, seed); its id reads
`{task}/{dataset}/{model}/{method}/{variant}/seed{seed}` and its directory is `<root>/<id>/`
(root `<results_dir>/runs`, see `results_dir`: each config writes under its own results
root). Rules build their paths with `dir_pattern` (Snakemake wildcards for the
fields not fixed), the report reads run ids back with `Run.from_path`, which needs no root: a
path holds a run id where its rightmost `seed<n>` part ends one (a file of the run directory,
or a per-run file `<...>/<id>.<ext>`, e.g. results/plots/training/<id>.png).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import PurePath
from typing import Any

RUNS_ROOT = "results/runs"  # the runs of the embedded default (results_dir "results")
DEFAULT_RESULTS = "results"
# Config files under this name write to results/ itself: the embedded default, and a deployed
# module's config/config.yaml (snakemake-workflows' convention).
DEFAULT_CONFIG_STEM = "config"
FIELDS: tuple[str, ...] = ("task", "dataset", "model", "method", "variant", "seed")
_SEED = re.compile(r"seed(\d+)(\.[^/]*)?")


@dataclass(frozen=True, order=True)
class Run:
    task: str
    dataset: str
    model: str
    method: str
    variant: str
    seed: int

    @property
    def id(self) -> str:
        return "/".join((self.task, self.dataset, self.model, self.method, self.variant,
                         f"seed{self.seed}"))

    @property
    def dir(self) -> str:
        """The run's directory under the default root (see `run_dir`)."""
        return run_dir(self)

    def fields(self) -> dict[str, Any]:
        return asdict(self)

    def on(self, dataset: str) -> Run:
        """The same run on another dataset."""
        return replace(self, dataset=dataset)

    @classmethod
    def from_wildcards(cls, wc: Any) -> Run:
        return cls(*(getattr(wc, f) for f in FIELDS[:-1]), int(wc.seed))

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Run:
        """The run of a mapping holding the run fields (a result record, metrics.json's run)."""
        return cls(*(str(record[f]) for f in FIELDS[:-1]), int(record["seed"]))

    @classmethod
    def from_id(cls, run_id: str) -> Run:
        """The run of an id; ValueError naming the id when it is not one."""
        parts = str(run_id).split("/")
        seed = _SEED.fullmatch(parts[-1]) if len(parts) == len(FIELDS) else None
        if seed is None or seed.group(2) or not all(parts[:-1]):
            raise ValueError(f"not a run id: {run_id!r} (expected {id_pattern()})")
        return cls(*parts[:-1], int(seed.group(1)))

    @classmethod
    def from_path(cls, path: str | PurePath) -> Run:
        """The run of a file in its directory (any depth) or of a per-run file `<id>.<ext>`:
        the rightmost `seed<n>` part of the path and the five parts before it."""
        parts = PurePath(path).parts
        for i in range(len(parts) - 1, len(FIELDS) - 2, -1):
            seed = _SEED.fullmatch(parts[i])
            if seed and (seed.group(2) is None or i == len(parts) - 1):
                return cls.from_id("/".join((*parts[i - len(FIELDS) + 1:i], f"seed{seed[1]}")))
        raise ValueError(f"{path}: no run id in this path (expected .../{id_pattern()}/...)")


def run_dir(run: Run, root: str = RUNS_ROOT) -> str:
    """The directory of a run's files: `<root>/<run id>`."""
    return f"{root}/{run.id}"


def id_pattern(**fixed: Any) -> str:
    """The run id as a Snakemake path pattern: a `{field}` wildcard for each field not fixed."""
    unknown = set(fixed) - set(FIELDS)
    if unknown:
        raise ValueError(f"not run fields: {sorted(unknown)}")
    parts = [str(fixed[f]) if f in fixed else f"{{{f}}}" for f in FIELDS]
    return "/".join((*parts[:-1], f"seed{parts[-1]}"))


def dir_pattern(root: str = RUNS_ROOT, **fixed: Any) -> str:
    """A run directory as a Snakemake path pattern (see `id_pattern`)."""
    return f"{root}/{id_pattern(**fixed)}"


def default_results_dir(configfiles: list[str] | tuple[str, ...]) -> str:
    """The results root of a config read from `configfiles`: `results` for no file or a file
    named config.yaml, else `results/<stems joined by +>` (config/paper_warmup.yaml ->
    results/paper_warmup), so that two configs never write each other's tables."""
    stems = [PurePath(str(f)).stem for f in configfiles]
    if not stems or stems == [DEFAULT_CONFIG_STEM]:
        return DEFAULT_RESULTS
    return f"{DEFAULT_RESULTS}/{'+'.join(stems)}"


def results_dir(config: Mapping[str, Any]) -> str:
    """The config's results root: its `results_dir` (the workflow sets it to the default of
    its config files when unset), else `results`."""
    return str(config.get("results_dir") or DEFAULT_RESULTS).rstrip("/")


def runs_root(config: Mapping[str, Any]) -> str:
    """Where the config's run directories are: `<results_dir>/runs`."""
    return f"{results_dir(config)}/runs"
