"""Source kinds (synthetic, local jsonl/tsv/parquet, hf on local files), mapping and errors."""

import json
import re
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from repro.data.schema import SPLITS, FetchResult, check_record
from repro.data.sources import fetch, write_fetch
from repro.io import DataError, read_json, read_jsonl

DATA = Path(__file__).parent / "data"
ZH = "今天天气很好，我们去公园散步吧。"
RU = "Съешь же ещё этих мягких французских булок, да выпей чаю."
MT_COLUMNS = {"id": "uid", "source": "src", "target": "tgt"}


def files(d, ext="jsonl"):
    return {s: str(DATA / d / f"{s}.{ext}") for s in SPLITS}


def hf_json(d, tmp_path, **kw):
    return {"kind": "hf", "path": "json", "data_files": files(d), "cache_dir": str(tmp_path),
            **kw}


def valid(result, task):
    return all(check_record(r, task) is None for recs in result.splits.values() for r in recs)


def test_synthetic_dispatch_and_task_mismatch():
    src = {"kind": "synthetic", "generator": "translation", "seed": 3,
           "options": {"n_train": 5, "n_validation": 2, "n_test": 2}}
    res = fetch(src, "translation")
    assert {s: len(v) for s, v in res.splits.items()} == {"train": 5, "validation": 2, "test": 2}
    assert res.stats["train"] == {"read": 5, "malformed_lines": 0}
    with pytest.raises(DataError, match="generator"):
        fetch(src, "summarization")
    with pytest.raises(DataError, match="kind"):
        fetch({"kind": "ftp"}, "translation")


@pytest.mark.parametrize("ext", ["jsonl", "tsv"])
def test_local_text_formats_keep_unicode(ext):
    res = fetch({"kind": "local", "files": files("multilingual", ext), "columns": MT_COLUMNS},
                "translation")
    train = {r["id"]: r for r in res.splits["train"]}
    assert train["zh-1"]["source"] == ZH
    assert train["ru-1"]["source"] == RU
    assert res.splits["validation"][0]["source"] == "Ёлка — «ёж»."
    assert res.splits["test"][0] == {"id": "zh-2", "source": "我爱北京天安门。",
                                     "target": "I love Tiananmen in Beijing."}
    assert res.stats["train"] == {"read": 3, "malformed_lines": 0}
    assert valid(res, "translation")


def test_local_parquet_nested_columns_and_generated_ids(tmp_path):
    paths = {}
    for s in SPLITS:
        paths[s] = str(tmp_path / f"{s}.parquet")
        pq.write_table(pa.Table.from_pylist(read_jsonl(DATA / "wmt16_de_en" / f"{s}.jsonl")),
                       paths[s])
    res = fetch({"kind": "local", "files": paths,
                 "columns": {"source": "translation.de", "target": "translation.en"}},
                "translation")
    assert res.splits["train"][1] == {"id": "train-1", "source": "Die Straße ist sehr lang und "
                                      "schön.", "target": "The street is very long and beautiful."}
    assert [r["id"] for r in res.splits["test"]] == ["test-0", "test-1", "test-2"]


def test_local_without_columns_takes_schema_fields(tmp_path):
    for s in SPLITS:
        (tmp_path / f"{s}.jsonl").write_text(json.dumps(
            {"source": "s", "target": "t", "other": 1}) + "\n", encoding="utf-8")
    res = fetch({"kind": "local", "files": {s: str(tmp_path / f"{s}.jsonl") for s in SPLITS}},
                "summarization")
    assert res.splits["validation"] == [{"id": "validation-0", "source": "s", "target": "t"}]


def test_hf_json_wmt16_schema(tmp_path):
    src = hf_json("wmt16_de_en", tmp_path,
                  columns={"source": "translation.de", "target": "translation.en"})
    res = fetch(src, "translation")
    assert [len(res.splits[s]) for s in SPLITS] == [4, 2, 3]
    assert res.splits["test"][1] == {"id": "test-1", "source": "Schöne Grüße aus Köln!",
                                     "target": "Best regards from Cologne!"}
    assert valid(res, "translation")


