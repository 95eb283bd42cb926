"""Pretraining of tiny models (repro.pretrain, models.<m>.pretrain): the corpus and its rows,
T5's span corruption and the causal-LM batch against hand-written ones, both losses against a
hand computation, the job's outputs, resume after a kill, runs that start from the pretrained
weights, the config checks, and params that rerun exactly the pretraining and its runs."""

from __future__ import annotations

import copy
import math
from pathlib import Path

import pytest
import torch
from test_train import KillAt
from tiny_models import tiny_config, train_config

from repro import config as rc
from repro import pretrain_jobs as pj
from repro import train as train_mod
from repro.base_model import prepare_base_model
from repro.batching import IGNORE
from repro.checkpoints import checkpoint_dirs
from repro.config import ConfigError
from repro.io import DataError, read_json, read_jsonl, write_jsonl
from repro.models import build_tiny, load_model, load_tokenizer
from repro.pretrain import (
    SENTINEL,
    Pretraining,
    corpus_texts,
    corrupt,
    noise_mask,
    pack,
    pretrain_run,
    sentinel_count,
    span_counts,
)

ROOT = Path(__file__).resolve().parents[1]
T5, LLAMA = "encoder-decoder", "decoder-only"
WORDS = "the red cat sees a dog small bird eats big blue".split()
SPANS = {"noise_density": 0.15, "mean_span_length": 3.0}


def records(n: int) -> list[dict]:
    return [{"id": f"r{i}", "source": " ".join(WORDS[(i + k) % 11] for k in range(5)) + f" {i}",
             "target": " ".join(WORDS[(2 * i + k) % 11] for k in range(3))} for i in range(n)]


def pretrain_cfg(family: str, **over) -> dict:
    return {"kind": "tiny", "family": family, "config": tiny_config(family),
            "tokenizer": {"vocab_size": 60},
            "pretrain": {"corpus": ["d"], "objective": "auto", "steps": 6, "batch_size": 4,
                         "max_len": 16, "learning_rate": 1e-3, "warmup_ratio": 0.0,
                         "save_steps": 2, "seed": 0, **SPANS, **over}}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> list[Path]:
    d = tmp_path_factory.mktemp("corpus")
    write_jsonl(d / "train.jsonl", records(40))
    write_jsonl(d / "passages.jsonl", [{"id": "P0", "title": "Bo", "text": "Bo has a red cat."}])
    return [d / "train.jsonl", d / "passages.jsonl"]


def tokenizer_of(family: str, out: Path, max_len: int = 16):
    extra = ([SENTINEL.format(i) for i in range(sentinel_count(max_len, **_spans()))]
             if family == "t5" else [])
    build_tiny("m", pretrain_cfg(family), [" ".join(WORDS)] * 20, out, extra_special=extra)
    arch = T5 if family == "t5" else LLAMA
    return load_tokenizer(str(out), arch), load_model(str(out), arch)


def _spans() -> dict:
    return {"density": SPANS["noise_density"], "mean_span": SPANS["mean_span_length"]}


# --- corpus and rows -----------------------------------------------------------------------------


def test_corpus_is_each_source_target_and_passage_once(tmp_path):
    write_jsonl(tmp_path / "train.jsonl", [
        {"id": "a", "source": "the cat", "target": "le chat"},
        {"id": "b", "source": "the cat", "target": "A"}])
    write_jsonl(tmp_path / "passages.jsonl", [{"id": "P1", "title": "T", "text": "Bo is 3."}])
    texts = corpus_texts([tmp_path / "train.jsonl", tmp_path / "passages.jsonl"])
    assert texts == ["the cat", "le chat", "A", "Bo is 3."]  # a pair is two documents
    write_jsonl(tmp_path / "empty.jsonl", [])
    with pytest.raises(DataError, match="empty.jsonl"):
        corpus_texts([tmp_path / "empty.jsonl"])


@pytest.mark.parametrize("family", ["t5", "llama"])
def test_rows_are_the_documents_with_their_special_tokens_cut_to_max_len(family, tmp_path):
    tok, _ = tokenizer_of(family, tmp_path)
    texts = ["the red cat", "a dog", "big blue bird eats"]
    plain = [tok(t, add_special_tokens=False)["input_ids"] for t in texts]
    if family == "t5":  # `text </s>`
        stream = [i for ids in plain for i in [*ids, tok.eos_token_id]]
    else:  # `<s> text </s>`
        stream = [i for ids in plain for i in [tok.bos_token_id, *ids, tok.eos_token_id]]
    arch = T5 if family == "t5" else LLAMA
    rows = pack(texts, tok, arch, 7)
    assert rows == [stream[i:i + 7] for i in range(0, len(stream), 7)]
    assert [len(r) for r in rows[:-1]] == [7] * (len(rows) - 1)
    # a last row of one token has nothing to corrupt or predict: dropped
    tail = (len(stream) - 1) or 1
    assert pack(texts, tok, arch, tail) == [stream[:tail]]


