"""The paper configs' real sources, run through fetch and filter on fixtures in each dataset's
own schema: the hub loader is replaced by one that reads tests/data, and data/ paths point at
tests/data; then Russian and Chinese survive fetch, filter and scoring byte for byte."""

from __future__ import annotations

import copy
import json
import pickle
from pathlib import Path
from typing import Any

import pytest

from repro.config import load_config
from repro.data.filters import filter_dataset
from repro.data.schema import SPLITS, check_record
from repro.data.sources import fetch, write_fetch
from repro.io import DataError, read_jsonl

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).parent / "data"
WARMUP = load_config(ROOT / "config" / "paper_warmup.yaml")
COSUP = load_config(ROOT / "config" / "paper_cosup.yaml")

# (hub id, config name) -> fixture directory holding <dataset split>.jsonl
HUB = {
    ("wmt/wmt14", "de-en"): "wmt14_de_en",
    ("wmt/wmt14", "fr-en"): "wmt14_fr_en",
    ("wmt/wmt19", "ru-en"): "wmt19_ru_en",
    ("wmt/wmt19", "zh-en"): "wmt19_zh_en",
    ("EdinburghNLP/xsum", None): "xsum",
    ("facebook/kilt_tasks", "nq"): "kilt_nq",
    ("facebook/kilt_tasks", "triviaqa_support_only"): "kilt_triviaqa",
    ("facebook/kilt_tasks", "fever"): "kilt_fever",
    ("mandarjoshi/trivia_qa", "unfiltered.nocontext"): "trivia_qa",
}
for _code in ("deu_Latn", "fra_Latn", "rus_Cyrl", "zho_Hans"):
    HUB[("facebook/flores", f"{_code}-eng_Latn")] = f"flores_{_code}-eng_Latn"
LOCAL = {"data/cosup/": "cosup_train/", "data/alce/": "alce/", "data/logiqa2/": "logiqa2/",
         "data/kilt/": "kilt/"}
LOGIQA = {"train.txt": "train.jsonl", "dev.txt": "validation.jsonl", "test.txt": "test.jsonl"}


@pytest.fixture
def hub(monkeypatch, tmp_path):
    """datasets.load_dataset reading fixtures; records every (path, name, split, revision)."""
    import datasets

    real = datasets.load_dataset
    calls: list[tuple[Any, ...]] = []

    def fake(path, name=None, *, split, revision=None, data_files=None, cache_dir=None):
        calls.append((path, name, split, revision))
        d = DATA / HUB[(path, name)]
        return real("json", data_files={split: str(d / f"{split}.jsonl")}, split=split,
                    cache_dir=str(tmp_path / "cache"))

    monkeypatch.setattr(datasets, "load_dataset", fake)
    return calls


def localize(obj: Any) -> Any:
    """The config with its data/ paths pointing at tests/data and no train sampling."""
    if isinstance(obj, dict):
        out = {k: localize(v) for k, v in obj.items() if k != "sample"}
        if isinstance(out.get("slice"), list):  # held-out validation of a 3-row fixture
            out["slice"] = [0, -1] if out["slice"][0] == 0 else [-1, None]
        return out
    if isinstance(obj, list):
        return [localize(v) for v in obj]
    if isinstance(obj, str):
        for prefix, fixture in LOCAL.items():
            if obj.startswith(prefix):
                name = obj[len(prefix):]
                return str(DATA / fixture / LOGIQA.get(name, name))
    return obj


def run(config: dict, name: str, tmp_path: Path,
        expect: dict[str, int] | None = None) -> tuple[dict[str, list], list, dict]:
    """Fetch and filter the dataset's fixture. The config's expect_counts (the published sizes)
    are replaced by `expect`, the fixture's own sizes (none if unset)."""
    d = config["datasets"][name]
    res = fetch(localize(copy.deepcopy(d["source"])), d["task"])
    write_fetch(res, tmp_path / "raw")
    cfg = {k: v for k, v in d.get("filter", {}).items() if k != "expect_counts"}
    if expect is not None:
        cfg["expect_counts"] = expect
    stats = filter_dataset(tmp_path / "raw", tmp_path / "out", d["task"], cfg,
                           test_only=bool(d.get("train_on")), name=name)
    out = {s: read_jsonl(tmp_path / "out" / f"{s}.jsonl") for s in SPLITS}
    for recs in out.values():
        assert all(check_record(r, d["task"]) is None for r in recs)
    return out, read_jsonl(tmp_path / "out" / "passages.jsonl"), stats


@pytest.mark.parametrize("name", ["de-en", "en-de", "fr-en", "en-fr", "ru-en", "en-ru", "zh-en",
                                  "en-zh"])
