"""Self-RAG's public training data (selfrag/selfrag_train_data, train.jsonl) as co-supervision
training records: the fallback when the official filtered data cannot be had.

A Self-RAG row is {"instruction", "input", "output", "id", "dataset_name"}; its output
interleaves text with reflection tokens and retrieved paragraphs, e.g.
`[Retrieval]<paragraph>Title\\ntext</paragraph>[Relevant]Statement.[Fully supported][Utility:5]`
(AkariAsai/self-rag, data_creation/generator/postprocess_data.py 331-344). Conversion:

- each `[Retrieval]<paragraph>P</paragraph>` becomes a retrieval point `[Ret]` linked to the
  passage P (id: "sr-" + a stable hash of P; title = P's first line, text = the rest), and the
  statement that follows it (after an optional relevance token, up to the next reflection
  token) becomes its span `[Cs]statement[Ce]`; the passage text is not kept in the output (the
  encoder inserts it, so it is never there twice);
- every other reflection token is removed (`[No Retrieval]` and `[Continue to Use Evidence]`
  segments become plain text);
- rows without a retrieval point are dropped (`no_retrieval`), as are rows whose dataset is
  not kept (`other_dataset`, see `keep_datasets`);
- the source is the prompt template on the instruction of the row's dataset and its question:
  Self-RAG's own instruction prefix (up to "## Input:\\n\\n") is replaced.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from repro.cosup_markup import CITE_END, CITE_START, RET
from repro.data.cosup_format import plain_text
from repro.io import DataError

# The reflection tokens of Self-RAG, verbatim from AkariAsai/self-rag at 1fcdc42,
# retrieval_lm/finetune.py line 450 (the special tokens its training adds to the tokenizer).
REFLECTION_TOKENS = (
    "[No Retrieval]", "[Retrieval]", "[Continue to Use Evidence]", "[Irrelevant]", "[Relevant]",
    "<paragraph>", "</paragraph>", "[Utility:1]", "[Utility:2]", "[Utility:3]", "[Utility:4]",
    "[Utility:5]", "[Fully supported]", "[Partially supported]",
    "[No support / Contradictory]",
)
RELEVANCE = ("[Irrelevant]", "[Relevant]")
INPUT_MARK = "## Input:\n\n"
# A retrieved paragraph, or any reflection token (the paragraph markers only inside it).
_PIECES = re.compile(
    r"\[Retrieval\]\s*<paragraph>(?P<p>.*?)</paragraph>|(?P<t>"
    + "|".join(re.escape(t) for t in REFLECTION_TOKENS) + ")", re.S)


def passage_of(paragraph: str) -> dict[str, str]:
    """The passage of a Self-RAG paragraph ("title\\ntext", postprocess_data.py 331)."""
    text = paragraph.strip()
    pid = "sr-" + hashlib.blake2b(text.encode("utf-8"), digest_size=8).hexdigest()
    title, sep, body = text.partition("\n")
    return {"id": pid, "title": title.strip() if sep else "",
            "text": body.strip() if sep else text}


def _join(parts: list[str]) -> str:
    """Text pieces joined with one space where neither side has one (Self-RAG concatenates
    sentences without spaces)."""
    out = ""
    for p in parts:
        if out and p and not out[-1].isspace() and not p[0].isspace() and \
                not out.endswith((RET, CITE_START)) and not p.startswith((RET, CITE_START,
                                                                          CITE_END)):
            out += " "
        out += p
    return out


def convert_output(output: str) -> tuple[str, list[dict[str, str]], Counter]:
    """(output in the co-supervision markup, the linked passages in order, counts)."""
    parts: list[str] = []
    linked: list[dict[str, str]] = []
    counts: Counter = Counter()
    pos, span_open = 0, False

    def text(chunk: str) -> None:
        if chunk.strip():
            parts.append(chunk.strip())

    just_opened = False  # a span opened by a paragraph, nothing read after it yet
    for m in _PIECES.finditer(output):
        between = output[pos: m.start()]
        pos = m.end()
        token = m.group("t")
        if just_opened and token in RELEVANCE and not between.strip():
            # the relevance token of the paragraph just read: part of the retrieval point
            counts["irrelevant_spans"] += token == "[Irrelevant]"
            counts["reflection_tokens_removed"] += 1
            continue
        just_opened = False
        text(between)
        if span_open:  # any reflection token after the statement closes its span
            parts.append(CITE_END)
            span_open = False
        if m.group("p") is not None:
            linked.append(passage_of(m.group("p")))
            parts.append(RET + CITE_START)
            span_open = just_opened = True
            counts["retrieval_points"] += 1
        else:
            counts["reflection_tokens_removed"] += 1
    text(output[pos:])
    if span_open:
        parts.append(CITE_END)
    return _join(parts), linked, counts


def question_of(row: Mapping[str, Any]) -> str:
    """The row's question: its instruction after Self-RAG's "## Input:" prefix, plus `input`."""
    instruction = str(row.get("instruction", ""))
    question = instruction.split(INPUT_MARK, 1)[1] if INPUT_MARK in instruction else instruction
    extra = str(row.get("input") or "").strip()
    return f"{question}\n{extra}" if extra else question


def convert_selfrag(rows: Iterable[dict[str, Any]], instructions: Mapping[str, str],
                    prompt_template: str, keep_datasets: Sequence[str] | None = None,
                    where: str = "Self-RAG data") -> tuple[list[dict], list[dict], dict]:
    """Self-RAG rows -> (normalized knowledge records, passages, stats).

    `instructions`: dataset_name -> instruction ("" for a dataset without one);
    `prompt_template` has fields {instruction} and {source}; `keep_datasets`: the
    dataset_names kept (None: all)."""
    records: list[dict] = []
    passages: dict[str, dict] = {}
    stats: Counter = Counter()
    kept_per_dataset: Counter = Counter()
    for i, row in enumerate(rows):
        stats["read"] += 1
        for key in ("instruction", "output"):
            if key not in row:
                raise DataError(f"{where}, row {i}: missing field {key!r} (a Self-RAG row has "
                                "instruction, input, output, id, dataset_name)")
        name = str(row.get("dataset_name", ""))
        if keep_datasets is not None and name not in keep_datasets:
            stats["other_dataset"] += 1
            continue
        output, linked, counts = convert_output(str(row["output"]))
        stats.update(counts)
        if not linked:
            stats["no_retrieval"] += 1
            continue
        for p in linked:
            passages.setdefault(p["id"], p)
        source = prompt_template.format(instruction=instructions.get(name, ""),
                                        source=question_of(row))
        target = plain_text(output)
        records.append({"id": str(row.get("id", f"selfrag-{i:07d}")), "source": source,
                        "target": target, "answers": [target],
                        "provenance": [{"wikipedia_id": p["id"], "title": p["title"]}
                                       for p in linked],
                        "cosup_output": output, "evidence": [p["id"] for p in linked],
                        "dataset_name": name})
        kept_per_dataset[name] += 1
    out = {"read": 0, "other_dataset": 0, "no_retrieval": 0, "retrieval_points": 0,
           "irrelevant_spans": 0, "reflection_tokens_removed": 0, **stats,
           "kept_per_dataset": dict(sorted(kept_per_dataset.items())),
           "passages": len(passages)}
    return records, list(passages.values()), out
