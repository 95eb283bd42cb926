"""Filters: each drop reason, precedence, caps, stats file and the empty-split error; content
filters on training data only; expected split sizes."""

import json

import pytest

from repro.data.filters import REASONS, filter_dataset, filter_split
from repro.io import DataError, read_json, read_jsonl, write_json, write_jsonl


def r(i, source="a b c", target="x y", **kw):
    return {"id": str(i), "source": source, "target": target, **kw}


def test_each_reason_counted_once():
    records = [
        r(0),                                    # kept
        {"id": "1", "source": "no target"},      # malformed
        r(2, source="  "),                       # empty
        r(3, target="\n"),                       # empty
        r(4, source="w " * 20),                  # too_long (words)
        r(5, target="z" * 50),                   # too_long (chars)
        r(0, source="other"),                    # duplicate id
        r(7),                                    # duplicate (source, target)
        r(8, source="b"),                        # kept
        r(9, source="c"),                        # cap (train cap 2)
        r(10, source="d"),                       # cap
    ]
    cfg = {"max_source_words": 10, "max_target_chars": 20, "caps": {"train": 2}}
    kept, stats = filter_split(records, "translation", cfg, "train")
    assert [k["id"] for k in kept] == ["0", "8"]
    assert stats == {"input": 11, "kept": 2, "dropped": {
        "malformed": 1, "empty": 2, "too_long": 2, "duplicate": 2, "cap": 2}}
    assert tuple(stats["dropped"]) == REASONS


@pytest.mark.parametrize("split", ["validation", "test"])
def test_published_splits_lose_only_what_cannot_be_read(split):
    """Validation and test keep empty, long and repeated-pair records (they are published
    sets); a malformed record and a repeated id still go."""
    records = [
        r(0),
        {"id": "1", "source": "no target"},      # malformed: dropped
        r(2, source="  "),                       # empty: kept
        r(4, source="w " * 20),                  # too long: kept
        r(0, source="other"),                    # repeated id: dropped
        r(7),                                    # repeated (source, target): kept
    ]
    cfg = {"max_source_words": 10, "dedup": True}
    kept, stats = filter_split(records, "translation", cfg, split)
    assert [k["id"] for k in kept] == ["0", "2", "4", "7"]
    assert stats["dropped"] == {**dict.fromkeys(REASONS, 0), "malformed": 1, "duplicate": 1}
    _, train = filter_split(records, "translation", cfg, "train")
    assert train["kept"] == 1  # the same records as training data


def test_all_reasons_present_when_nothing_dropped():
    kept, stats = filter_split([r(0), r(1, source="b")], "summarization", {}, "test")
    assert len(kept) == 2
    assert stats == {"input": 2, "kept": 2, "dropped": dict.fromkeys(REASONS, 0)}


def test_precedence():
    # malformed beats empty (blank source but invalid label); empty beats too_long;
    # too_long beats duplicate; duplicate beats cap.
    bad_mc = {"id": "m", "source": " ", "target": "A", "choices": ["x", "y"], "label": 5}
    _, st = filter_split([bad_mc], "multiple_choice", {}, "train")
    assert st["dropped"]["malformed"] == 1
    _, st = filter_split([r(0, source=" " * 50)], "translation", {"max_source_chars": 5}, "train")
    assert st["dropped"]["empty"] == 1
    _, st = filter_split([r(0), r(0, source="long " * 9)], "translation",
                         {"max_source_words": 5}, "train")
    assert st["dropped"] == {**dict.fromkeys(REASONS, 0), "too_long": 1}
    _, st = filter_split([r(0), r(0)], "translation", {"caps": {"train": 1}}, "train")
    assert st["dropped"] == {**dict.fromkeys(REASONS, 0), "duplicate": 1}


def test_duplicates_independent_of_cap():
    records = [r(0), r(1, source="b"), r(2, source="b")]
    _, st = filter_split(records, "translation", {"caps": {"train": 1}}, "train")
    assert st["dropped"]["duplicate"] == 1 and st["dropped"]["cap"] == 1


def test_dedup_off_keeps_same_pair_but_not_same_id():
    records = [r(0), r(1), r(1, source="q")]
    kept, st = filter_split(records, "translation", {"dedup": False}, "train")
    assert [k["id"] for k in kept] == ["0", "1"]
    assert st["dropped"]["duplicate"] == 1


def test_limits_unset_and_caps_per_split():
    records = [r(i, source=f"s{i} " * 100) for i in range(5)]
    cfg = {"max_source_chars": None, "caps": {"train": 1, "test": 3}}
    assert filter_split(records, "translation", cfg, "validation")[1]["kept"] == 5
    assert filter_split(records, "translation", cfg, "test")[1]["kept"] == 3
    assert filter_split(records, "translation", cfg, "train")[1]["dropped"]["cap"] == 4


def test_unknown_setting_rejected():
    with pytest.raises(ValueError, match="max_source_word"):
        filter_split([r(0)], "translation", {"max_source_word": 3}, "train")


def _raw(tmp_path, splits, passages=None, malformed=None):
    raw = tmp_path / "raw"
    for split, recs in splits.items():
        write_jsonl(raw / f"{split}.jsonl", recs)
    if passages is not None:
        write_jsonl(raw / "passages.jsonl", passages)
    if malformed is not None:
        write_json(raw / "fetch_stats.json",
                   {s: {"read": 9, "malformed_lines": n} for s, n in malformed.items()})
    return raw


