"""Seeded synthetic datasets for the CPU demo: closed vocabularies, short inputs, exact rules.

`generate(generator, options, seed)` returns a FetchResult; the same (options, seed) always gives
the same data. Sources are unique across the three splits. Unknown options raise DataError.

Options of every generator: n_train (2000), n_validation (100), n_test (200).

translation -- pair ("en-xa"; also "en-xb", "en-xc", "xa-en", "xb-en", "xc-en"), min_words (3),
    max_words (10; English side). English: DET [ADJ] NOUN VERB [DET [ADJ] NOUN]
    [PREP DET [ADJ] NOUN], 61 word types. Each invented language has a seeded one-to-one
    lexicon (61 words) and a word-order rule: "xa" puts adjectives after their noun, "xb" is
    verb-final (subject, object, prepositional phrase, verb), "xc" does both. The lexicon
    depends only on (seed, language), so "en-xa" and "xa-en" describe the same language.
summarization -- min_sentences (3), max_sentences (5). Short documents about invented people
    and places with numbers; exactly one sentence is the main event
    "<time>, <person> <verb> <n> <things> in <place>." (its verb never occurs elsewhere), at a
    random position. The summary is that sentence without the time phrase.
multiple_choice -- style ("compare" | "chain"), n_choices (4; 2..8, "compare": 4),
    shuffle_facts (False), mixed_phrasing (False).
    "compare" (the default, learnable by a tiny model in minutes): "Ana has 3 apples. Bo has 7
    apples. Who has more apples?" with the options A. Ana, B. Bo, C. They have the same number,
    D. It cannot be told (one count is "some"); answering needs comparing two numbers and
    reading which count is missing, and the options keep this order.
    "chain" (harder: the answer is found by matching a name among shuffled options): n_choices
    people in a chain of n_choices-1 comparisons ("Ana is taller than Bo."), then
    "Who is the tallest?" / "Who is the shortest?"; the options are the people. By default the
    facts follow the chain and share one comparative, so the answer is the chain's first or last
    name; the two flags shuffle the facts / phrase each one either way. Labels are balanced
    (per split, counts differ by at most one).
knowledge -- relations (all of RELATIONS), entity_split ("seen" | "unseen"); world options
    n_people (800), n_companies (400), unseen_fraction (0.2). The world (entities, passages,
    questions and their split buckets) depends only on the seed and the world options: one
    passage per entity and attribute group ({"id": "P00017", "title": name, "text": ...}), one
    question per (entity, relation), a fixed `unseen_fraction` of entities held out, and every
    question of the other entities put in a fixed train/validation/test bucket (70/10/20 %).
    Train always takes the first n_train train-bucket questions whose relation is in
    `relations`. With "seen", validation/test come from the validation/test buckets (entities
    also appear in train with other relations); with "unseen", they come from held-out
    entities only. Configs with the same seed and world options share passages, and no
    config's validation/test question ever occurs in any config's train split.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from repro.data.schema import SPLITS, FetchResult, letter, mc_source
from repro.io import DataError

SIZES = {"n_train": 2000, "n_validation": 100, "n_test": 200}
Record = dict[str, Any]


def _options(generator: str, options: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    allowed = {**SIZES, **defaults}
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise DataError(f"synthetic {generator}: unknown options {unknown}; "
                        f"known: {sorted(allowed)}")
    opts = {**allowed, **options}
    for k in SIZES:
        if not isinstance(opts[k], int) or opts[k] < 0:
            raise DataError(f"synthetic {generator}: {k} must be an int >= 0, got {opts[k]!r}")
    return opts


def _sizes(opts: dict[str, Any]) -> dict[str, int]:
    return {split: opts[f"n_{split}"] for split in SPLITS}


def _result(splits: dict[str, list[Record]], passages: list[Record] | None = None) -> FetchResult:
    stats = {s: {"read": len(recs), "malformed_lines": 0} for s, recs in splits.items()}
    return FetchResult(splits=splits, passages=passages or [], stats=stats)


def _fill(
    name: str, sizes: dict[str, int], make: Callable[[str, int], Record]
) -> dict[str, list[Record]]:
    """Call make(split, i) until every split has its size of records with sources unique overall."""
    seen: set[str] = set()
    out: dict[str, list[Record]] = {}
    for split in SPLITS:
        recs: list[Record] = []
        misses = 0
        while len(recs) < sizes[split]:
            rec = make(split, len(recs))
            if rec["source"] in seen:
                misses += 1
                if misses > 1000 + 10 * sizes[split]:
                    raise DataError(f"synthetic {name}: cannot make {sizes[split]} unique "
                                    f"{split} examples; lower the sizes")
                continue
            seen.add(rec["source"])
            recs.append({"id": f"{split}-{len(recs):05d}", **rec})
        out[split] = recs
    return out


def _invented_words(rng: random.Random, n: int, avoid: set[str], caps: bool = False) -> list[str]:
    """n distinct pronounceable invented words (CV-CV or CV-CVC), none in `avoid`."""
    cons, vowels = "bdfgklmnprstvz", "aeiou"
    words: list[str] = []
    taken = set(avoid)
    while len(words) < n:
        w = "".join(rng.choice(cons) + rng.choice(vowels) for _ in range(2))
        if rng.random() < 0.3:
            w += rng.choice("lmnrs")
        if caps:
            w = w.capitalize()
        if w not in taken:
            taken.add(w)
            words.append(w)
    return words


# --- translation ---------------------------------------------------------------------------

EN_WORDS: dict[str, list[str]] = {
    "det": ["the", "this", "that", "every", "my", "your"],
    "adj": ["big", "small", "red", "green", "old", "young", "happy", "sad", "tall", "quiet",
            "brave", "lazy"],
    "noun": ["dog", "cat", "bird", "horse", "farmer", "teacher", "child", "king", "baker",
             "doctor", "fox", "lion", "girl", "boy", "sailor", "painter", "wolf", "tiger",
             "goat", "rabbit"],
    "vt": ["saw", "found", "liked", "helped", "followed", "chased", "called", "painted",
           "visited", "watched", "pushed", "fed"],
    "vi": ["slept", "laughed", "waited", "danced", "ran", "sang"],
    "prep": ["near", "behind", "with", "under", "beside"],
}
# language -> (adjective after noun, verb final)
LANGUAGES: dict[str, tuple[bool, bool]] = {"xa": (True, False), "xb": (False, True),
                                           "xc": (True, True)}
NP = tuple[str, str | None, str]


def lexicon(language: str, seed: int) -> dict[str, str]:
    """The seeded English -> `language` dictionary (one invented word per English word)."""
    english = [w for ws in EN_WORDS.values() for w in ws]
    rng = random.Random(f"{seed}:lexicon:{language}")
    return dict(zip(english, _invented_words(rng, len(english), set(english)), strict=True))


def _np(rng: random.Random) -> NP:
    adj = rng.choice(EN_WORDS["adj"]) if rng.random() < 0.5 else None
    return (rng.choice(EN_WORDS["det"]), adj, rng.choice(EN_WORDS["noun"]))


def _np_words(np: NP, adj_after: bool) -> list[str]:
    det, adj, noun = np
    if adj is None:
        return [det, noun]
    return [det, noun, adj] if adj_after else [det, adj, noun]


def _render(clause: tuple[Any, ...], adj_after: bool, verb_final: bool) -> list[str]:
    subj, verb, obj, pp = clause
    words = _np_words(subj, adj_after)
    rest = _np_words(obj, adj_after) if obj else []
    if pp:
        rest += [pp[0], *_np_words(pp[1], adj_after)]
    return words + rest + [verb] if verb_final else words + [verb] + rest


def _translation(opts: dict[str, Any], seed: int) -> FetchResult:
    pair = opts["pair"]
    src_lang, _, tgt_lang = str(pair).partition("-")
    other = tgt_lang if src_lang == "en" else src_lang
    if "en" not in (src_lang, tgt_lang) or other not in LANGUAGES:
        raise DataError(f"synthetic translation: unknown pair {pair!r}; use en-X or X-en with "
                        f"X in {sorted(LANGUAGES)}")
    lex = lexicon(other, seed)
    adj_after, verb_final = LANGUAGES[other]
    rng = random.Random(f"{seed}:translation:{pair}")

    def make(split: str, i: int) -> Record:
        while True:
            subj = _np(rng)
            if rng.random() < 0.7:
                verb, obj = rng.choice(EN_WORDS["vt"]), _np(rng)
            else:
                verb, obj = rng.choice(EN_WORDS["vi"]), None
            pp = (rng.choice(EN_WORDS["prep"]), _np(rng)) if rng.random() < 0.4 else None
            english = _render((subj, verb, obj, pp), False, False)
            if opts["min_words"] <= len(english) <= opts["max_words"]:
                break
        foreign = [lex[w] for w in _render((subj, verb, obj, pp), adj_after, verb_final)]
        src, tgt = (english, foreign) if src_lang == "en" else (foreign, english)
        return {"source": " ".join(src), "target": " ".join(tgt)}

    return _result(_fill(f"translation {pair}", _sizes(opts), make))


# --- summarization -------------------------------------------------------------------------

FIRST = ["Mira", "Tomas", "Lena", "Oskar", "Ines", "Pavel", "Runa", "Sami", "Vera", "Jonas",
         "Kira", "Anton", "Elsa", "Marek", "Nina", "Ivo"]
LAST = ["Tolan", "Brek", "Varga", "Olsen", "Dumas", "Kovi", "Renn", "Saltz", "Marow", "Pell",
        "Quist", "Hald"]
NAMES = [f"{f} {s}" for f in FIRST for s in LAST]
PLACES = ["Varno", "Kesh", "Lorvik", "Amsel", "Dunmor", "Pelta", "Brisk", "Oranto", "Tessel",
          "Holm", "Zarin", "Mirren"]
TIMES = ["On Monday", "On Tuesday", "On Friday", "Last week", "Yesterday", "In March",
         "In June", "Last year"]
EVENT_VERBS = ["sold", "bought", "built", "painted", "repaired", "lost"]
THINGS = ["boats", "houses", "lamps", "chairs", "books", "carts", "bells", "clocks"]
FILLERS = [
    lambda r, p, q: f"{p} lives in {r.choice(PLACES)}.",
    lambda r, p, q: f"{p} is {r.randint(20, 80)} years old.",
    lambda r, p, q: f"{r.choice(PLACES)} has {r.randint(2, 40)} bridges.",
    lambda r, p, q: f"The weather in {r.choice(PLACES)} was "
                    f"{r.choice(['cold', 'warm', 'rainy', 'windy', 'sunny'])}.",
    lambda r, p, q: f"{q} is a friend of {p}.",
    lambda r, p, q: f"{p} has {r.randint(2, 9)} {r.choice(['cats', 'dogs', 'goats', 'hens'])}.",
]


def _summarization(opts: dict[str, Any], seed: int) -> FetchResult:
    lo, hi = opts["min_sentences"], opts["max_sentences"]
    if not 2 <= lo <= hi <= len(FILLERS) + 1:
        raise DataError(f"synthetic summarization: need 2 <= min_sentences <= max_sentences <= "
                        f"{len(FILLERS) + 1}, got {lo}, {hi}")
    rng = random.Random(f"{seed}:summarization")

    def make(split: str, i: int) -> Record:
        person, friend = rng.sample(NAMES, 2)
        event = (f"{person} {rng.choice(EVENT_VERBS)} {rng.randint(2, 99)} "
                 f"{rng.choice(THINGS)} in {rng.choice(PLACES)}.")
        n_fill = rng.randint(lo, hi) - 1
        sentences = [f(rng, person, friend) for f in rng.sample(FILLERS, n_fill)]
        sentences.insert(rng.randint(0, n_fill), f"{rng.choice(TIMES)}, {event}")
        return {"source": " ".join(sentences), "target": event}

    return _result(_fill("summarization", _sizes(opts), make))


# --- multiple choice -----------------------------------------------------------------------

PEOPLE = ["Ana", "Bo", "Cy", "Dee", "Eli", "Fay", "Gus", "Hal", "Ivy", "Jo", "Kai", "Lea", "Max",
          "Ned", "Ola", "Pia", "Quin", "Rex", "Sam", "Tia", "Uma", "Vic", "Wes", "Zoe"]
# (more, less, most, least)
DIMENSIONS = [("taller", "shorter", "tallest", "shortest"), ("older", "younger", "oldest",
              "youngest"), ("faster", "slower", "fastest", "slowest"),
              ("heavier", "lighter", "heaviest", "lightest")]


OBJECTS = ["apples", "books", "coins", "pens", "shells", "stamps", "cards", "marbles"]
COMPARE_CHOICES = ("{a}", "{b}", "They have the same number", "It cannot be told")


def _multiple_choice(opts: dict[str, Any], seed: int) -> FetchResult:
    n = opts["n_choices"]
    if not isinstance(n, int) or not 2 <= n <= 8:
        raise DataError(f"synthetic multiple_choice: n_choices must be 2..8, got {n!r}")
    if opts["style"] not in ("compare", "chain"):
        raise DataError(f"synthetic multiple_choice: style must be 'compare' or 'chain', "
                        f"got {opts['style']!r}")
    if opts["style"] == "compare" and n != 4:
        raise DataError("synthetic multiple_choice: style 'compare' has exactly 4 choices")
    rng = random.Random(f"{seed}:multiple_choice")
    labels: dict[str, list[int]] = {}
    for split, size in _sizes(opts).items():
        labels[split] = [i % n for i in range(size)]
        rng.shuffle(labels[split])

    def compare(split: str, i: int) -> Record:
        a, b = rng.sample(PEOPLE, 2)
        things = rng.choice(OBJECTS)
        ask_more = rng.random() < 0.5
        label = labels[split][i]
        x, y = sorted(rng.sample(range(10), 2))  # x < y
        if label in (0, 1):  # the first (0) or second (1) person is the answer
            first_bigger = (label == 0) == ask_more
            na, nb = (y, x) if first_bigger else (x, y)
        elif label == 2:
            na = nb = rng.randrange(1, 10)
        else:  # one count is not given
            na, nb = (x, "some") if rng.random() < 0.5 else ("some", y)
        context = f"{a} has {na} {things}. {b} has {nb} {things}."
        question = f"Who has {'more' if ask_more else 'fewer'} {things}?"
        choices = [c.format(a=a, b=b) for c in COMPARE_CHOICES]
        return {"source": mc_source(question, choices, context), "target": letter(label),
                "choices": choices, "label": label}

    def chain(split: str, i: int) -> Record:
        ranked = rng.sample(PEOPLE, n)  # ranked[0] has the most of the quality
        more, less, most, least = rng.choice(DIMENSIONS)
        use_more = rng.random() < 0.5
        facts = []
        for a, b in zip(ranked, ranked[1:], strict=False):
            if opts["mixed_phrasing"]:
                use_more = rng.random() < 0.5
            facts.append(f"{a} is {more} than {b}." if use_more else f"{b} is {less} than {a}.")
        if opts["shuffle_facts"]:
            rng.shuffle(facts)
        elif not use_more and not opts["mixed_phrasing"]:
            facts.reverse()  # present the chain from its first name: "Dee < Cy. Cy < Bo. ..."
        ask_most = rng.random() < 0.5
        answer = ranked[0] if ask_most else ranked[-1]
        others = [p for p in ranked if p != answer]
        rng.shuffle(others)
        label = labels[split][i]
        choices = others[:label] + [answer] + others[label:]
        question = f"Who is the {most if ask_most else least}?"
        return {"source": mc_source(question, choices, " ".join(facts)), "target": letter(label),
                "choices": choices, "label": label}

    make = compare if opts["style"] == "compare" else chain
    return _result(_fill("multiple_choice", _sizes(opts), make))


# --- knowledge -----------------------------------------------------------------------------

# relation -> (entity kind, passage group, question templates)
RELATIONS: dict[str, tuple[str, str, tuple[str, str]]] = {
    "birthplace": ("person", "bio", ("Where was {e} born?", "In which city was {e} born?")),
    "birth_year": ("person", "bio", ("In which year was {e} born?", "When was {e} born?")),
    "occupation": ("person", "career", ("What is the occupation of {e}?",
                                        "What does {e} do for a living?")),
    "employer": ("person", "career", ("Which company does {e} work for?", "Who employs {e}?")),
    "founded": ("company", "history", ("In which year was {e} founded?",
                                       "When was {e} founded?")),
    "founder": ("company", "history", ("Who founded {e}?", "Who is the founder of {e}?")),
    "headquarters": ("company", "business", ("Where is {e} headquartered?",
                                             "In which city is {e} based?")),
    "product": ("company", "business", ("What does {e} make?",
                                        "What kind of products does {e} make?")),
}
OCCUPATIONS = ["baker", "painter", "teacher", "doctor", "pilot", "farmer", "lawyer", "nurse",
               "sailor", "tailor", "banker", "writer", "singer", "potter", "miner", "dancer",
               "carpenter", "chemist", "gardener", "mechanic"]
PRODUCTS = ["shoes", "bicycles", "toys", "candles", "glass", "paper", "soap", "tea", "rope",
            "cheese", "radios", "pianos"]
COMPANY_SUFFIXES = ["Works", "Labs", "Foods", "Motors", "Textiles", "Group", "Trading", "Studios"]
BUCKETS = (("train", 0.70), ("validation", 0.80), ("test", 1.0))


def _world(seed: int, n_people: int, n_companies: int, unseen_fraction: float) -> dict[str, Any]:
    """Entities, passages and bucketed questions; depends only on the arguments."""
    rng = random.Random(f"{seed}:knowledge-world")
    taken = set(FIRST + LAST + PLACES + PEOPLE)
    words = _invented_words(rng, 40 + 40 + n_companies, taken, caps=True)
    surnames, cities, stems = words[:40], words[40:80], words[80:]
    first_names = FIRST + PEOPLE
    if n_people > len(first_names) * len(surnames):
        raise DataError(f"synthetic knowledge: n_people must be <= "
                        f"{len(first_names) * len(surnames)}")
    full = [f"{f} {s}" for f in first_names for s in surnames]
    people = rng.sample(full, n_people)
    companies = [f"{stem} {rng.choice(COMPANY_SUFFIXES)}" for stem in stems]
    passages: list[Record] = []
    facts: list[tuple[str, str, list[str], str]] = []  # entity, relation, answers, passage id

    def passage(title: str, text: str) -> str:
        pid = f"P{len(passages):05d}"
        passages.append({"id": pid, "title": title, "text": text})
        return pid

    for p in people:
        city, year = rng.choice(cities), str(rng.randint(1900, 2005))
        occ, employer = rng.choice(OCCUPATIONS), rng.choice(companies)
        bio = passage(p, f"{p} was born in {city} in {year}.")
        career = passage(p, f"{p} works as a {occ} at {employer}.")
        facts += [(p, "birthplace", [city], bio), (p, "birth_year", [year], bio),
                  (p, "occupation", [occ], career), (p, "employer", [employer], career)]
    for c in companies:
        year, founder = str(rng.randint(1850, 2015)), rng.choice(people)
        city, product = rng.choice(cities), rng.choice(PRODUCTS)
        history = passage(c, f"{c} was founded in {year} by {founder}.")
        business = passage(c, f"{c} makes {product} and is headquartered in {city}.")
        facts += [(c, "founded", [year], history),
                  (c, "founder", [founder, founder.split()[-1]], history),
                  (c, "headquarters", [city], business), (c, "product", [product], business)]
    unseen = set()
    for group in (people, companies):
        order = rng.sample(group, len(group))
        unseen.update(order[: round(unseen_fraction * len(group))])
    questions: dict[str, list[Record]] = {"train": [], "validation": [], "test": [],
                                          "unseen": []}
    for entity, rel, answers, pid in rng.sample(facts, len(facts)):
        u = rng.random()
        bucket = "unseen" if entity in unseen else next(b for b, hi in BUCKETS if u < hi)
        questions[bucket].append({
            "relation": rel, "source": rng.choice(RELATIONS[rel][2]).format(e=entity),
            "target": answers[0], "answers": answers,
            "provenance": [{"wikipedia_id": pid, "title": entity}]})
    return {"passages": passages, "questions": questions}


def _knowledge(opts: dict[str, Any], seed: int) -> FetchResult:
    relations = opts["relations"]
    if (not isinstance(relations, list) or not relations
            or not set(relations) <= set(RELATIONS)):
        raise DataError(f"synthetic knowledge: relations must be a non-empty list from "
                        f"{sorted(RELATIONS)}, got {relations!r}")
    if opts["entity_split"] not in ("seen", "unseen"):
        raise DataError(f"synthetic knowledge: entity_split must be 'seen' or 'unseen', "
                        f"got {opts['entity_split']!r}")
    for k in ("n_people", "n_companies"):
        if not isinstance(opts[k], int) or opts[k] < 1:
            raise DataError(f"synthetic knowledge: {k} must be an int >= 1, got {opts[k]!r}")
    if not 0.0 < opts["unseen_fraction"] < 1.0:
        raise DataError("synthetic knowledge: unseen_fraction must be in (0, 1)")
    world = _world(seed, opts["n_people"], opts["n_companies"], opts["unseen_fraction"])
    pools = {s: [q for q in qs if q["relation"] in relations]
             for s, qs in world["questions"].items()}
    if opts["entity_split"] == "unseen":
        k = opts["n_validation"]
        pools["validation"], pools["test"] = pools["unseen"][:k], pools["unseen"][k:]
    splits: dict[str, list[Record]] = {}
    for split, size in _sizes(opts).items():
        if len(pools[split]) < size:
            raise DataError(f"synthetic knowledge: only {len(pools[split])} {split} questions "
                            f"for relations {relations} ({opts['entity_split']}), {size} asked; "
                            f"lower n_{split} or raise n_people/n_companies")
        splits[split] = [
            {"id": f"{split}-{i:05d}", **{k: v for k, v in q.items() if k != "relation"}}
            for i, q in enumerate(pools[split][:size])
        ]
    return _result(splits, world["passages"])


GENERATORS: dict[str, tuple[Callable[[dict[str, Any], int], FetchResult], dict[str, Any]]] = {
    "translation": (_translation, {"pair": "en-xa", "min_words": 3, "max_words": 10}),
    "summarization": (_summarization, {"min_sentences": 3, "max_sentences": 5}),
    "multiple_choice": (_multiple_choice, {"style": "compare", "n_choices": 4,
                                           "shuffle_facts": False, "mixed_phrasing": False}),
    "knowledge": (_knowledge, {"relations": list(RELATIONS), "entity_split": "seen",
                               "n_people": 800, "n_companies": 400, "unseen_fraction": 0.2}),
}


def check_options(generator: str, options: dict[str, Any]) -> dict[str, Any]:
    """The generator's options with its defaults; DataError for an unknown generator or key
    (the workflow checks them while it builds the DAG)."""
    if generator not in GENERATORS:
        raise DataError(f"unknown synthetic generator {generator!r}; expected one of "
                        f"{sorted(GENERATORS)}")
    return _options(generator, options or {}, GENERATORS[generator][1])


def generate(generator: str, options: dict[str, Any], seed: int) -> FetchResult:
    """Build the synthetic dataset `generator` (a task name) from `options` and `seed`."""
    if generator not in GENERATORS:
        raise DataError(f"unknown synthetic generator {generator!r}; expected one of "
                        f"{sorted(GENERATORS)}")
    fn, defaults = GENERATORS[generator]
    return fn(_options(generator, options or {}, defaults), int(seed))
