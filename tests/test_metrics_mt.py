"""BLEU / chrF++ against sacrebleu on the same input."""

import pytest
import sacrebleu

from repro.io import DataError
from repro.metrics.mt import bleu_chrf, bleu_tokenizer

EN_HYP = ["The cat sat on the mat.", "It is raining today in Paris!"]
EN_REF = ["The cat is sitting on the mat.", "Today it is raining in Paris."]
ZH_HYP = ["猫坐在垫子上。", "今天巴黎下雨了。"]
ZH_REF = ["那只猫坐在垫子上。", "今天巴黎在下雨。"]
RU_HYP = ["Кошка сидит на коврике.", "Сегодня в Париже идёт дождь."]
RU_REF = ["Кошка сидела на коврике.", "В Париже сегодня дождь."]


@pytest.mark.parametrize("hyps,refs", [(EN_HYP, EN_REF), (RU_HYP, RU_REF)])
def test_equals_sacrebleu(hyps, refs):
    out = bleu_chrf(hyps, refs)
    assert out["bleu"]["value"] == pytest.approx(sacrebleu.corpus_bleu(hyps, [refs]).score)
    chrf = sacrebleu.corpus_chrf(hyps, [refs], word_order=2).score
    assert out["chrf"]["value"] == pytest.approx(chrf)
    assert "tok:13a" in out["bleu"]["signature"]
    assert "nw:2" in out["chrf"]["signature"]  # chrF++
    assert "version:" in out["bleu"]["signature"]


def test_input_not_mutated():
    hyps, refs = list(RU_HYP), list(RU_REF)
    bleu_chrf(hyps, refs, "ru")
    assert hyps == RU_HYP and refs == RU_REF


def test_chinese_uses_zh_tokenizer():
    zh = bleu_chrf(ZH_HYP, ZH_REF, target_lang="zh")
    assert "tok:zh" in zh["bleu"]["signature"]
    expected = sacrebleu.corpus_bleu(ZH_HYP, [ZH_REF], tokenize="zh").score
    assert zh["bleu"]["value"] == pytest.approx(expected)
    default = bleu_chrf(ZH_HYP, ZH_REF)
    assert "tok:13a" in default["bleu"]["signature"]
    assert zh["bleu"]["value"] != pytest.approx(default["bleu"]["value"])
    assert zh["chrf"]["value"] == pytest.approx(default["chrf"]["value"])  # chrF is tokenizer-free


def test_tokenizer_choice():
    assert bleu_tokenizer("zh") == bleu_tokenizer("zh-CN") == bleu_tokenizer("zh_Hans") == "zh"
    assert bleu_tokenizer("de") == bleu_tokenizer(None) == "13a"


def test_perfect_and_scale():
    out = bleu_chrf(EN_REF, EN_REF)
    assert out["bleu"]["value"] == pytest.approx(100.0)
    assert out["chrf"]["value"] == pytest.approx(100.0)


def test_empty_and_mismatch():
    assert bleu_chrf([], []) == {
        "bleu": {"skipped": "no examples"},
        "chrf": {"skipped": "no examples"},
    }
    with pytest.raises(DataError):
        bleu_chrf(EN_HYP, EN_REF[:1])