def test_translation_wmt_train_flores_test(hub, tmp_path, name):
    flores = DATA / HUB[("facebook/flores", WARMUP["datasets"][name]["source"]["splits"][
        "test"]["name"])]
    sizes = {split: len(read_jsonl(flores / f"{part}.jsonl"))  # the fixture's own sizes
             for split, part in (("validation", "dev"), ("test", "devtest"))}
    out, _, stats = run(WARMUP, name, tmp_path, expect=sizes)
    src, tgt = name.split("-")
    assert out["train"] and out["validation"] and out["test"]
    assert all(r["id"].startswith("train-") for r in out["train"])
    assert out["test"][0]["id"] == "1"  # FLORES ids
    assert set(hub) >= {(p, n, s, None) for (p, n, s, _) in hub}  # no revision invented
    paths = {(p, s) for p, _, s, _ in hub}
    assert paths == {(f"wmt/wmt1{4 if src in 'defr' or tgt in 'defr' else 9}", "train"),
                     ("facebook/flores", "dev"), ("facebook/flores", "devtest")}
    assert stats["test"]["kept"] == stats["test"]["input"]


def test_de_en_filter_drops_empty_and_repeated_pairs(hub, tmp_path):
    out, _, stats = run(WARMUP, "de-en", tmp_path)
    assert stats["train"]["dropped"]["empty"] == 1 and stats["train"]["dropped"]["duplicate"] == 1
    assert out["test"][1] == {"id": "2", "source": "Übermäßige Hitze ist für ältere Menschen "
                              "gefährlich.", "target": "Excessive heat is dangerous for older "
                              "people."}


def test_en_zh_targets_chinese_and_scores_with_zh_tokenizer(hub, tmp_path):
    out, _, _ = run(WARMUP, "en-zh", tmp_path)
    assert WARMUP["datasets"]["en-zh"]["target_lang"] == "zh"
    assert out["test"][0]["target"] == "这座横跨河流的桥建于1890年。"
    assert out["train"][0]["target"] == "今天天气很好，我们去公园散步吧。"


# The published sizes of the paper configs' evaluation sets (validation: the dev sets)
PUBLISHED = {"flores": {"validation": 997, "test": 1012},  # FLORES-200 dev / devtest
             "xsum": {"validation": 11332, "test": 11334},
             "logiqa2": {"validation": 1569, "test": 1572}}


def test_paper_warmup_expects_the_published_counts():
    for name, d in WARMUP["datasets"].items():
        key = "flores" if d["task"] == "translation" else name
        assert d["filter"]["expect_counts"] == PUBLISHED[key], name


def test_a_published_count_mismatch_is_an_error(hub, tmp_path):
    """The paper config's own counts on the 2-sentence fixture: the error names it all."""
    with pytest.raises(DataError) as e:
        run(WARMUP, "de-en", tmp_path, expect=WARMUP["datasets"]["de-en"]["filter"][
            "expect_counts"])
    assert "dataset 'de-en', split 'validation': expected 997 records" in str(e.value)
    assert "found 1" in str(e.value)


def test_xsum(hub, tmp_path):
    out, _, stats = run(WARMUP, "xsum", tmp_path, expect={"test": 2})
    assert out["train"][0]["id"] == "35232142"
    assert stats["test"]["dropped"]["empty"] == 0  # the empty test document stays
    assert [r["source"] for r in out["test"]].count("") == 1
    assert hub[0][3] == "refs/convert/parquet"


def test_logiqa2_local_files_keep_counts_and_letters(tmp_path):
    with pytest.raises(DataError, match="split 'test': expected 2 records.*found 1"):
        run(WARMUP, "logiqa2", tmp_path / "strict", expect={"test": 2})  # a malformed line
    out, _, stats = run(WARMUP, "logiqa2", tmp_path, expect={"train": 3, "test": 1})
    rec = out["train"][2]
    assert rec["logiqa_id"] == 10473 and rec["id"] == "train-2"
    assert rec["label"] == 3 and rec["target"] == "D"
    assert rec["source"].endswith("Who is the youngest?\nA. Li\nB. Wang\nC. Li and Wang\nD. Zhao")
    assert out["test"][0]["source"].startswith("张三比李四高。李四比王五高。\n谁最矮？\nA. 张三")
    assert stats["test"]["dropped"]["malformed"] == 1  # answer index 7 of 4 options


def test_logiqa2_missing_files_name_the_download(tmp_path):
    src = copy.deepcopy(WARMUP["datasets"]["logiqa2"]["source"])
    src["files"] = {s: str(tmp_path / f"{s}.txt") for s in SPLITS}
    with pytest.raises(DataError, match="predownload"):
        fetch(src, "multiple_choice")


def test_kilt_answers_provenance_from_every_output(hub, tmp_path):
    out, passages, _ = run(COSUP, "kilt_nq", tmp_path)
    first = out["test"][1]
    assert first["id"] == "-2002" and first["answers"] == ["John Grisham", "Grisham"]
    assert first["provenance"] == [{"wikipedia_id": "1167130", "title": "John Grisham"}]
    assert ("facebook/kilt_tasks", "nq", "validation", None) in hub  # KILT dev is our test
    # no corpus of its own: its passages are its questions' pools (datasets.<d>.pool,
    # repro.pools; tests/test_pools.py)
    assert passages == [] and COSUP["datasets"]["kilt_nq"]["pool"] == "wiki_contriever_msmarco"