# --- span corruption -----------------------------------------------------------------------------


def test_span_counts_and_sentinels_as_t5_counts_them():
    assert span_counts(128, 0.15, 3.0) == (19, 6)  # round(19.2) noise tokens, round(19/3) spans
    assert span_counts(16, 0.15, 3.0) == (2, 1)
    assert span_counts(2, 0.15, 3.0) == (1, 1)  # at least one noise token, one kept
    assert sentinel_count(128, 0.15, 3.0) == max(span_counts(n, 0.15, 3.0)[1]
                                                 for n in range(2, 129))


@pytest.mark.parametrize("length", [2, 5, 16, 40, 128])
def test_noise_mask_alternates_kept_and_noise_spans(length):
    gen = torch.Generator().manual_seed(length)
    for _ in range(20):
        mask = noise_mask(length, 0.15, 3.0, gen)
        noise, spans = span_counts(length, 0.15, 3.0)
        assert len(mask) == length and sum(mask) == noise
        assert not mask[0] and mask[-1]  # kept first, noise last
        starts = [i for i in range(length) if mask[i] and not mask[i - 1]]
        assert len(starts) == spans


def test_corruption_of_one_row_by_hand():
    #        5     6     7     8     9     10     11
    mask = [False, False, True, True, False, True, False]
    inputs, target = corrupt([5, 6, 7, 8, 9, 10, 11], mask, sentinels=[90, 91], eos=1)
    assert inputs == [5, 6, 90, 9, 91, 11, 1]
    assert target == [90, 7, 8, 91, 10, 1]


def uncorrupt(inputs: list[int], target: list[int], sentinels: list[int]) -> list[int]:
    """The row back from its corruption: each sentinel of the input replaced by its span."""
    spans: dict[int, list[int]] = {}
    current: list[int] = []
    for tok in target[:-1]:
        if tok in sentinels:
            current = spans.setdefault(tok, [])
        else:
            current.append(tok)
    return [t for tok in inputs[:-1] for t in (spans[tok] if tok in sentinels else [tok])]


def test_span_corruption_batch_and_loss_by_hand(tmp_path):
    tok, model = tokenizer_of("t5", tmp_path)
    obj = Pretraining("span_corruption", tok, T5, {"max_len": 16, **SPANS})
    assert obj.sentinels == tok.convert_tokens_to_ids([SENTINEL.format(0)])
    rows = pack(["the red cat sees a dog", "small bird eats big blue", "a dog"], tok, T5, 16)
    torch.manual_seed(0)
    batch = obj.collate([{"input_ids": r} for r in rows])
    pad = tok.pad_token_id
    for i, row in enumerate(rows):
        width = int(batch["attention_mask"][i].sum())
        inputs = batch["input_ids"][i, :width].tolist()
        target = [t for t in batch["labels"][i].tolist() if t != IGNORE]
        assert inputs[-1] == target[-1] == tok.eos_token_id
        assert uncorrupt(inputs, target, obj.sentinels) == row
        noise, spans = span_counts(len(row), 0.15, 3.0)
        assert len(target) == noise + spans + 1 and len(inputs) == len(row) - noise + spans + 1
        assert (batch["input_ids"][i, width:] == pad).all()
    # the loss: mean over target tokens of -log p(token | input, the target before it)
    labels = batch["labels"]
    decoder_in = torch.cat([torch.full_like(labels[:, :1], pad), labels[:, :-1]], 1)
    decoder_in = decoder_in.masked_fill(decoder_in == IGNORE, pad)
    with torch.no_grad():
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                       decoder_input_ids=decoder_in).logits
        nll = [-torch.log_softmax(logits[b, t], -1)[labels[b, t]].item()
               for b in range(len(rows)) for t in range(labels.shape[1])
               if labels[b, t] != IGNORE]
        loss, _ = obj.loss(model, batch)
    assert loss.item() == pytest.approx(sum(nll) / len(nll), abs=1e-6)