def test_hf_local_parquet_dir_with_slicing(tmp_path):
    pdir = tmp_path / "wmt16_parquet"
    pdir.mkdir()
    for s in SPLITS:
        rows = read_jsonl(DATA / "wmt16_de_en" / f"{s}.jsonl")
        pq.write_table(pa.Table.from_pylist(rows), pdir / f"{s}-00000-of-00001.parquet")
    src = {"kind": "hf", "path": str(pdir), "cache_dir": str(tmp_path / "cache"),
           "splits": {"train": "train[:2]", "validation": "validation", "test": "test"},
           "columns": {"source": "translation.en", "target": "translation.de"}}
    res = fetch(src, "translation")
    assert [len(res.splits[s]) for s in SPLITS] == [2, 2, 3]
    assert res.splits["train"][0]["target"] == "Das Haus ist wunderbar."


def test_hf_xsum_schema(tmp_path):
    src = hf_json("xsum", tmp_path,
                  columns={"id": "id", "source": "document", "target": "summary"})
    res = fetch(src, "summarization")
    assert res.splits["train"][0]["id"] == "35232142"
    assert res.splits["train"][0]["source"].startswith("The full cost of damage")
    assert "\n" in res.splits["train"][0]["source"]
    assert res.splits["test"][1]["source"] == ""  # kept here; the filter drops it as empty


def test_hf_logiqa2_schema_builds_mc_source(tmp_path):
    cols = {"id": "id", "context": "text", "question": "question", "choices": "options",
            "label": "answer"}
    res = fetch(hf_json("logiqa2", tmp_path, columns=cols), "multiple_choice")
    rec = res.splits["train"][2]
    assert rec["id"] == "10473"
    assert rec["label"] == 3 and rec["target"] == "D"
    assert rec["source"] == ("Li is older than Wang. Wang is older than Zhao.\n"
                             "Who is the youngest?\nA. Li\nB. Wang\nC. Li and Wang\nD. Zhao")
    assert set(rec) == {"id", "source", "target", "choices", "label"}
    zh = res.splits["test"][0]
    assert zh["source"].startswith("张三比李四高。李四比王五高。\n谁最矮？\nA. 张三")
    assert check_record(zh, "multiple_choice") is None
    assert check_record(res.splits["test"][1], "multiple_choice") == "label out of range"


def test_tsv_mc_with_choice_columns_and_string_labels(tmp_path):
    header = "q\tc1\tc2\tc3\tc4\tgold\n"
    rows = ["Who?\tAna\tBo\tCy\tDee\t2\n", "Who?\tEli\tFay\tGus\tHal\tD\n",
            "Who?\tIvy\tJo\tKai\tLea\tnone\n"]
    for s in SPLITS:
        (tmp_path / f"{s}.tsv").write_text(header + "".join(rows), encoding="utf-8")
    cols = {"question": "q", "choices": ["c1", "c2", "c3", "c4"], "label": "gold"}
    res = fetch({"kind": "local", "files": {s: str(tmp_path / f"{s}.tsv") for s in SPLITS},
                 "columns": cols}, "multiple_choice")
    a, b, c = res.splits["train"]
    assert (a["label"], a["target"], a["choices"]) == (2, "C", ["Ana", "Bo", "Cy", "Dee"])
    assert (b["label"], b["target"]) == (3, "D")
    assert c["label"] == "none" and "target" not in c
    assert check_record(c, "multiple_choice") == "missing field 'target'"


def test_kilt_shape_knowledge_with_passages(tmp_path):
    cols = {"id": "id", "source": "input", "answers": "output.0.answer",
            "provenance": "output.0.provenance"}
    src = hf_json("kilt_nq", tmp_path, columns=cols, passages=str(DATA / "kilt_nq/passages.jsonl"),
                  passage_columns={"id": "wikipedia_id", "title": "wikipedia_title",
                                   "text": "text"})
    res = fetch(src, "knowledge")
    first = res.splits["train"][0]
    assert first == {"id": "-1001", "source": "who wrote the novel the rainmaker",
                     "target": "John Grisham", "answers": ["John Grisham"],
                     "provenance": [{"wikipedia_id": "1167130", "title": "John Grisham"}]}
    assert res.splits["test"][0]["provenance"] == []
    missing = res.splits["test"][1]  # empty output list: mapped fields stay absent
    assert "answers" not in missing and "target" not in missing
    assert check_record(missing, "knowledge") == "missing field 'target'"
    assert len(res.passages) == 3 and res.passages[1] == {
        "id": "9232", "title": "Eiffel Tower",
        "text": "The Eiffel Tower is a wrought-iron lattice tower in Paris."}
    assert res.stats["passages"] == {"read": 3, "malformed_lines": 0}


