"""Co-supervision instances from normalized knowledge records, the official-format converter
(placeholders -> [Ret] retrieval points linked to passages) and Self-RAG's (reflection tokens
removed, paragraphs -> retrieval points), on fixtures in both real schemas."""

import json
import pickle
from pathlib import Path

import pytest

from repro.cosup_markup import RET
from repro.data.cosup_format import (
    convert_official,
    inline_passages,
    instance_from_record,
    instances_from_records,
    plain_text,
)
from repro.data.schema import check_passage, check_record
from repro.data.selfrag import REFLECTION_TOKENS, convert_selfrag, passage_of
from repro.data.sources import fetch, write_fetch
from repro.data.synthetic import generate
from repro.io import DataError, read_json

DATA = Path(__file__).parent / "data"
OFFICIAL = DATA / "cosup_train"
SELFRAG = DATA / "selfrag" / "train.jsonl"
TEMPLATE = "{instruction}## Input:\n\n{source}## Output:\n\n"
NQ = "Answer the following question with corresponding evidence."


def test_synthetic_records_link_their_provenance_passage():
    res = generate("knowledge", {"n_people": 20, "n_companies": 10, "n_train": 30,
                                 "n_validation": 5, "n_test": 5}, 0)
    passages = {p["id"]: p for p in res.passages}
    instances, dropped = instances_from_records(res.splits["train"], passages)
    assert dropped == 0 and len(instances) == 30
    for rec, inst in zip(res.splits["train"], instances, strict=True):
        assert inst["output"] == f"[Ret][Cs]{rec['target']}[Ce]"
        assert inst["evidence"] == [rec["provenance"][0]["wikipedia_id"]]
        assert inst["source"] == rec["source"]


def test_records_without_a_known_passage_are_dropped_or_rejected():
    rec = {"id": "1", "source": "q", "target": "a", "answers": ["a"],
           "provenance": [{"wikipedia_id": "X", "title": "t"}, {"wikipedia_id": "P2", "title": ""}]}
    assert instance_from_record(rec, {"P2"})["evidence"] == ["P2"]  # first provenance found
    assert instance_from_record(rec, {"P9"}) is None
    with pytest.raises(DataError, match="train.jsonl: no record links"):
        instances_from_records([rec], {"P9": {}}, where="train.jsonl")


def test_explicit_cosup_output_is_used_and_checked():
    rec = {"id": "7", "source": "q", "target": "a b", "cosup_output": "[Ret][Cs]a[Ce] [Ret]b",
           "evidence": ["P1", "P2"]}
    inst = instance_from_record(rec, {"P1", "P2"})
    assert inst["output"] == rec["cosup_output"] and inst["evidence"] == ["P1", "P2"]
    with pytest.raises(DataError, match=r"data/x/train.jsonl: record '7': 2 \[Ret\] retrieval "
                                        r"points in cosup_output but 1 evidence"):
        instance_from_record({**rec, "evidence": ["P1"]}, {"P1"}, "data/x/train.jsonl")
    with pytest.raises(DataError, match="not in passages"):
        instance_from_record(rec, {"P1"})


def test_inline_passages_and_plain_text():
    out = "Intro.[Ret]Moscow :: capital of Russia[Cs]Moscow.[Ce][Ret][Cs]Big.[Ce] End[Ret] x"
    assert inline_passages(out) == [True, False, False]
    assert plain_text(out) == "Intro. Moscow. Big. End x"


def test_convert_official_rows():
    ids2text = {"[k_11]": "Paris is the capital of France.", "[k_12]": "It has the Louvre.",
                "[k_99]": "unused"}
    rows = [
        {"input": "## Input:\n\nWhere is the Louvre?## Output:\n\n",
         "output": "[k_11][Cs]It is in Paris.[Ce] [k_12]Louvre :: It has the Louvre.[Cs]The "
                   "Louvre is there.[Ce] [k_5]Done.",
         "evidence": [11, 12], "input_ids": [1, 2]},
        {"input": "q2", "output": "no retrieval here", "evidence": []},
    ]
    records, passages, stats = convert_official(rows, ids2text)
    assert stats == {"read": 2, "no_retrieval": 1, "unlinked_placeholders": 1,
                     "retrieval_points": 2, "passages_inline": 1, "passages_to_insert": 1}
    (rec,) = records
    assert rec["cosup_output"] == ("[Ret][Cs]It is in Paris.[Ce] [Ret]Louvre :: It has the "
                                   "Louvre.[Cs]The Louvre is there.[Ce] Done.")
    assert rec["evidence"] == ["11", "12"]
    assert rec["target"] == "It is in Paris. The Louvre is there. Done."
    assert rec["source"] == rows[0]["input"]
    assert check_record(rec, "knowledge") is None
    assert [p["id"] for p in passages] == ["11", "12"]
    assert passages[0]["text"] == ids2text["[k_11]"]
    assert all(check_passage(p) is None for p in passages)
    inst = instance_from_record(rec, {p["id"] for p in passages})
    assert inst["evidence"] == ["11", "12"] and inst["output"].count(RET) == 2


