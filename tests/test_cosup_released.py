"""Decoding with existing (Gen, Embseq) checkpoints in the layout of the released ones
(kaist-ai/{cosupervision,separate_supervision}-{gen,emb_seq}-Llama2_7b): tiny models saved as
the official code saves them (a base tokenizer without a pad token, then `<PAD>`, `[Cs]`,
`[Ce]`, `[Ret]` added with the official calls, embeddings resized; Embseq saved with an LM head
that the inference drops), loaded, checked, embedded and decoded; and the released config,
whose DAG trains nothing."""

from pathlib import Path

import pytest
import torch
from transformers import AutoTokenizer, LlamaForCausalLM
from workflow_runs import ROOT

from repro import config as rc
from repro.config import ConfigError
from repro.cosup_checkpoints import pair_tokenizer
from repro.data.synthetic import generate
from repro.io import read_jsonl, write_jsonl
from repro.methods.cosup import CoSup
from repro.models import build_tiny
from repro.predict import predict_run
from repro.retrieval import embed_shard, load_encoder, merge_shards

SMALL = {"hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1,
         "num_attention_heads": 2, "num_key_value_heads": 1}


def official_tokenizer(base: Path):
    """The tokenizer as run_train.py 78-85 builds it."""
    tok = AutoTokenizer.from_pretrained(base)
    tok.add_special_tokens(dict(pad_token="<PAD>"))
    tok.add_special_tokens({"additional_special_tokens": ["[Cs]", "[Ce]"]})
    tok.add_special_tokens({"additional_special_tokens": ["[Ret]"]})
    return tok


def save_checkpoint(base: Path, out: Path, seed: int, tokenizer=None) -> None:
    torch.manual_seed(seed)
    model = LlamaForCausalLM.from_pretrained(base)
    torch.nn.init.normal_(model.model.layers[0].mlp.down_proj.weight)  # differ from the base
    model.resize_token_embeddings(len(official_tokenizer(base)))
    model.save_pretrained(out)
    if tokenizer is not None:
        tokenizer.save_pretrained(out)


@pytest.fixture(scope="module")
def layout(tmp_path_factory):
    root = tmp_path_factory.mktemp("released")
    res = generate("knowledge", {"n_people": 30, "n_companies": 12, "n_train": 40,
                                 "n_validation": 4, "n_test": 6}, 0)
    texts = [t for r in res.splits["train"] for t in (r["source"], r["target"])]
    texts += [p["text"] for p in res.passages]
    m = build_tiny("m", {"family": "llama", "config": SMALL, "tokenizer": {"vocab_size": 200}},
                   texts, root / "tiny")
    base = root / "llama2"  # the stand-in for meta-llama/Llama-2-7b-hf: no pad token
    tok = AutoTokenizer.from_pretrained(m["path"])
    tok.pad_token = None
    tok.save_pretrained(base)
    LlamaForCausalLM.from_pretrained(m["path"]).save_pretrained(base)
    official = official_tokenizer(base)
    save_checkpoint(base, root / "gen", 1)  # no tokenizer beside it
    save_checkpoint(base, root / "gen_tok", 1, official)
    save_checkpoint(base, root / "emb_seq", 2, official)
    write_jsonl(root / "data" / "test.jsonl", res.splits["test"])
    write_jsonl(root / "data" / "passages.jsonl", res.passages)
    return root, base, official


def test_tokenizer_of_the_pair_has_the_official_ids(layout):
    root, base, official = layout
    want = official.convert_tokens_to_ids(["<PAD>", "[Cs]", "[Ce]", "[Ret]"])
    n = len(AutoTokenizer.from_pretrained(base))
    assert want == [n, n + 1, n + 2, n + 3]
    for gen in ("gen", "gen_tok"):  # the base tokenizer + the tokens, or Gen's own
        tok = pair_tokenizer(str(root / gen), str(base))
        assert tok.convert_tokens_to_ids(["<PAD>", "[Cs]", "[Ce]", "[Ret]"]) == want
        assert tok.pad_token_id == want[0] and len(tok) == len(official)
    with pytest.raises(ConfigError, match=r"gen: no tokenizer beside the model.*"
                                          "checkpoints.tokenizer"):
        pair_tokenizer(str(root / "gen"))


def test_load_for_decoding_and_the_embseq_without_its_lm_head(layout):
    root, base, official = layout
    opts = {"supervision": "separate", "checkpoints": {
        "gen": str(root / "gen"), "embseq": str(root / "emb_seq"), "tokenizer": str(base)}}
    gen, tok = CoSup.load_for_decoding(None, "decoder-only", opts, {})
    assert gen.get_input_embeddings().weight.shape[0] == len(tok) == len(official)
    enc, enc_tok, settings = load_encoder({"embseq": str(root / "emb_seq"), "gen": str(
        root / "gen"), "tokenizer": str(base), "settings": {"eos": False},
        "reads_gen_sequences": True})
    causal = LlamaForCausalLM.from_pretrained(root / "emb_seq")
    assert not hasattr(enc, "lm_head") and settings.eos is False
    for k, v in enc.state_dict().items():
        torch.testing.assert_close(causal.model.state_dict()[k], v)
    assert enc_tok.convert_tokens_to_ids("[Ret]") == tok.convert_tokens_to_ids("[Ret]")