def test_knowledge_defaults_without_provenance(tmp_path):
    for s in SPLITS:
        (tmp_path / f"{s}.jsonl").write_text(
            json.dumps({"q": "Where?", "a": "Paris"}) + "\n", encoding="utf-8")
    res = fetch({"kind": "local", "files": {s: str(tmp_path / f"{s}.jsonl") for s in SPLITS},
                 "columns": {"source": "q", "answers": "a"}}, "knowledge")
    assert res.splits["train"][0] == {"id": "train-0", "source": "Where?", "target": "Paris",
                                      "answers": ["Paris"], "provenance": []}


def test_mapped_column_in_no_row_names_the_file_and_the_columns_found():
    train = DATA / "multilingual" / "train.jsonl"
    with pytest.raises(DataError, match=re.escape(
            f"local source {train} (split 'train'): no column 'nope' (mapped to `target` by "
            "source.columns); columns found: src, tgt, uid")):
        fetch({"kind": "local", "files": files("multilingual"),
               "columns": {"source": "src", "target": "nope"}}, "translation")


def test_mapped_column_missing_from_some_rows_leaves_the_field_absent(tmp_path):
    paths = files("multilingual")
    paths["train"] = str(tmp_path / "train.jsonl")
    Path(paths["train"]).write_text('{"src": "a", "tgt": "b"}\n{"src": "c"}\n', encoding="utf-8")
    res = fetch({"kind": "local", "files": paths, "columns": {"source": "src", "target": "tgt"}},
                "translation")
    assert [("target" in r) for r in res.splits["train"]] == [True, False]


def _broken(tmp_path, name, text):
    paths = {s: str(DATA / "multilingual" / f"{s}.{name.split('.')[-1]}") for s in SPLITS}
    paths["train"] = str(tmp_path / name)
    Path(paths["train"]).write_text(text, encoding="utf-8")
    return {"kind": "local", "files": paths, "columns": MT_COLUMNS}


def test_malformed_jsonl_strict_and_lenient(tmp_path):
    good = json.dumps({"uid": "1", "src": "a", "tgt": "b"})
    src = _broken(tmp_path, "broken.jsonl", f"{good}\n\n{{not json\n{good}\n[1, 2]\n")
    with pytest.raises(DataError) as e:
        fetch(src, "translation")
    assert "broken.jsonl" in str(e.value) and "line 3" in str(e.value)
    res = fetch({**src, "lenient": True}, "translation")
    assert res.stats["train"] == {"read": 2, "malformed_lines": 2}
    assert len(res.splits["train"]) == 2


def test_malformed_tsv_row_strict_and_lenient(tmp_path):
    src = _broken(tmp_path, "broken.tsv", "uid\tsrc\ttgt\n1\ta\tb\n2\tonly two\n3\tc\td\n")
    with pytest.raises(DataError) as e:
        fetch(src, "translation")
    assert "broken.tsv" in str(e.value) and "line 3" in str(e.value)
    res = fetch({**src, "lenient": True}, "translation")
    assert [r["id"] for r in res.splits["train"]] == ["1", "3"]
    assert res.stats["train"]["malformed_lines"] == 1


def test_headerless_tsv(tmp_path):
    for s in SPLITS:
        (tmp_path / f"{s}.tsv").write_text("hallo\thello\nwelt\tworld\n", encoding="utf-8")
    res = fetch({"kind": "local", "files": {s: str(tmp_path / f"{s}.tsv") for s in SPLITS},
                 "header": False, "columns": {"source": "0", "target": "1"}}, "translation")
    assert res.splits["test"][1] == {"id": "test-1", "source": "welt", "target": "world"}


