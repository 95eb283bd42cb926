"""Synthetic generators: determinism, sizes, schema, balance and the rules they encode."""

import re
from collections import Counter

import pytest

from repro.data.schema import SPLITS, check_record, letter_to_index
from repro.data.synthetic import EN_WORDS, generate, lexicon
from repro.io import DataError

SMALL = {"n_train": 300, "n_validation": 40, "n_test": 60}
GENERATORS = ["translation", "summarization", "multiple_choice", "knowledge"]


@pytest.mark.parametrize("gen", GENERATORS)
def test_determinism_sizes_schema_and_disjoint_splits(gen):
    a, b = generate(gen, SMALL, 7), generate(gen, SMALL, 7)
    assert a == b
    assert generate(gen, SMALL, 8).splits["train"] != a.splits["train"]
    assert {s: len(v) for s, v in a.splits.items()} == {"train": 300, "validation": 40, "test": 60}
    assert a.stats == {s: {"read": len(a.splits[s]), "malformed_lines": 0} for s in SPLITS}
    sources = [r["source"] for s in SPLITS for r in a.splits[s]]
    assert len(set(sources)) == len(sources)
    for split in SPLITS:
        assert len({r["id"] for r in a.splits[split]}) == len(a.splits[split])
        assert all(check_record(r, gen) is None for r in a.splits[split])


def test_default_sizes():
    res = generate("multiple_choice", {}, 0)
    assert [len(res.splits[s]) for s in SPLITS] == [2000, 100, 200]


def test_unknown_option_and_generator():
    with pytest.raises(DataError, match="n_trian"):
        generate("translation", {"n_trian": 5}, 0)
    with pytest.raises(DataError, match="generator"):
        generate("parsing", {}, 0)
    with pytest.raises(DataError, match="pair"):
        generate("translation", {"pair": "en-fr"}, 0)


def _reverse(lang, seed=0):
    return {v: k for k, v in lexicon(lang, seed).items()}


def test_translation_vocab_lengths_and_lexicon():
    res = generate("translation", {"pair": "en-xa"}, 0)
    recs = [r for s in SPLITS for r in res.splits[s]]
    assert all(3 <= len(r["source"].split()) <= 10 for r in recs)
    tgt_vocab = {w for r in recs for w in r["target"].split()}
    assert 60 <= len(tgt_vocab) <= 120
    back = _reverse("xa")
    for r in recs[:200]:  # one-to-one lexicon: same bag of words
        assert sorted(back[w] for w in r["target"].split()) == sorted(r["source"].split())


def test_translation_pairs_differ_in_word_order():
    xa = generate("translation", {"pair": "en-xa", **SMALL}, 0).splits["train"]
    xb = generate("translation", {"pair": "en-xb", **SMALL}, 0).splits["train"]
    adjs, verbs = set(EN_WORDS["adj"]), set(EN_WORDS["vt"] + EN_WORDS["vi"])
    back_a, back_b = _reverse("xa"), _reverse("xb")
    for r in xa:  # xa: adjective right after its noun, verb in English position
        gloss = [back_a[w] for w in r["target"].split()]
        src = r["source"].split()
        assert all(gloss[i - 1] in EN_WORDS["noun"] for i, w in enumerate(gloss) if w in adjs)
        assert [w for w in gloss if w in verbs] == [w for w in src if w in verbs]
        assert gloss.index(next(w for w in gloss if w in verbs)) == next(
            i for i, w in enumerate(src) if w in verbs)
    for r in xb:  # xb: verb final, English adjective order
        gloss = [back_b[w] for w in r["target"].split()]
        assert gloss[-1] in verbs
        assert [w for w in gloss if w not in verbs] == [
            w for w in r["source"].split() if w not in verbs]
    assert sum(back_a[r["target"].split()[-1]] in verbs for r in xa) < len(xa) / 2


def test_translation_reverse_direction_uses_same_language():
    fwd = lexicon("xb", 5)
    rev = generate("translation", {"pair": "xb-en", **SMALL}, 5).splits["test"]
    for r in rev:
        eng = r["target"].split()
        assert sorted(r["source"].split()) == sorted(fwd[w] for w in eng)
    assert lexicon("xa", 5) != lexicon("xb", 5)


def test_summarization_rule():
    res = generate("summarization", SMALL, 1)
    first_positions = Counter()
    for r in res.splits["train"]:
        sentences = re.split(r"(?<=\.) ", r["source"])
        assert 3 <= len(sentences) <= 5
        main = [i for i, s in enumerate(sentences) if ", " in s]
        assert len(main) == 1
        assert sentences[main[0]].split(", ", 1)[1] == r["target"]
        assert re.fullmatch(r"[A-Z][a-z]+ [A-Z][a-z]+ [a-z]+ \d+ [a-z]+ in [A-Z][a-z]+\.",
                            r["target"])
        first_positions[main[0] == 0] += 1
    assert first_positions[False] > first_positions[True]  # the lead is not the summary


def _ranked(facts):
    """Order people from most to least by the comparison facts (any phrasing)."""
    above = {}
    for a, word, b in re.findall(r"(\w+) is (\w+) than (\w+)\.", facts):
        hi, lo = (a, b) if word in ("taller", "older", "faster", "heavier") else (b, a)
        above[lo] = hi
    people = set(above) | set(above.values())
    top = next(p for p in people if p not in above)
    below = {v: k for k, v in above.items()}
    order = [top]
    while order[-1] in below:
        order.append(below[order[-1]])
    return order


CHAIN = {"style": "chain"}


