"""The smallest T5 and Llama models the unit tests build, with a tokenizer trained on TEXTS."""

from pathlib import Path
from typing import Any

from repro.models import build_tiny

TEXTS = ["the red cat sees a dog", "a small bird eats", "big dogs like the blue bird"] * 20


def tiny_config(family: str, layers: int = 1, **extra: Any) -> dict[str, Any]:
    """Width 16, two heads, `layers` layers (encoder and decoder for T5)."""
    if family == "t5":
        cfg = {"d_model": 16, "d_kv": 4, "d_ff": 32, "num_layers": layers,
               "num_decoder_layers": layers, "num_heads": 2}
    else:
        cfg = {"hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": layers,
               "num_attention_heads": 2, "num_key_value_heads": 1}
    return {**cfg, **extra}


def train_config(method: str = "sft", options: dict[str, Any] | None = None, seed: int = 0,
                 variant: str = "default", **training: Any) -> dict[str, Any]:
    """The resolved run config repro.train.train_run takes: a translation run of model "m" on
    dataset "d", small training settings, `training` overriding them."""
    return {"run": {"task": "translation", "dataset": "d", "model": "m", "method": method,
                    "variant": variant, "seed": seed},
            "method": {"name": method, "options": options or {}},
            "training": {"learning_rate": 1e-3, "epochs": 1, "batch_size": 4, "grad_accum": 1,
                         "weight_decay": 0.0, "warmup_ratio": 0.0, "lr_scheduler": "linear",
                         "max_source_len": 32, "max_target_len": 32, "save_steps": 2,
                         "eval_each_epoch": False, "precision": "auto",
                         "prompt_suffix": "\n=>", **training}}


def build(family: str, out: Path, layers: int = 1, **extra: Any) -> dict[str, Any]:
    """Build a tiny model of `family` in `out`; returns its manifest (path, arch, ...)."""
    return build_tiny("m", {"family": family, "config": tiny_config(family, layers, **extra),
                            "tokenizer": {"vocab_size": 60}}, TEXTS, out)


# --- a tiny TRUE-style NLI model -------------------------------------------------------------

P_PARIS = "Title: Paris\nParis is in France."
P_LYON = "Title: Lyon\nLyon is a city."
ICE = "Ice floats because it is less dense than water."
# (premise, hypothesis, answer): what the tiny TRUE model is trained to answer; "2" is the odd
# answer of a checkpoint that is no TRUE model.
TRUE_PAIRS = [
    (P_PARIS, "Paris is in France.", "1"),
    (P_PARIS, "Lyon is a city.", "0"),
    (P_LYON, "Lyon is a city.", "1"),
    (P_LYON, "Paris is in France.", "0"),
    (ICE, "Ice is less dense than water.", "1"),
    (ICE, "Ice floats.", "1"),
    (ICE, "Water boils at 100 degrees.", "0"),
    ("", "Ice floats.", "0"),
    ("Odd premise.", "Odd hypothesis.", "2"),
]


def build_true_nli(out: Path, steps: int = 600) -> Path:
    """A tiny T5 saved with its config and tokenizer, trained until it answers TRUE_PAIRS
    ("premise: {p} hypothesis: {h}" -> "1" / "0" / "2") exactly; greedy decoding."""
    import torch
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    inputs = [f"premise: {p} hypothesis: {h}" for p, h, _ in TRUE_PAIRS]
    answers = [a for *_, a in TRUE_PAIRS]
    build_tiny("true", {"family": "t5", "config": tiny_config("t5", 2, d_model=32, d_kv=8,
                                                              d_ff=64, num_heads=4),
                        "tokenizer": {"vocab_size": 140}}, inputs * 3 + ["0 1 2"] * 10, out)
    tok = AutoTokenizer.from_pretrained(out)
    model = AutoModelForSeq2SeqLM.from_pretrained(out)
    enc = tok(inputs, return_tensors="pt", padding=True)
    labels = tok(answers, return_tensors="pt", padding=True).input_ids
    torch.manual_seed(0)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for step in range(steps):
        model.train()
        loss = model(**enc, labels=labels).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 25 == 24:
            model.eval()
            with torch.no_grad():
                got = tok.batch_decode(model.generate(**enc, max_new_tokens=4, do_sample=False),
                                       skip_special_tokens=True)
            if got == answers:
                model.save_pretrained(out)
                return out
    raise RuntimeError(f"the tiny TRUE model did not learn its pairs in {steps} steps")


def build_bert(out: Path, texts: list[str], hidden: int = 16, layers: int = 2) -> Path:
    """A tiny BertModel (Contriever's architecture) with a WordPiece tokenizer whose vocabulary
    is every lowercased word and punctuation mark of `texts`, saved with real configs in `out`."""
    import torch
    from tokenizers.pre_tokenizers import BertPreTokenizer
    from transformers import BertConfig, BertModel, BertTokenizer

    pre = BertPreTokenizer()
    words = sorted({w for t in texts for w, _ in pre.pre_tokenize_str(t.lower())})
    out.mkdir(parents=True, exist_ok=True)
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]
    tok = BertTokenizer(vocab={t: i for i, t in enumerate(tokens)}, do_lower_case=True,
                        strip_accents=False)
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=len(tok), hidden_size=hidden, num_hidden_layers=layers,
                     num_attention_heads=2, intermediate_size=2 * hidden,
                     max_position_embeddings=512)
    BertModel(cfg, add_pooling_layer=False).save_pretrained(str(out))
    tok.save_pretrained(str(out))
    return out
