"""The TRUE NLI wrapper on a tiny local seq2seq model: input format, batching, bf16, errors."""

import pytest
import torch
from tiny_models import TRUE_PAIRS

from repro.metrics import true_nli as tn

GOOD = [(p, h, a) for p, h, a in TRUE_PAIRS if a != "2"]


def test_input_format_is_the_official_one():
    # eval_metric.py 557: "premise: {} hypothesis: {}".format(passage, claim)
    assert tn.nli_input("A b.", "C.") == "premise: A b. hypothesis: C."


def test_judgements_and_batching_equal_one_by_one(tiny_true_nli):
    tn.load_true_nli.cache_clear()
    nli = tn.load_true_nli(str(tiny_true_nli), "cpu")
    prem, hyp = [p for p, _, _ in GOOD], [h for _, h, _ in GOOD]
    ids = [f"q{i}" for i in range(len(GOOD))]
    expected = [a == "1" for *_, a in GOOD]
    one_by_one = [nli.judge([p], [h], [i], batch_size=1)[0]
                  for p, h, i in zip(prem, hyp, ids, strict=True)]
    assert one_by_one == expected
    for batch in (2, 3, len(GOOD)):  # padded batches of mixed lengths
        assert nli.judge(prem, hyp, ids, batch_size=batch) == expected
    assert nli.model.dtype == torch.float32  # auto on CPU


def test_bf16_path_forced_on_cpu(tiny_true_nli):
    """The GPU's bf16 load runs the same code on CPU (dtype forced)."""
    tn.load_true_nli.cache_clear()
    nli = tn.load_true_nli(str(tiny_true_nli), "cpu", "bfloat16")
    assert nli.model.dtype == torch.bfloat16
    out = nli.judge([p for p, _, _ in GOOD], [h for _, h, _ in GOOD], ["x"] * len(GOOD), 4)
    assert len(out) == len(GOOD) and all(isinstance(v, bool) for v in out)
    assert tn.resolve_dtype("auto", cuda=True) == "bfloat16"
    assert tn.resolve_dtype("auto", cuda=False) == "float32"
    with pytest.raises(ValueError, match="metrics.true_nli.dtype"):
        tn.resolve_dtype("fp8", cuda=True)
    tn.load_true_nli.cache_clear()


def test_answer_neither_0_nor_1_names_the_example(tiny_true_nli):
    tn.load_true_nli.cache_clear()
    nli = tn.load_true_nli(str(tiny_true_nli), "cpu")
    p, h, _ = TRUE_PAIRS[-1]
    with pytest.raises(tn.TrueOutputError, match=r"answered '2'.*example 'odd-7'"):
        nli.judge([TRUE_PAIRS[0][0], p], [TRUE_PAIRS[0][1], h], ["ok-1", "odd-7"], 2)


def test_truncation_at_max_length(tiny_true_nli):
    tn.load_true_nli.cache_clear()
    nli = tn.load_true_nli(str(tiny_true_nli), "cpu", max_length=8)
    enc = nli.tokenizer([tn.nli_input(TRUE_PAIRS[0][0] * 5, "x")], truncation=True,
                        max_length=nli.max_length)
    assert len(enc.input_ids[0]) == 8
    tn.load_true_nli.cache_clear()


def test_judge_from_config_reports_why_it_cannot_run(tmp_path, tiny_true_nli):
    tn.load_true_nli.cache_clear()
    assert tn.judge_from_config({}) == (
        None, "no TRUE NLI model configured (set metrics.true_nli.model)")
    judge, why = tn.judge_from_config({"model": str(tmp_path / "absent")})
    assert judge is None and why == f"TRUE NLI model path not found: {tmp_path / 'absent'}"
    judge, why = tn.judge_from_config({"model": "google/t5_xxl_true_nli_mixture"})
    assert judge is None and why.startswith(
        "cannot load TRUE NLI model google/t5_xxl_true_nli_mixture")
    assert why.endswith("(download it with scripts/predownload.py)")
    judge, why = tn.judge_from_config({"model": str(tiny_true_nli), "device": "cpu",
                                       "batch_size": 2})
    assert why is None
    assert judge([TRUE_PAIRS[2][0]], [TRUE_PAIRS[2][1]], ["a"]) == [True]
    tn.load_true_nli.cache_clear()
