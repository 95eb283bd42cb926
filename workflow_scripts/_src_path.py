"""Make `repro` importable from the repository's src/ even where it is not pip-installed
(e.g. in a conda environment built from envs/*.yaml). Snakemake puts this folder on sys.path."""

import sys
from pathlib import Path

SRC = str(Path(__file__).resolve().parents[1] / "src")
if SRC not in sys.path:
    sys.path.insert(0, SRC)