def test_causal_batch_and_loss_by_hand(tmp_path):
    tok, model = tokenizer_of("llama", tmp_path)
    obj = Pretraining("causal_lm", tok, LLAMA, {"max_len": 16, **SPANS})
    bos, eos, pad = tok.bos_token_id, tok.eos_token_id, tok.pad_token_id
    rows = [[bos, 10, 11, 12, eos], [bos, 13, eos]]
    batch = obj.collate([{"input_ids": r} for r in rows])
    assert batch["input_ids"].tolist() == [[bos, 10, 11, 12, eos], [bos, 13, eos, pad, pad]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]]
    assert batch["labels"].tolist() == [[bos, 10, 11, 12, eos], [bos, 13, eos, IGNORE, IGNORE]]
    with torch.no_grad():
        logits = model(input_ids=batch["input_ids"],
                       attention_mask=batch["attention_mask"]).logits
        # every next token of each row: 4 + 2 predictions
        nll = [-torch.log_softmax(logits[b, t], -1)[row[t + 1]].item()
               for b, row in enumerate(rows) for t in range(len(row) - 1)]
        loss, _ = obj.loss(model, batch)
    assert len(nll) == 6
    assert loss.item() == pytest.approx(sum(nll) / len(nll), abs=1e-6)


# --- the job -------------------------------------------------------------------------------------


def pretrain(corpus, out: Path, family: str = "t5", kill_at: int | None = None, **over):
    return pretrain_run("m", pretrain_cfg(family, **over), corpus, out / "model",
                        out / "log.jsonl", out / "checkpoints",
                        callbacks=[KillAt(kill_at)] if kill_at else [])


def weights(path: Path, arch: str) -> dict[str, torch.Tensor]:
    return load_model(str(path), arch).state_dict()


@pytest.fixture(scope="module")
def pretrained(corpus, tmp_path_factory):
    """family -> (directory of an uninterrupted pretraining, its summary), built once."""
    done: dict[str, tuple[Path, dict]] = {}

    def get(family: str) -> tuple[Path, dict]:
        if family not in done:
            out = tmp_path_factory.mktemp(f"pretrained_{family}")
            done[family] = out, pretrain(corpus, out, family)
        return done[family]

    return get


@pytest.mark.parametrize("family", ["t5", "llama"])
def test_pretraining_writes_model_tokenizer_summary_and_log(corpus, pretrained, family):
    out, summary = pretrained(family)
    model = out / "model"
    assert {"config.json", "model.safetensors", "tokenizer.json", "pretrain.json"} <= {
        p.name for p in model.iterdir()}
    saved = read_json(model / "pretrain.json")
    assert saved["objective"] == ("span_corruption" if family == "t5" else "causal_lm")
    assert saved["steps"] == summary["steps"] == 6
    assert saved["documents"] == len(corpus_texts(corpus)) == 40 + 11 + 1
    tok = load_tokenizer(str(model), T5 if family == "t5" else LLAMA)
    assert (SENTINEL.format(0) in tok.all_special_tokens) == (family == "t5")
    log = read_jsonl(out / "log.jsonl")
    assert [r["step"] for r in log if "loss" in r] == [1, 2, 3, 4, 5, 6]
    assert all(math.isfinite(r["loss"]) for r in log if "loss" in r)
    assert not (out / "checkpoints").exists()  # removed once the model is in place


@pytest.mark.parametrize("family", ["t5", "llama"])
def test_killed_pretraining_resumes_to_the_same_weights(corpus, pretrained, tmp_path, family):
    arch = T5 if family == "t5" else LLAMA
    with pytest.raises(KeyboardInterrupt):
        pretrain(corpus, tmp_path / "killed", family, kill_at=5)
    assert [p.name for p in checkpoint_dirs(tmp_path / "killed" / "checkpoints")] == [
        "checkpoint-4", "checkpoint-2"]
    resumed = pretrain(corpus, tmp_path / "killed", family)
    assert resumed["resumed_from"].endswith("checkpoint-4")
    full = weights(pretrained(family)[0] / "model", arch)
    again = weights(tmp_path / "killed/model", arch)
    for k, v in full.items():
        torch.testing.assert_close(again[k], v, rtol=0, atol=1e-6)


def test_checkpoints_of_another_pretrain_config_are_not_resumed(corpus, tmp_path):
    with pytest.raises(KeyboardInterrupt):
        pretrain(corpus, tmp_path, kill_at=3)
    assert pretrain(corpus, tmp_path, learning_rate=2e-3)["resumed_from"] is None


class Captured(Exception):
    """Raised when the trainer is built: the test has what it wanted."""


@pytest.mark.parametrize(("method", "options"), [("sft", {}),
                                                 ("warmup", {"n": 2, "num_beams": 2,
                                                             "warmup_len": 2})])
