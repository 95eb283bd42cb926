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
- `source.download` entries: a URL saved to `to` (a tar is extracted flat into `extract`), or a
  hub repo (`hf_repo`, `repo_type`, `revision`) snapshot into the directory `to`; with
  `expect` (file names) and `fallback` (another entry), the fallback is fetched when the repo
  cannot be had or lacks an expected file, and the script says which source it used (the
  co-supervision data: the official files, else Self-RAG's);
- co-supervision runs that decode with existing checkpoints (cosup option `checkpoints`):
  Gen and Embseq snapshots, and the tokenizer files of `checkpoints.tokenizer`. A model whose
  runs all decode with such checkpoints is not downloaded.
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

from repro.config import decode_only, expand_runs, load_config, method_options  # noqa: E402
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
        runs = expand_runs(cfg)
        for name, m in cfg["models"].items():
            mine = [r for r in runs if r.model == name]
            if mine and all(decode_only(cfg, r) for r in mine):
                continue  # only decoded with existing checkpoints
            if m["kind"] == "hf" and _is_hub_id(m["path"]):
                add({"what": "model", "name": name, "repo": m["path"],
                     "revision": m.get("revision")})
        for run in runs:
            ck = method_options(cfg, run).get("checkpoints") if run.method == "cosup" else None
            for role in ("gen", "embseq", "tokenizer"):
                if ck and ck.get(role) and _is_hub_id(ck[role]):
                    add({"what": "tokenizer" if role == "tokenizer" else "model",
                         "name": f"{run.variant}.{role}", "repo": ck[role], "revision": None})
        for name, d in cfg["datasets"].items():
            src = d["source"]
            for entry in src.get("download") or []:
                add({"what": "file", "dataset": name, **entry})
            if src["kind"] not in ("hf", "local"):
                continue
            for split in SPLITS:
                spec = split_source(src, split)
                if spec.get("absent"):  # a split the source does not have
                    continue
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
    if item["what"] in ("model", "tokenizer"):
        return f"{item['what']:<8} {item['name']}: {item['repo']}{rev}"
    if item["what"] == "dataset":
        conf = f" ({item['name']})" if item.get("name") else ""
        return f"dataset  {item['dataset']}: {item['repo']}{conf}{rev} split {item['split']}"
    src = item.get("url") or f"hub {item.get('repo_type', 'model')} {item['hf_repo']}{rev}"
    line = f"file     {item['dataset']}: {src} -> {item['to']}"
    if item.get("fallback"):
        other = describe({"dataset": item["dataset"], **item["fallback"], "what": "file"})
        line += f" (else {other[9:]})"
    return line


TOKENIZER_PATTERNS = ["tokenizer*", "special_tokens_map.json", "*.model", "added_tokens.json",
                      "config.json"]


def fetch(item: dict[str, Any], models_dir: Path | None) -> None:
    if item["what"] == "tokenizer":
        from huggingface_hub import snapshot_download

        snapshot_download(item["repo"], revision=item.get("revision"),
                          allow_patterns=TOKENIZER_PATTERNS)
        return
    if item.get("fallback") or item.get("expect"):
        print(f"  source used: {fetch_with_fallback(item)}", flush=True)
        return
    if item["what"] == "model":
        from huggingface_hub import snapshot_download

        local = models_dir / item["name"] if models_dir else None
        snapshot_download(item["repo"], revision=item.get("revision"),
                          local_dir=str(local) if local else None)
        if local:
            print(f"  set models.{item['name']}.path: {local}")
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


def fetch_with_fallback(item: dict[str, Any]) -> str:
    """Fetch the entry; when it fails or lacks a file of `expect`, its `fallback` (which may
    have its own). Returns the source used; raises when none has its files."""
    entry = {k: v for k, v in item.items() if k not in ("fallback", "expect")}
    name = entry.get("url") or entry.get("hf_repo")
    try:
        fetch({**entry, "what": "file"}, None)
        missing = [f for f in item.get("expect") or [] if not (Path(item["to"]) / f).is_file()]
        error = f"{name} lacks {missing}" if missing else None
    except Exception as e:  # noqa: BLE001 (the hub raises many kinds: say it, try the next)
        error = f"{name}: {type(e).__name__}: {e}"
    if error is None:
        return name
    if not item.get("fallback"):
        raise SystemExit(f"download failed and no fallback: {error}")
    print(f"  {error}; trying the fallback", flush=True)
    return fetch_with_fallback({"dataset": item.get("dataset"), **item["fallback"]})


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
