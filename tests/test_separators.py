"""Warmup separators against each model's tokenizer, as scripts/predownload.py checks them: a
separator the tokenizer's normaliser turns into plain space (mT5 and "\\n") is an error naming
the model, the separator and the runs; the paper config's separators survive."""

import copy
import importlib.util
from pathlib import Path

from tiny_models import TEXTS
from tokenizers import normalizers

from repro.config import load_config
from repro.models import ENCODER_DECODER, train_tokenizer
from repro.separators import separator_errors, warmup_separators

ROOT = Path(__file__).resolve().parents[1]
CFG = load_config(ROOT / "config" / "paper_warmup.yaml")


def mt5_like():
    """A tokenizer that knows every character of the separators, newline included, behind a
    normaliser that maps "\\n" to a space (as mT5's nmt_nfkc does)."""
    tok = train_tokenizer([*TEXTS, "a || b => c <sep> d | e\nf"], 80, ENCODER_DECODER)
    backend = tok.backend_tokenizer
    backend.normalizer = normalizers.Sequence([backend.normalizer,
                                               normalizers.Replace("\n", " ")])
    return tok


def with_newline(cfg):
    cfg = copy.deepcopy(cfg)
    exp = next(e for e in cfg["experiments"] if e["name"] == "ablation_separator")
    exp["methods"]["warmup"]["sep_newline"] = {"separator": "\n"}
    return cfg


def test_separators_of_the_paper_config():
    seps = warmup_separators(CFG)
    assert set(seps["mt5_base"]) == {" || ", " | ", " => ", " <sep> "}
    assert set(seps["t5_base"]) == set(seps["llama32_1b"]) == {" || "}
    assert len(seps["mt5_base"][" || "]) == 8 * 3 + 4 + 3 + 3  # main runs and other ablations


def test_newline_fails_with_an_mt5_like_tokenizer():
    tok = mt5_like()
    assert tok.decode(tok("\n", add_special_tokens=False)["input_ids"]) == ""
    assert separator_errors(CFG, lambda name: tok) == []
    errors = separator_errors(with_newline(CFG), lambda name: tok)
    assert len(errors) == 1
    assert errors[0].startswith("models.mt5_base: warmup separator '\\n' encodes to")
    assert "translation/de-en/mt5_base/warmup/sep_newline/seed0" in errors[0]
    assert separator_errors(with_newline(CFG), lambda name: tok, models={"t5_base"}) == []


def test_predownload_checks_the_downloaded_tokenizers(tmp_path):
    spec = importlib.util.spec_from_file_location("predownload",
                                                  ROOT / "scripts" / "predownload.py")
    predownload = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(predownload)
    tok = mt5_like()
    for name in CFG["models"]:  # as `--models-dir` leaves them
        tok.save_pretrained(tmp_path / name)
    assert predownload.check_separators(CFG, tmp_path) == []
    errors = predownload.check_separators(with_newline(CFG), tmp_path)
    assert len(errors) == 1 and "'\\n'" in errors[0]
