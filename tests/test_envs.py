"""The conda environment files (snakemake --sdm conda) pin what the lock files pin, inline:
Snakemake copies an env file elsewhere before it creates the environment, so a relative
`-r requirements.lock` would not resolve there."""

from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def lock_lines(name: str) -> list[str]:
    text = (ROOT / "envs" / name).read_text(encoding="utf-8")
    return [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]


def pip_pins(name: str) -> list[str]:
    env = yaml.safe_load((ROOT / "envs" / name).read_text(encoding="utf-8"))
    return next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))


@pytest.mark.parametrize("env, lock", [("main.yaml", "requirements.lock"),
                                       ("comet.yaml", "comet.lock")])
def test_env_file_inlines_its_lock(env, lock):
    pins = pip_pins(env)
    assert pins == lock_lines(lock)
    assert all("==" in p for p in pins) and not any(p.startswith("-") for p in pins)


def test_every_rule_names_an_env_file_that_exists():
    for rules in sorted((ROOT / "rules").glob("*.smk")):
        for line in rules.read_text(encoding="utf-8").splitlines():
            if line.strip().startswith('"../envs/'):
                assert (ROOT / "rules" / line.strip().strip('",')).resolve().is_file(), line
