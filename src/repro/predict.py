"""Decoding of a trained run on the test split: batched, with the method's decoding strategy."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch

from repro.batching import encode_record, prompt_batch, prompt_options
from repro.decoding import seed_decoding
from repro.device import device
from repro.io import DataError, read_jsonl, write_jsonl
from repro.methods import get_method, method_class


def predict_records(model, tokenizer, method, records: list[dict], arch: str,
                    resolved: dict[str, Any]) -> list[dict]:
    """Decode records in batches of decoding.batch_size; one prediction dict per record."""
    training, decoding = resolved["training"], resolved["decoding"]
    bs = decoding["batch_size"]
    preds: list[dict] = []
    for i in range(0, len(records), bs):
        chunk = records[i : i + bs]
        feats = [encode_record(r, tokenizer, arch, training["max_source_len"], 1,
                               training["prompt_suffix"], **prompt_options(training))
                 for r in chunk]
        batch = {k: v.to(model.device) for k, v in
                 prompt_batch(feats, tokenizer.pad_token_id, arch).items()}
        outs = method.decode_records(model, chunk, batch, decoding)
        for rec, out in zip(chunk, outs, strict=True):
            preds.append({"id": rec["id"], **out})
    return preds


def predict_run(resolved: dict[str, Any], arch: str, model_dir: Path | None, test_path: Path,
                out_path: Path, inputs: dict[str, Path] | None = None) -> dict[str, Any]:
    """Decode test_path with the run's model (`model_dir`: its trained model; None for a method
    that decodes with checkpoints named in its options); `inputs` are the method's extra
    decoding inputs (co-supervision: {"index": index directory, "passages": passages.jsonl,
    "embseq": the Embseq of `separate`}). Sampling is seeded with decoding.seed (else the run's
    seed)."""
    records = read_jsonl(test_path)
    if not records:
        raise DataError(f"{test_path}: no records to decode")
    run = resolved["run"]
    inputs = dict(inputs or {})
    if resolved.get("search"):  # the passage index's search settings (nprobe, ef_search)
        inputs["search"] = resolved["search"]
    cls = method_class(run["method"])
    options = cls.options_for_variant(resolved["method"]["options"], run.get("variant"))
    model, tokenizer = cls.load_for_decoding(str(model_dir) if model_dir else None, arch,
                                             options, inputs)
    model = model.to(device()).eval()
    method = get_method(run["method"], resolved["method"]["options"], tokenizer, arch,
                        run.get("variant"))
    method.prepare_decoding(Path(model_dir) if model_dir else None, inputs)
    start = time.perf_counter()
    seed_decoding(resolved["decoding"])
    with torch.inference_mode():
        preds = predict_records(model, tokenizer, method, records, arch, resolved)
    write_jsonl(out_path, preds)
    return {"n": len(preds), "seconds": time.perf_counter() - start}
