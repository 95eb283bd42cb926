#!/usr/bin/env python
"""Download what a config needs from the hub, on a machine with network (a login node).

    python scripts/predownload.py config/paper_warmup.yaml [more configs] [--list]
        [--models-dir DIR]

--list prints the plan (one line per item: models, hub dataset splits, files) and touches
nothing. Otherwise:
- models (`models.<name>`, kind hf, a hub id): huggingface_hub.snapshot_download at the
  configured revision, into the hub cache, or into DIR/<name> with --models-dir (then set
  `models.<name>.path: DIR/<name>`; the script prints the lines);
- hub datasets (`source.kind: hf`, per split and join): datasets.load_dataset at the configured
  revision, which fills the datasets cache that the pipeline's offline jobs read (share
  HF_HOME between the login and compute nodes);
- `source.download` entries: a URL saved to `to` (a tar is extracted flat into `extract`, a
  .gz decompressed into `gunzip`), or a hub repo (`hf_repo`, `repo_type`, `revision`) snapshot
  into the directory `to`;
- candidate pools (`pools.<p>`): the files of `corpus.download` and `embeddings.download`
  (psgs_w100.tsv, KILT's knowledge source, Contriever's precomputed embeddings) and the
  retriever checkpoint (`retriever.path`, a hub id).
Run it from the directory you run Snakemake in: relative `to` paths are relative to it.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tarfile
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from repro.config import load_config  # noqa: E402
from repro.data.schema import SPLITS  # noqa: E402
from repro.data.sources import split_source  # noqa: E402

BUILDERS = {"json", "csv", "parquet", "text", "arrow"}


def _is_hub_id(path: str) -> bool:
    return not path.startswith(("/", ".", "~")) and not Path(path).exists() and "/" in path


def plan(configs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every model, hub dataset split and file the configs need, without duplicates."""
    items: dict[str, dict[str, Any]] = {}

    def add(item: dict[str, Any]) -> None:  # one item per download, whichever dataset needs it
        key = repr(sorted((k, str(v)) for k, v in item.items() if k != "dataset"))
        items.setdefault(key, item)

    for cfg in configs:
        for name, m in cfg["models"].items():
            if m["kind"] == "hf" and _is_hub_id(m["path"]):
                add({"what": "model", "name": name, "repo": m["path"],
                     "revision": m.get("revision")})
        for name, pool in (cfg.get("pools") or {}).items():
            for entry in [*(pool["corpus"].get("download") or []),
                          *((pool.get("embeddings") or {}).get("download") or [])]:
                add({"what": "file", "dataset": f"pool {name}", **entry})
            path = (pool.get("retriever") or {}).get("path", "facebook/contriever-msmarco")
            if _is_hub_id(path):
                add({"what": "model", "name": f"{name}_retriever", "repo": path,
                     "revision": (pool.get("retriever") or {}).get("revision")})
        for name, d in cfg["datasets"].items():
            src = d["source"]
            for entry in src.get("download") or []:
                add({"what": "file", "dataset": name, **entry})
            if src["kind"] not in ("hf", "local"):
                continue
            for split in SPLITS:
                spec = split_source(src, split)
                for s in (spec, {**spec, "kind": "hf", **(spec.get("join") or {})}
                          if spec.get("join") else None):
                    if not s or s.get("kind") != "hf" or s["path"] in BUILDERS:
                        continue
                    if _is_hub_id(s["path"]):
                        add({"what": "dataset", "dataset": name, "repo": s["path"],
                             "name": s.get("name"), "split": s.get("split"),
                             "revision": s.get("revision")})
    return list(items.values())


def describe(item: dict[str, Any]) -> str:
    rev = f"@{item['revision']}" if item.get("revision") else ""
    if item["what"] == "model":
        return f"model    {item['name']}: {item['repo']}{rev}"
    if item["what"] == "dataset":
        conf = f" ({item['name']})" if item.get("name") else ""
        return f"dataset  {item['dataset']}: {item['repo']}{conf}{rev} split {item['split']}"
    src = item.get("url") or f"hub {item.get('repo_type', 'model')} {item['hf_repo']}{rev}"
    return f"file     {item['dataset']}: {src} -> {item['to']}"


def fetch(item: dict[str, Any], models_dir: Path | None) -> None:
    if item["what"] == "model":
        from huggingface_hub import snapshot_download

        local = models_dir / item["name"] if models_dir else None
        snapshot_download(item["repo"], revision=item.get("revision"),
                          local_dir=str(local) if local else None)
        if local:
            key = (f"pools.{item['name'][: -len('_retriever')]}.retriever.path"
                   if item["name"].endswith("_retriever") else f"models.{item['name']}.path")
            print(f"  set {key}: {local}")
    elif item["what"] == "dataset":
        import datasets

        datasets.load_dataset(item["repo"], item.get("name"), split=item["split"],
                              revision=item.get("revision"))
    elif item.get("hf_repo"):
        from huggingface_hub import snapshot_download

        snapshot_download(item["hf_repo"], repo_type=item.get("repo_type", "dataset"),
                          revision=item.get("revision"), local_dir=item["to"])
    else:
        to = Path(item["to"])
        to.parent.mkdir(parents=True, exist_ok=True)
        tmp = to.with_name(to.name + ".part")
        with urllib.request.urlopen(item["url"]) as r, open(tmp, "wb") as f:
            shutil.copyfileobj(r, f)
        tmp.replace(to)
        if item.get("gunzip"):
            import gzip

            out = Path(item["gunzip"])
            with gzip.open(to, "rb") as src_gz, open(out.with_name(out.name + ".part"),
                                                      "wb") as dst:
                shutil.copyfileobj(src_gz, dst)
            out.with_name(out.name + ".part").replace(out)
        if item.get("extract"):
            dest = Path(item["extract"])
            dest.mkdir(parents=True, exist_ok=True)
            with tarfile.open(to) as tar:
                for member in tar.getmembers():
                    if member.isfile():
                        src = tar.extractfile(member)
                        assert src is not None
                        with src, open(dest / Path(member.name).name, "wb") as out:
                            shutil.copyfileobj(src, out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("configs", nargs="+", type=Path)
    ap.add_argument("--list", action="store_true", help="print the plan and download nothing")
    ap.add_argument("--models-dir", type=Path, help="save models as directories here")
    args = ap.parse_args(argv)
    items = plan([load_config(c) for c in args.configs])
    for item in items:
        print(describe(item), flush=True)
        if not args.list:
            fetch(item, args.models_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