def test_kilt_fever_label_and_deduplicated_provenance(hub, tmp_path):
    out, _, _ = run(COSUP, "kilt_fever", tmp_path)
    a, b = out["test"]
    assert a["target"] == "SUPPORTS" and len(a["provenance"]) == 1
    assert b["answers"] == ["REFUTES"] and len(b["provenance"]) == 2


def test_kilt_triviaqa_questions_joined_from_triviaqa(hub, tmp_path):
    out, _, stats = run(COSUP, "kilt_triviaqa", tmp_path)
    q1, q2 = out["test"]
    assert q1["source"] == "Which city is the capital of Russia?"
    assert q1["answers"] == ["Moscow", "Москва"] and q1["provenance"][0]["title"] == "Moscow"
    assert q2["answers"] == ["Yangtze", "长江"]
    assert stats["test"]["dropped"]["malformed"] == 1  # qz_999 is not in TriviaQA
    assert ("mandarjoshi/trivia_qa", "unfiltered.nocontext", "validation", None) in hub


def test_cosup_training_split_from_the_official_pickle(hub, tmp_path):
    from repro.data.cosup_format import instances_from_records

    out, passages, stats = run(COSUP, "cosup_train", tmp_path)
    train, val = out["train"], out["validation"]
    assert [len(train), len(val)] == [2, 1]
    assert train[1]["source"].endswith("what is the capital of russia## Output:\n\n")
    assert train[1]["evidence"] == ["12"]
    assert train[1]["cosup_output"] == "[Ret][Cs]Moscow (Москва) is the capital of Russia.[Ce]"
    assert stats["train"]["source"] == "primary"  # the official files, not the Self-RAG fallback
    assert stats["train"]["convert"]["passages_to_insert"] == 2
    assert val[0]["evidence"] == ["13", "11"]
    texts = {p["id"]: p["text"] for p in passages}
    assert "长江" in texts["13"]
    instances, dropped = instances_from_records(train + val, texts)
    assert len(instances) == 3 and dropped == 0
    assert stats["train"]["input"] == 2


def test_pickle_with_objects_is_refused(tmp_path):
    path = tmp_path / "x.pickle"
    path.write_bytes(pickle.dumps({"input": [Path("x")]}))  # any class: never instantiated
    src = {"kind": "local", "format": "pickle", "files": {s: str(path) for s in SPLITS}}
    with pytest.raises(DataError, match="refusing"):
        fetch(src, "knowledge")


def test_alce_candidates_become_passages(tmp_path):
    out, passages, _ = run(COSUP, "alce_asqa", tmp_path)
    rec = out["test"][0]
    assert rec["id"] == "-2386914839214227547"
    assert rec["answers"] == ["Debby Boone", "Joe Brooks", "Joseph Brooks"]
    assert rec["candidates"] == ["8271513", "8271514"] and len(rec["qa_pairs"]) == 2
    by_id = {p["id"]: p for p in passages}
    assert by_id["8271514"]["title"] == "Debby Boone"
    out, passages, _ = run(COSUP, "alce_eli5", tmp_path / "eli5")
    rec = out["test"][0]
    assert rec["candidates"] == ["test-0#0", "test-0#1"] and len(rec["claims"]) == 3
    assert {p["id"]: p for p in passages}["test-0#1"]["text"].endswith("«плавает», 漂浮.")


def test_utf8_end_to_end_fetch_filter_score(hub, tmp_path):
    """Russian and Chinese bytes are unchanged from the source files to the scored references."""
    from repro.metrics.mt import bleu_chrf

    for name, fixture, code in (("ru-en", "flores_rus_Cyrl-eng_Latn", "rus_Cyrl"),
                                ("en-zh", "flores_zho_Hans-eng_Latn", "zho_Hans")):
        out, _, _ = run(WARMUP, name, tmp_path / name)
        raw = read_jsonl(DATA / fixture / "devtest.jsonl")
        side = "source" if name == "ru-en" else "target"
        assert [r[side] for r in out["test"]] == [r[f"sentence_{code}"] for r in raw]
        text = (tmp_path / name / "out" / "test.jsonl").read_text(encoding="utf-8")
        assert raw[0][f"sentence_{code}"] in text  # written as UTF-8, not \u escapes
        refs = [r["target"] for r in out["test"]]
        scores = bleu_chrf(refs, refs, WARMUP["datasets"][name]["target_lang"])
        assert scores["bleu"]["value"] == pytest.approx(100.0)
        if name == "en-zh":
            assert "tok:zh" in scores["bleu"]["signature"]
    assert json.loads(json.dumps("长江", ensure_ascii=False)) == "长江"