@pytest.mark.parametrize("family", ["t5", "llama"])
def test_runs_start_from_the_pretrained_weights(corpus, pretrained, tmp_path, method, options,
                                               family):
    arch = T5 if family == "t5" else LLAMA
    pre = pretrained(family)[0] / "model"
    cfg = pretrain_cfg(family)
    manifest = prepare_base_model("m", cfg, None, tmp_path / "base", pre)
    assert manifest["path"] == str(pre)
    assert manifest["pretrained"]["objective"] in ("span_corruption", "causal_lm")
    data = corpus[0].parent
    resolved = train_config(method, options, seed=5, variant="v", max_source_len=16,
                            max_target_len=16)
    seen = {}
    orig = train_mod.MethodTrainer.__init__

    def init(self, *a, **kw):
        seen.update({k: v.detach().clone() for k, v in kw["model"].state_dict().items()})
        seen["vocab"] = len(kw["processing_class"])
        raise Captured

    train_mod.MethodTrainer.__init__ = init
    try:
        with pytest.raises(Captured):
            train_mod.train_run(resolved, manifest, data, tmp_path / "run/model",
                                tmp_path / "run/log.jsonl", tmp_path / "run/checkpoints")
    finally:
        train_mod.MethodTrainer.__init__ = orig
    start = weights(pre, arch)
    assert seen["vocab"] == len(load_tokenizer(str(pre), arch))
    for k, v in start.items():
        torch.testing.assert_close(seen[k], v, rtol=0, atol=0)
    # not the initial weights the pretraining started from (the same build, the same seed)
    extra = ([SENTINEL.format(i) for i in range(sentinel_count(16, **_spans()))]
             if family == "t5" else [])
    build_tiny("m", cfg, corpus_texts(corpus), tmp_path / "init", seed=0, extra_special=extra)
    init = weights(tmp_path / "init", arch)
    assert init.keys() == start.keys()
    assert all(not torch.equal(init[k], v) for k, v in start.items())


# --- config --------------------------------------------------------------------------------------


def demo() -> dict:
    return rc.load_config(ROOT / "config" / "config.yaml")


def test_demo_models_pretrain_with_their_family_objective():
    cfg = demo()
    assert pj.objective_of(cfg["models"]["tiny_t5"]) == "span_corruption"
    assert pj.objective_of(cfg["models"]["tiny_llama"]) == "causal_lm"
    files = pj.corpus_files(cfg, "tiny_llama")
    assert "results/data/knowledge/synth_kb/passages.jsonl" in files
    assert "results/data/translation/synth_en_xb/train.jsonl" in files
    assert not any("test" in f or "validation" in f for f in files)


@pytest.mark.parametrize(("edit", "message"), [
    (lambda c: c["models"]["tiny_t5"].update(kind="hf", path="t5-small"),
     "models.tiny_t5.pretrain: only tiny models pretrain"),
    (lambda c: c["models"]["tiny_t5"]["pretrain"].update(objective="causal_lm"),
     "models.tiny_t5.pretrain.objective"),
    (lambda c: c["models"]["tiny_t5"]["pretrain"].update(corpus=["nope"]),
     "models.tiny_t5.pretrain.corpus: unknown dataset 'nope'"),
    (lambda c: c["models"]["tiny_t5"]["pretrain"].update(corpus=["synth_kb_unseen"]),
     "name 'synth_kb'"),
    (lambda c: c["models"]["tiny_t5"]["resources"].update(gpu=2),
     "models.tiny_t5.resources.gpu"),
])
def test_a_pretrain_section_that_cannot_run_is_named(edit, message):
    cfg = copy.deepcopy(demo())
    cfg["models"]["tiny_t5"]["pretrain"] = copy.deepcopy(cfg["models"]["tiny_t5"]["pretrain"])
    edit(cfg)
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
        rc.check_references(cfg)


def test_an_edit_to_one_models_pretraining_changes_only_its_jobs_params():
    cfg = demo()
    edited = copy.deepcopy(cfg)
    edited["models"]["tiny_t5"]["pretrain"] = {**cfg["models"]["tiny_t5"]["pretrain"],
                                               "steps": 7}
    for model in ("tiny_t5", "tiny_llama"):
        changed = rc.model_params(cfg, model) != rc.model_params(edited, model)
        assert changed == (model == "tiny_t5")  # the pretrain and base_model jobs' params
    # the runs' own params hold no model section: tiny_t5's runs rerun through their inputs
    # (a new pretrained model -> base_model -> train), tiny_llama's not at all
    for run in rc.training_runs(cfg):
        assert rc.train_params(cfg, run) == rc.train_params(edited, run), run.id
    for name in cfg["datasets"]:
        assert rc.dataset_params(cfg, name, "filter") == rc.dataset_params(edited, name,
                                                                           "filter")