def test_a_pair_whose_tokenizers_disagree_is_refused(layout, tmp_path):
    root, base, official = layout
    other = AutoTokenizer.from_pretrained(base)  # [Ret] first: another id
    other.add_special_tokens({"additional_special_tokens": ["[Ret]", "[Cs]", "[Ce]"]})
    save_checkpoint(base, tmp_path / "bad_emb", 3, other)
    opts = {"checkpoints": {"gen": str(root / "gen_tok"), "embseq": str(tmp_path / "bad_emb")}}
    with pytest.raises(ConfigError, match=r"gen_tok \(Gen\) and .*bad_emb \(Embseq\): their "
                                          r"tokenizers disagree.*\[Ret\]"):
        CoSup.load_for_decoding(None, "decoder-only", opts, {})
    plain = AutoTokenizer.from_pretrained(base)  # no special tokens at all
    save_checkpoint(base, tmp_path / "plain_emb", 3, plain)
    opts = {"supervision": "separate",
            "checkpoints": {"gen": str(root / "gen_tok"), "embseq": str(tmp_path / "plain_emb")}}
    with pytest.raises(ConfigError, match="missing from Embseq's tokenizer"):
        CoSup.load_for_decoding(None, "decoder-only", opts, {})
    # a Gen whose embeddings lack the special tokens' rows
    LlamaForCausalLM.from_pretrained(base).save_pretrained(tmp_path / "small_gen")
    opts = {"checkpoints": {"gen": str(tmp_path / "small_gen"), "embseq": str(root / "emb_seq"),
                            "tokenizer": str(base)}}
    with pytest.raises(ConfigError, match="small_gen: .* embedding rows but the tokenizer"):
        CoSup.load_for_decoding(None, "decoder-only", opts, {})


@pytest.mark.parametrize("supervision", ["ntp+nsp", "separate"])
def test_decoding_the_test_set_with_a_checkpoint_pair(layout, tmp_path, supervision):
    root, base, _ = layout
    opts = {"supervision": supervision, "retrieve_first": True, "embed_eos": False,
            "max_retrievals": None, "checkpoints": {
                "gen": str(root / "gen"), "embseq": str(root / "emb_seq"),
                "tokenizer": str(base)}}
    from repro.methods.cosup_options import encoder_settings

    spec = {"embseq": str(root / "emb_seq"), "gen": str(root / "gen"), "tokenizer": str(base),
            "settings": encoder_settings(opts), "reads_gen_sequences": supervision == "separate"}
    embed_shard(spec, root / "data" / "passages.jsonl", 0, 1, tmp_path / "emb" / "0")
    merge_shards([tmp_path / "emb" / "0"], tmp_path / "index")
    resolved = {"run": {"task": "knowledge", "dataset": "d", "model": "llama2_7b",
                        "method": "cosup", "variant": supervision, "seed": 2},
                "method": {"name": "cosup", "options": opts},
                "training": {"max_source_len": 64, "prompt_suffix": "",
                             "prompt_template": "{instruction}## Input:\n\n{source}"
                                                "## Output:\n\n", "instruction": "Answer."},
                "decoding": {"batch_size": 4, "max_new_tokens": 6, "num_beams": 1,
                             "do_sample": True, "temperature": 0.7, "top_p": 0.9, "top_k": 50,
                             "seed": 2, "max_total_len": 512}}
    out = tmp_path / "predictions.jsonl"
    predict_run(resolved, "decoder-only", None, root / "data" / "test.jsonl", out,
                {"index": tmp_path / "index", "passages": root / "data" / "passages.jsonl"})
    rows = read_jsonl(out)
    assert len(rows) == 6
    for r in rows:
        assert set(r) == {"id", "hypothesis", "raw_output", "retrieved", "spans",
                          "decode_seconds"}
        assert r["raw_output"].startswith("[Ret]") and len(r["retrieved"]) >= 1
        assert not any(m in r["hypothesis"] for m in ("[Ret]", "[Cs]", "[Ce]"))
    again = tmp_path / "again.jsonl"  # sampling seeded by decoding.seed
    predict_run(resolved, "decoder-only", None, root / "data" / "test.jsonl", again,
                {"index": tmp_path / "index", "passages": root / "data" / "passages.jsonl"})
    assert [r["raw_output"] for r in read_jsonl(again)] == [r["raw_output"] for r in rows]


def test_released_config_trains_nothing():
    cfg = rc.load_config(ROOT / "config" / "paper_cosup_released.yaml")
    runs = rc.expand_runs(cfg)
    assert len(runs) == 20 and {r.variant for r in runs} == {"separate", "ntp+nsp"}
    assert rc.training_runs(cfg) == [] and all(rc.decode_only(cfg, r) for r in runs)
    models = {r.variant: rc.cosup_models(cfg, r) for r in runs if r.dataset == "kilt_nq"}
    assert models["separate"]["gen"] == "kaist-ai/separate_supervision-gen-Llama2_7b"
    assert models["separate"]["embseq"] == "kaist-ai/separate_supervision-emb_seq-Llama2_7b"
    assert models["ntp+nsp"]["gen"] == "kaist-ai/cosupervision-gen-Llama2_7b"
    assert models["ntp+nsp"]["embseq"] == "kaist-ai/cosupervision-emb_seq-Llama2_7b"
    assert all(m["tokenizer"] == "meta-llama/Llama-2-7b-hf" and not m["inputs"]
               for m in models.values())
    # the test sets need no training split; decoding on one GPU
    assert all('"test_only":true' in rc.dataset_params(cfg, d, "filter")
               for d in cfg["datasets"])
    assert rc.model_resources(cfg, "llama2_7b", stage="decode")["gpu"] == 1
    sep = next(r for r in runs if r.variant == "separate")
    assert rc.resolve(cfg, sep)["decoding"]["max_total_len"] == 512