def test_filter_dataset_writes_outputs_and_stats(tmp_path):
    passages = [{"id": "P1", "title": "Ана", "text": "北京"}]
    raw = _raw(tmp_path, {"train": [r(0), r(0), r(1, source="b")],
                          "validation": [r(0)], "test": [r(0), {"id": "x"}]},
               passages, malformed={"train": 2, "validation": 0, "test": 1})
    out = tmp_path / "out"
    stats = filter_dataset(raw, out, "translation", {"caps": {"train": 1}})
    zero = dict.fromkeys(REASONS, 0)
    assert stats == {
        "train": {"input": 3, "kept": 1, "malformed_lines": 2,
                  "dropped": {**zero, "duplicate": 1, "cap": 1}},
        "validation": {"input": 1, "kept": 1, "malformed_lines": 0, "dropped": zero},
        "test": {"input": 2, "kept": 1, "malformed_lines": 1, "dropped": {**zero, "malformed": 1}},
    }
    assert read_json(out / "filter_stats.json") == stats
    assert read_jsonl(out / "train.jsonl") == [r(0)]
    assert (out / "passages.jsonl").read_text(encoding="utf-8") == (
        raw / "passages.jsonl").read_text(encoding="utf-8")
    assert json.loads((out / "passages.jsonl").read_text(encoding="utf-8")) == passages[0]


def test_filter_dataset_without_passages_or_fetch_stats(tmp_path):
    raw = _raw(tmp_path, {s: [r(0)] for s in ("train", "validation", "test")})
    stats = filter_dataset(raw, tmp_path / "out", "summarization", {})
    assert stats["test"]["malformed_lines"] == 0
    assert (tmp_path / "out" / "passages.jsonl").read_text() == ""


def test_empty_after_filter_raises_and_writes_nothing(tmp_path):
    raw = _raw(tmp_path, {"train": [r(0, source=""), {"id": "1"}], "validation": [r(0)],
                          "test": [r(0)]})
    out = tmp_path / "out"
    with pytest.raises(DataError) as e:
        filter_dataset(raw, out, "translation", {})
    msg = str(e.value)
    assert "train.jsonl" in msg and "empty after filtering" in msg
    assert "malformed: 1" in msg and "empty: 1" in msg
    assert not out.exists()


def test_missing_raw_split(tmp_path):
    raw = _raw(tmp_path, {"train": [r(0)], "test": [r(0)]})
    with pytest.raises(DataError, match="validation.jsonl"):
        filter_dataset(raw, tmp_path / "out", "translation", {})


def test_expected_counts_are_checked_after_filtering(tmp_path):
    raw = _raw(tmp_path, {"train": [r(0), r(1, source="")], "validation": [r(0)],
                          "test": [r(0), r(1, source=""), {"id": "2"}]},
               malformed={"train": 0, "validation": 0, "test": 1})
    ok = filter_dataset(raw, tmp_path / "ok", "translation",
                        {"expect_counts": {"test": 2, "validation": 1}}, name="flores")
    assert ok["test"]["kept"] == 2  # the empty source is kept in test
    out = tmp_path / "out"
    with pytest.raises(DataError) as e:
        filter_dataset(raw, out, "translation", {"expect_counts": {"test": 1012}}, name="de-en")
    msg = str(e.value)
    assert "dataset 'de-en', split 'test': expected 1012 records" in msg
    assert "datasets.de-en.filter.expect_counts.test" in msg and "found 2" in msg
    assert "3 read, 1 unreadable lines; dropped: malformed: 1" in msg
    assert not out.exists()
    with pytest.raises(DataError, match="expect_counts: unknown split 'dev'"):
        filter_dataset(raw, out, "translation", {"expect_counts": {"dev": 1}}, name="de-en")


def test_training_splits_and_test_split_filter_apart(tmp_path):
    """The workflow's two filter jobs (rules filter, filter_test): each writes its splits, its
    passages file and its statistics, and checks only its own splits' expected counts."""
    from repro.data.filters import TEST_SPLITS, TRAINING_SPLITS

    passages = [{"id": "P1", "title": "t", "text": "x"}]
    raw = _raw(tmp_path, {"train": [r(0), r(1)], "validation": [r(0)], "test": [r(0), r(1)]},
               passages)
    out = tmp_path / "out"
    cfg = {"caps": {"train": 1, "test": 1}, "expect_counts": {"test": 1, "validation": 1}}
    train = filter_dataset(raw, out, "translation", cfg, splits=TRAINING_SPLITS)
    assert set(train) == {"train", "validation"} and train["train"]["kept"] == 1
    assert sorted(p.name for p in out.iterdir()) == [
        "filter_stats.json", "passages.jsonl", "train.jsonl", "validation.jsonl"]
    test = filter_dataset(raw, out, "translation", cfg, splits=TEST_SPLITS,
                          passages_name="test_passages.jsonl",
                          stats_name="filter_stats_test.json")
    assert set(test) == {"test"} and test["test"]["kept"] == 1
    assert read_json(out / "filter_stats_test.json") == test
    assert read_jsonl(out / "test_passages.jsonl") == passages
    with pytest.raises(DataError, match="expected 3 records"):
        filter_dataset(raw, tmp_path / "bad", "translation", {"expect_counts": {"test": 3}},
                       splits=TEST_SPLITS)
    filter_dataset(raw, tmp_path / "ok", "translation", {"expect_counts": {"test": 3}},
                   splits=TRAINING_SPLITS)  # the test split's count is the other job's