@pytest.mark.parametrize("opts", [CHAIN, {**CHAIN, "shuffle_facts": True, "mixed_phrasing": True}])
def test_multiple_choice_answers_and_balance(opts):
    res = generate("multiple_choice", {**SMALL, **opts}, 2)
    for split in SPLITS:
        counts = Counter(r["label"] for r in res.splits[split])
        assert set(counts) == {0, 1, 2, 3} and max(counts.values()) - min(counts.values()) <= 1
    for r in res.splits["train"]:
        facts, question, *options = r["source"].split("\n")
        order = _ranked(facts)
        most = question.endswith(("tallest?", "oldest?", "fastest?", "heaviest?"))
        answer = order[0] if most else order[-1]
        assert r["choices"][r["label"]] == answer
        assert options[letter_to_index(r["target"])] == f"{r['target']}. {answer}"
        assert sorted(r["choices"]) == sorted(order)


def test_multiple_choice_default_rule_is_first_or_last_name():
    more, most = {"taller", "older", "faster", "heavier"}, {"tallest", "oldest", "fastest",
                                                            "heaviest"}
    res = generate("multiple_choice", {**SMALL, **CHAIN}, 3)
    for r in res.splits["train"]:
        facts, question = r["source"].split("\n")[:2]
        names = re.findall(r"[A-Z][a-z]+", facts)
        comparatives = set(re.findall(r"is (\w+) than", facts))
        assert len(comparatives) == 1
        agree = (comparatives.pop() in more) == (question.split()[-1].rstrip("?") in most)
        assert r["choices"][r["label"]] == (names[0] if agree else names[-1])


def test_multiple_choice_n_choices():
    res = generate("multiple_choice", {**SMALL, **CHAIN, "n_choices": 6}, 0)
    r = res.splits["test"][0]
    assert len(r["choices"]) == 6 and r["source"].endswith(f"F. {r['choices'][5]}")
    assert set(Counter(x["label"] for x in res.splits["test"]).values()) == {10}


def test_multiple_choice_compare_rule_and_balance():
    res = generate("multiple_choice", SMALL, 5)
    for split in SPLITS:
        counts = Counter(r["label"] for r in res.splits[split])
        assert set(counts) == {0, 1, 2, 3} and max(counts.values()) - min(counts.values()) <= 1
    for r in res.splits["train"]:
        context, question, *options = r["source"].split("\n")
        (a, na), (b, nb) = re.findall(r"(\w+) has (\d+|some) ", context)
        assert r["choices"] == [a, b, "They have the same number", "It cannot be told"]
        assert options[r["label"]] == f"{r['target']}. {r['choices'][r['label']]}"
        if "some" in (na, nb):
            expected = 3
        elif na == nb:
            expected = 2
        else:
            more = question.startswith("Who has more")
            expected = 0 if (int(na) > int(nb)) == more else 1
        assert r["label"] == expected, r


def test_multiple_choice_compare_needs_four_choices():
    with pytest.raises(DataError, match="exactly 4"):
        generate("multiple_choice", {**SMALL, "n_choices": 3}, 0)
    with pytest.raises(DataError, match="style"):
        generate("multiple_choice", {**SMALL, "style": "riddle"}, 0)


KN = {"n_train": 400, "n_validation": 50, "n_test": 100}


def test_knowledge_provenance_and_answers_in_passages():
    res = generate("knowledge", KN, 4)
    passages = {p["id"]: p for p in res.passages}
    assert len(passages) == len(res.passages) == 2 * (800 + 400)
    assert all(re.fullmatch(r"P\d{5}", pid) for pid in passages)
    for split in SPLITS:
        for r in res.splits[split]:
            (prov,) = r["provenance"]
            p = passages[prov["wikipedia_id"]]
            assert p["title"] == prov["title"] and prov["title"] in r["source"]
            assert r["target"] in p["text"]


def test_knowledge_relations_option():
    res = generate("knowledge", {**KN, "relations": ["birthplace", "founder"]}, 4)
    for r in res.splits["train"]:
        assert r["source"].startswith(("Where was", "In which city", "Who founded",
                                       "Who is the founder"))
    founders = [r for r in res.splits["train"] if "found" in r["source"]]
    assert founders and all(len(r["answers"]) == 2 for r in founders)
    with pytest.raises(DataError, match="relations"):
        generate("knowledge", {"relations": ["height"]}, 4)
    with pytest.raises(DataError, match="only"):
        generate("knowledge", {"relations": ["birthplace"]}, 4)  # 2000 train asked, too few


def _entities(recs):
    return {r["provenance"][0]["title"] for r in recs}


def test_knowledge_unseen_entities_share_world_but_not_entities():
    seen = generate("knowledge", KN, 4)
    unseen = generate("knowledge", {**KN, "entity_split": "unseen"}, 4)
    assert unseen.passages == seen.passages
    assert unseen.splits["train"] == seen.splits["train"]
    train_entities = _entities(seen.splits["train"])
    for split in ("validation", "test"):
        assert not _entities(unseen.splits[split]) & train_entities
    assert not {r["source"] for r in unseen.splits["validation"]} & {
        r["source"] for r in unseen.splits["test"]}
    # "seen" evaluation asks about entities that also occur in training, never the same question
    assert _entities(seen.splits["test"]) & train_entities
    train_q = {r["source"] for r in seen.splits["train"]}
    assert not train_q & {r["source"] for r in seen.splits["test"]}


def test_knowledge_relation_ood_config_never_tests_training_questions():
    base = generate("knowledge", {**KN, "relations": ["birthplace", "occupation"]}, 4)
    ood = generate("knowledge", {"n_train": 100, "n_validation": 20, "n_test": 50,
                                 "relations": ["birthplace", "founder"]}, 4)
    train_q = {r["source"] for r in base.splits["train"]}
    assert not train_q & {r["source"] for r in ood.splits["test"]}
    assert any("found" in r["source"] for r in ood.splits["test"])