def test_convert_official_names_the_bad_row():
    with pytest.raises(DataError, match=r"row 0: evidence \[k_3\] missing from ids2text"):
        convert_official([{"input": "q", "output": "[k_3] a", "evidence": ["3"]}], {})
    with pytest.raises(DataError, match="row 1: missing field 'evidence'"):
        convert_official([{"input": "q", "output": "x", "evidence": []},
                          {"input": "q", "output": "x"}], {})
    # a row whose retrieval points do not match its passages: evidence 4 has no placeholder
    with pytest.raises(DataError, match=r"x.pickle, row 0: evidence \['4'\] has no "
                                        r"\[k_<id>\] placeholder"):
        convert_official([{"input": "q", "output": "[k_3][Cs]a[Ce]", "evidence": [3, 4]}],
                         {"[k_3]": "t", "[k_4]": "u"}, where="x.pickle")


def official_source(tmp_path: Path, **split) -> dict:
    spec = {"kind": "local", "file": str(OFFICIAL / "natural_np_free.train.pickle"),
            "format": "pickle", "convert": "cosup_official",
            "ids2text": str(OFFICIAL / "ids2text.json"), **split}
    return {"kind": "local", "splits": {"train": spec, "validation": spec, "test": spec}}


def test_missing_ids2text_is_an_error_naming_the_file(tmp_path):
    src = official_source(tmp_path, ids2text=str(tmp_path / "ids2text.json"))
    with pytest.raises(DataError, match=r"ids2text file '.*ids2text.json' not found"):
        fetch(src, "knowledge")


# --- Self-RAG ---------------------------------------------------------------------------------


def selfrag_rows():
    return [json.loads(line) for line in SELFRAG.read_text(encoding="utf-8").splitlines()]


def test_reflection_tokens_are_selfrag_finetune_list():
    # AkariAsai/self-rag retrieval_lm/finetune.py line 450: 15 tokens
    assert len(REFLECTION_TOKENS) == 15 and len(set(REFLECTION_TOKENS)) == 15
    assert {"[Retrieval]", "[No Retrieval]", "[Continue to Use Evidence]", "<paragraph>",
            "</paragraph>", "[Utility:5]", "[No support / Contradictory]"} <= set(
        REFLECTION_TOKENS)


def test_selfrag_rows_become_retrieval_points_linked_to_their_paragraphs():
    insts = {"nq": NQ, "wow": "W. ", "fever": "F."}
    records, passages, stats = convert_selfrag(
        selfrag_rows(), insts, TEMPLATE, keep_datasets=["nq", "wow", "fever", "asqa"])
    by_id = {r["id"]: r for r in records}
    assert sorted(by_id) == ["fever_train_3", "nq_train_1001", "nq_train_1002", "wow_train_7"]
    nq = by_id["nq_train_1001"]
    assert nq["source"] == NQ + "## Input:\n\nwho wrote the novel the rainmaker## Output:\n\n"
    assert nq["cosup_output"] == "[Ret][Cs]John Grisham wrote The Rainmaker.[Ce]"
    assert nq["target"] == "John Grisham wrote The Rainmaker."
    grisham = passage_of("John Grisham\nJohn Ray Grisham Jr. is an American novelist and "
                         "lawyer, known for best-selling legal thrillers such as The Rainmaker.")
    assert nq["evidence"] == [grisham["id"]] and grisham["title"] == "John Grisham"
    assert grisham["text"].startswith("John Ray Grisham Jr.")
    wow = by_id["wow_train_7"]  # Self-RAG's instruction prefix replaced by ours
    assert wow["source"] == ("W. ## Input:\n\nI love the Yangtze river.\nWhere does it reach "
                             "the sea?## Output:\n\n")
    assert wow["cosup_output"] == ("[Ret][Cs]It reaches the East China Sea at Shanghai.[Ce]"
                                   "[Ret][Cs]Shanghai is a huge city.[Ce] Have you been there?")
    assert len(wow["evidence"]) == 2 and wow["target"].endswith("huge city. Have you been there?")
    # the same paragraph in two rows is one passage with one id
    assert by_id["fever_train_3"]["evidence"] == by_id["nq_train_1002"]["evidence"]
    assert len(passages) == 4 and all(check_passage(p) is None for p in passages)
    for r in records:
        assert check_record(r, "knowledge") is None
        assert not any(t in r["cosup_output"] + r["target"] for t in REFLECTION_TOKENS)
        assert r["cosup_output"].count(RET) == len(r["evidence"])
    assert stats["read"] == 6 and stats["other_dataset"] == 1 and stats["no_retrieval"] == 1
    assert stats["retrieval_points"] == 5 and stats["irrelevant_spans"] == 1
    assert stats["kept_per_dataset"] == {"fever": 1, "nq": 2, "wow": 1}
    # nq 3 ([Relevant], [Fully supported], [Utility:5]) + wow 5 + fever 3 + asqa 2 ([No
    # Retrieval], [Utility:3]; then dropped) + nq 3; the other dataset's are not read
    assert stats["reflection_tokens_removed"] == 3 + 5 + 3 + 2 + 3
    assert stats["passages"] == 4


