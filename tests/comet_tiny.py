"""Run in the COMET environment (.venv-comet): build a tiny COMET checkpoint, or score with
COMET's own Python API.

    python tests/comet_tiny.py build OUT   -> in the hub cache $HF_HUB_CACHE: ENCODER_ID, an
        XLM-R-shaped encoder with a tokenizer trained here, and COMET_ID, a regression metric
        shaped like Unbabel/wmt22-comet-da (hparams.yaml, checkpoints/model.ckpt saved by
        Lightning) whose encoder is ENCODER_ID; OUT/comet holds a copy of the metric's folder
    python tests/comet_tiny.py predict CKPT IN.json OUT.json   -> load_from_checkpoint(CKPT)
        .predict(samples in IN.json) written as {"scores", "system_score"}

COMET loads its encoder by the name in its hparams (`pretrained_model`) through transformers'
from_pretrained, which takes a hub name from the local cache offline (as xlm-roberta-large for
wmt22-comet-da) or a local directory. Top level: standard library only (the main environment's
tests import `to_hub_cache`); the rest needs torch, transformers 4, lightning and comet.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

ENCODER_ID = "repro-test/xlmr-tiny"
COMET_ID = "repro-test/comet-tiny"
REVISION = "0123456789abcdef0123456789abcdef01234567"
TEXTS = [
    "Der Hund bellt laut im Garten.", "The dog barks loudly in the garden.",
    "Es regnet seit dem Morgen.", "It has been raining since the morning.",
    "Die Katze schläft auf dem Sofa.", "The cat sleeps on the sofa.",
    "Wir lesen ein Buch über Vögel.", "We read a book about birds.",
] * 8

# wmt22-comet-da's hparams.yaml, with the estimator's hidden sizes shrunk (3072, 1024 there).
WMT22_SHAPE = {
    "encoder_model": "XLM-RoBERTa", "layer": "mix", "layer_transformation": "sparsemax",
    "layer_norm": False, "pool": "avg", "loss": "mse", "dropout": 0.1, "activations": "Tanh",
    "final_activation": None, "nr_frozen_epochs": 0.3, "keep_embeddings_frozen": True,
    "optimizer": "AdamW", "encoder_learning_rate": 1.0e-06, "learning_rate": 1.5e-05,
    "layerwise_decay": 0.95, "batch_size": 16, "hidden_sizes": [32, 16],
}


def to_hub_cache(folder: Path, repo_id: str, cache: Path) -> Path:
    """Copy `folder` into the hub cache `cache` as the main revision of model `repo_id`, in the
    layout huggingface_hub reads offline (refs/main -> snapshots/<revision>/...)."""
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / "main").write_text(REVISION)
    snapshot = repo / "snapshots" / REVISION
    shutil.copytree(folder, snapshot, dirs_exist_ok=True)
    return snapshot


def build_encoder(out: Path) -> Path:
    """A 2-layer XLM-R (hidden 32) and a tokenizer trained on TEXTS, XLM-R's specials at
    XLM-R's ids (<s> 0, <pad> 1, </s> 2, <unk> 3, <mask> last). BPE rather than XLM-R's
    Unigram: the tokenizers library trains BPE deterministically."""
    import tokenizers as tk
    import torch
    from transformers import XLMRobertaConfig, XLMRobertaModel, XLMRobertaTokenizerFast

    tok = tk.Tokenizer(tk.models.BPE(unk_token="<unk>"))
    tok.normalizer = tk.normalizers.NFKC()
    tok.pre_tokenizer = tk.pre_tokenizers.Metaspace()
    tok.decoder = tk.decoders.Metaspace()
    tok.train_from_iterator(TEXTS, tk.trainers.BpeTrainer(
        vocab_size=200, special_tokens=["<s>", "<pad>", "</s>", "<unk>"]))
    tok.add_special_tokens(["<mask>"])
    bos, eos = tok.token_to_id("<s>"), tok.token_to_id("</s>")
    tok.post_processor = tk.processors.TemplateProcessing(  # XLM-R's: <s> A </s> </s> B </s>
        single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>",
        special_tokens=[("<s>", bos), ("</s>", eos)])
    hf_tok = XLMRobertaTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", sep_token="</s>",
        cls_token="<s>", unk_token="<unk>", pad_token="<pad>", mask_token="<mask>")
    assert [hf_tok.convert_tokens_to_ids(t) for t in ("<s>", "<pad>", "</s>", "<unk>")] == [
        0, 1, 2, 3]
    torch.manual_seed(0)
    config = XLMRobertaConfig(
        vocab_size=len(hf_tok), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=130, pad_token_id=1, bos_token_id=0,
        eos_token_id=2)
    XLMRobertaModel(config, add_pooling_layer=False).save_pretrained(out)
    hf_tok.save_pretrained(out)
    return out


def build(out: Path) -> Path:
    """The encoder and the metric into the hub cache, and out/comet (the metric's folder; its
    checkpoint is checkpoints/model.ckpt)."""
    import pytorch_lightning as pl
    import torch
    import yaml
    from comet.models import RegressionMetric

    cache = Path(os.environ["HF_HUB_CACHE"])
    to_hub_cache(build_encoder(out / "encoder"), ENCODER_ID, cache)
    torch.manual_seed(0)
    model = RegressionMetric(pretrained_model=ENCODER_ID, **WMT22_SHAPE,
                             load_pretrained_weights=True, local_files_only=True)
    with torch.no_grad():  # a random estimator varies little; spread the segment scores
        for p in model.estimator.parameters():
            p.mul_(8.0)
    folder = out / "comet"
    (folder / "checkpoints").mkdir(parents=True, exist_ok=True)
    trainer = pl.Trainer(accelerator="cpu", devices=1, logger=False,
                         enable_checkpointing=False, enable_progress_bar=False)
    trainer.strategy.connect(model)
    trainer.save_checkpoint(folder / "checkpoints" / "model.ckpt")
    hparams = {k: v for k, v in model.hparams.items()
               if k not in ("load_pretrained_weights", "local_files_only")}  # as wmt22's
    (folder / "hparams.yaml").write_text(yaml.safe_dump(hparams), encoding="utf-8")
    to_hub_cache(folder, COMET_ID, cache)
    # COMET takes the encoder's weights from its own checkpoint: the cached encoder keeps only
    # config and tokenizer, as scripts/predownload.py fetches xlm-roberta-large
    for weights in cache.glob(f"models--{ENCODER_ID.replace('/', '--')}/snapshots/*/*.safetensors"):
        weights.unlink()
    return folder


def predict(ckpt: str, in_path: str, out_path: str) -> None:
    from comet import load_from_checkpoint

    samples = json.loads(Path(in_path).read_text(encoding="utf-8"))
    model = load_from_checkpoint(ckpt, local_files_only=True)
    pred = model.predict(samples, batch_size=2, gpus=0, progress_bar=False, accelerator="cpu")
    Path(out_path).write_text(json.dumps({"scores": [float(s) for s in pred.scores],
                                          "system_score": float(pred.system_score)}))


if __name__ == "__main__":
    if sys.argv[1] == "build":
        print(build(Path(sys.argv[2])))
    elif sys.argv[1] == "predict":
        predict(*sys.argv[2:5])
    else:
        raise SystemExit(__doc__)
