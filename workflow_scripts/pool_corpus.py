"""Snakemake adapter: chunk KILT's knowledge source into a pool's passage corpus."""

from pathlib import Path

import _src_path  # noqa: F401  (repro from src/)

from repro.corpus import chunk_knowledge_source
from repro.workflow import start

corpus = start(snakemake)["corpus"]  # noqa: F821
print(chunk_knowledge_source(Path(corpus["path"]), Path(snakemake.output[0]), corpus["words"]))  # noqa: F821