def test_missing_split_errors(tmp_path):
    paths = files("multilingual")
    with pytest.raises(DataError, match="'validation'"):
        fetch({"kind": "local", "files": {"train": paths["train"], "test": paths["test"]},
               "columns": MT_COLUMNS}, "translation")
    gone = {**paths, "test": str(tmp_path / "nope.jsonl")}
    with pytest.raises(DataError, match=r"split 'test'.*nope\.jsonl"):
        fetch({"kind": "local", "files": gone, "columns": MT_COLUMNS}, "translation")
    src = hf_json("wmt16_de_en", tmp_path)
    src["data_files"] = {"train": src["data_files"]["train"], "test": src["data_files"]["test"]}
    src["columns"] = {"source": "translation.de", "target": "translation.en"}
    with pytest.raises(DataError) as e:
        fetch(src, "translation")
    assert "split 'validation'" in str(e.value) and "'json'" in str(e.value)


def test_hub_dataset_offline_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="wmt16"):
        fetch({"kind": "hf", "path": "wmt16", "name": "de-en", "cache_dir": str(tmp_path)},
              "translation")


def test_unknown_format(tmp_path):
    paths = {s: str(tmp_path / f"{s}.txt") for s in SPLITS}
    for p in paths.values():
        Path(p).write_text("x\n")
    with pytest.raises(DataError, match="format"):
        fetch({"kind": "local", "files": paths}, "translation")


def test_write_fetch(tmp_path):
    res = FetchResult(splits={s: [{"id": "1", "source": RU, "target": ZH}] for s in SPLITS},
                      stats={s: {"read": 1, "malformed_lines": 0} for s in SPLITS})
    write_fetch(res, tmp_path / "raw")
    assert read_jsonl(tmp_path / "raw" / "test.jsonl") == [{"id": "1", "source": RU, "target": ZH}]
    assert RU in (tmp_path / "raw" / "train.jsonl").read_text(encoding="utf-8")  # not escaped
    assert (tmp_path / "raw" / "passages.jsonl").read_text() == ""
    assert read_json(tmp_path / "raw" / "fetch_stats.json") == res.stats
    with pytest.raises(DataError, match="validation"):
        write_fetch(FetchResult(splits={"train": [], "test": []}), tmp_path / "x")


# ---- a user's own TSV files (the two cases) ----

def user_tsv(tmp_path, test_header="en\tde"):
    """train/validation/test TSV files with a header row; the test file's header as given."""
    paths = {}
    for split, header in (("train", "en\tde"), ("validation", "en\tde"), ("test", test_header)):
        path = tmp_path / f"{split}.tsv"
        path.write_text(f"{header}\nhello\thallo\nworld\twelt\n", encoding="utf-8")
        paths[split] = str(path)
    return {"kind": "local", "files": paths, "columns": {"source": "en", "target": "de"}}


def test_user_test_file_missing_the_mapped_column_is_named(tmp_path):
    src = user_tsv(tmp_path, test_header="en\tgerman")
    with pytest.raises(DataError, match=re.escape(
            f"local source {tmp_path / 'test.tsv'} (split 'test'): no column 'de' (mapped to "
            "`target` by source.columns); columns found: en, german")):
        fetch(src, "translation")


def test_empty_user_train_file_says_so(tmp_path):
    src = user_tsv(tmp_path)
    Path(src["files"]["train"]).write_text("", encoding="utf-8")
    with pytest.raises(DataError, match=re.escape(
            f"local source: the file of split 'train', {tmp_path / 'train.tsv'}, is empty "
            "(0 bytes) (a TSV file needs a header row naming its columns, then one row per "
            "record)")):
        fetch(src, "translation")
    Path(src["files"]["train"]).write_text("en\tde\n", encoding="utf-8")
    with pytest.raises(DataError, match="has a header line but no rows"):
        fetch(src, "translation")


def test_tsv_without_header_maps_column_indices(tmp_path):
    src = user_tsv(tmp_path)
    for path in src["files"].values():
        Path(path).write_text("hello\thallo\n", encoding="utf-8")
    res = fetch({**src, "header": False, "columns": {"source": "0", "target": "1"}},
                "translation")
    assert res.splits["test"][0] == {"id": "test-0", "source": "hello", "target": "hallo"}
    with pytest.raises(DataError, match="no column 'en' .*columns found: 0, 1"):
        fetch({**src, "header": False}, "translation")