def test_selfrag_paragraph_ids_are_stable_hashes():
    a, b = passage_of("T\nx y"), passage_of("  T\nx y ")
    assert a == b and a["id"].startswith("sr-") and len(a["id"]) == 19
    assert passage_of("untitled text") == {"id": passage_of("untitled text")["id"], "title": "",
                                           "text": "untitled text"}


def test_selfrag_row_without_instruction_names_the_file():
    with pytest.raises(DataError, match="train.jsonl, row 0: missing field 'instruction'"):
        convert_selfrag([{"output": "x"}], {}, TEMPLATE, where="train.jsonl")


def test_official_files_first_else_the_selfrag_fallback(tmp_path):
    fallback = {"file": str(SELFRAG), "format": "jsonl", "convert": "selfrag",
                "convert_options": {"prompt_template": TEMPLATE, "instructions": {"nq": NQ},
                                    "keep_datasets": ["nq"]}}
    src = official_source(tmp_path, fallback=fallback)
    res = fetch(src, "knowledge")
    assert res.stats["train"]["source"] == "primary"
    assert res.stats["train"]["convert"]["kind"] == "cosup_official"
    assert res.splits["train"][1]["cosup_output"] == \
        "[Ret][Cs]Moscow (Москва) is the capital of Russia.[Ce]"
    missing = official_source(tmp_path, file=str(tmp_path / "none.pickle"), fallback=fallback)
    res = fetch(missing, "knowledge")
    assert res.stats["train"]["source"] == "fallback"
    assert res.stats["train"]["convert"]["kind"] == "selfrag"
    assert [r["id"] for r in res.splits["train"]] == ["nq_train_1001", "nq_train_1002"]
    # the counts reach filter_stats.json
    from repro.data.filters import filter_dataset

    write_fetch(res, tmp_path / "raw")
    stats = filter_dataset(tmp_path / "raw", tmp_path / "out", "knowledge", {"dedup": False})
    assert stats["train"]["source"] == "fallback"
    assert stats["train"]["convert"]["other_dataset"] == 4
    assert read_json(tmp_path / "out" / "filter_stats.json") == stats


def test_official_fixture_is_the_official_schema():
    rows = pickle.loads((OFFICIAL / "natural_np_free.train.pickle").read_bytes())
    assert set(rows) == {"input", "output", "evidence", "input_ids"}
    assert all(isinstance(v, list) for v in rows.values())


def test_predownload_takes_the_official_files_first_else_selfrag(tmp_path, monkeypatch, capsys):
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "predownload", Path(__file__).resolve().parents[1] / "scripts" / "predownload.py")
    pd = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(pd)
    entry = {"dataset": "cosup_train", "hf_repo": "kaist-ai/ntp_nsp_cosupervision_train",
             "repo_type": "dataset", "to": str(tmp_path / "cosup"),
             "expect": ["natural_np_free.train.pickle", "ids2text.json"],
             "fallback": {"hf_repo": "selfrag/selfrag_train_data", "repo_type": "dataset",
                          "to": str(tmp_path / "selfrag"), "expect": ["train.jsonl"]}}
    hub = {"kaist-ai/ntp_nsp_cosupervision_train": ["README.md"],
           "selfrag/selfrag_train_data": ["train.jsonl"]}

    def fake_fetch(item, models_dir):  # a snapshot of what the hub repo holds
        Path(item["to"]).mkdir(parents=True, exist_ok=True)
        for name in hub[item["hf_repo"]]:
            (Path(item["to"]) / name).write_text("x")

    monkeypatch.setattr(pd, "fetch", fake_fetch)
    assert pd.fetch_with_fallback(entry) == "selfrag/selfrag_train_data"
    assert "lacks ['natural_np_free.train.pickle', 'ids2text.json']" in capsys.readouterr().out
    hub["kaist-ai/ntp_nsp_cosupervision_train"] = ["natural_np_free.train.pickle",
                                                   "ids2text.json"]
    assert pd.fetch_with_fallback(entry) == "kaist-ai/ntp_nsp_cosupervision_train"
    hub["selfrag/selfrag_train_data"] = []
    hub["kaist-ai/ntp_nsp_cosupervision_train"] = []
    empty = {**entry, "to": str(tmp_path / "c2"),
             "fallback": {**entry["fallback"], "to": str(tmp_path / "s2")}}
    with pytest.raises(SystemExit, match="no fallback: selfrag/selfrag_train_data lacks"):
        pd.fetch_with_fallback(empty)
