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


def build(family: str, out: Path, layers: int = 1, **extra: Any) -> dict[str, Any]:
    """Build a tiny model of `family` in `out`; returns its manifest (path, arch, ...)."""
    return build_tiny("m", {"family": family, "config": tiny_config(family, layers, **extra),
                            "tokenizer": {"vocab_size": 60}}, TEXTS, out)


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
