"""Training-step cost of Warmup Generations against SFT and a naive reference, on CPU.

For each model and each n, one run interleaves three training steps per round (same batch, same
sampling seed, each method on its own copy of the same initial model with its own AdamW):
  * SFT: `repro.methods.sft.SFT.loss`;
  * warmup: `repro.methods.warmup.Warmup.loss` (n warmups sampled without gradient, then all n
    continuations in one forward pass, the encoder run once and its states expanded);
  * naive: the same `sample_warmups`, then a Python loop of n full model calls, one per warmup
    index over the batch, each recomputing the encoder (decoder-only: each re-reading the
    prompt), the mean of the n target CEs (each over the batch's target tokens), one backward.
A step is loss + backward + AdamW step. Sampling time is measured inside `sample_warmups`;
"fwd/bwd" is the rest of the step (building the sequences, forward, loss, backward, AdamW).
Medians over K rounds after W unmeasured rounds; ratios are taken within the run, since the
machine is shared and noisy; the default clock is process CPU time (one torch thread), which
time-slicing by other jobs does not inflate. Before timing, the script checks that the naive and
batched losses (and gradients) agree on the same warmups in eval mode, and (encoder-decoder)
splits the batched forward/backward at n = 4 into encoder, decoder and LM-head costs.

Target (issue: warmup generations): warmup step >= 1.5x faster than naive at n = 4; the
warmup/SFT step ratio reported for n in 1, 2, 4, 8.

Usage: python bench/warmup_step.py [--models tiny,larger] [--ns 1,2,4,8] [--family t5|llama]
       [--tasks translation,summarization] [--batch-size 16] [--steps K] [--clock cpu|wall]
       [--larger-config d_model=512,d_ff=2048] [--larger-vocab 8000] [--no-write]
Writes the "warmup_step" section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import copy
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, write_section  # noqa: E402

from repro.batching import IGNORE, Collator, encode_record  # noqa: E402
from repro.data.synthetic import generate  # noqa: E402
from repro.methods.sft import SFT  # noqa: E402
from repro.methods.warmup import (  # noqa: E402
    Warmup,
    decoder_start,
    target_and_warmup_masks,
    warmup_loss,
)
from repro.models import ENCODER_DECODER, arch_of, tiny_model, train_tokenizer  # noqa: E402

DEFAULT_MODEL = {"t5": "tiny_t5", "llama": "tiny_llama"}  # in config/config.yaml
LARGER = {  # the "larger" model; every key can be overridden with --larger-config k=v,...
    "t5": {"d_model": 256, "d_kv": 64, "d_ff": 1024, "num_layers": 4, "num_decoder_layers": 4,
           "num_heads": 4, "dropout_rate": 0.0},
    "llama": {"hidden_size": 256, "intermediate_size": 1024, "num_hidden_layers": 4,
              "num_attention_heads": 4, "num_key_value_heads": 2},
}
TARGET_SPEEDUP = 1.5


def parse_overrides(text: str) -> dict:
    out = {}
    for item in filter(None, text.split(",")):
        k, _, v = item.partition("=")
        out[k.strip()] = yaml.safe_load(v)
    return out


def model_specs(args) -> list[dict]:
    """(name, family, config overrides, vocab size) of each requested model."""
    cfg = yaml.safe_load((ROOT / "config/config.yaml").read_text())["models"]
    default = cfg[DEFAULT_MODEL[args.family]]
    specs = {
        "tiny": {"name": DEFAULT_MODEL[args.family], "family": args.family,
                 "config": dict(default.get("config", {})),
                 "vocab": default.get("tokenizer", {}).get("vocab_size", 1000),
                 "pad_vocab": False, "steps": args.steps or 10},
        "larger": {"name": f"larger_{args.family}", "family": args.family,
                   "config": {**LARGER[args.family], **parse_overrides(args.larger_config)},
                   "vocab": args.larger_vocab, "pad_vocab": True, "steps": args.steps or 5},
    }
    return [specs[m] for m in args.models.split(",")]


def setup(spec: dict, task: str, batch_size: int) -> dict:
    """Tokenizer trained on the synthetic task's texts as the pipeline does (for the larger model
    padded with unused tokens up to the requested vocabulary: the small synthetic corpus yields a
    few hundred pieces), the model, and the benchmark batches (collated like training)."""
    arch = arch_of(spec["family"])
    seed = {"translation": 1, "summarization": 2}[task]  # as synth_en_xa / synth_sum
    recs = generate(task, {"n_train": 2000}, seed=seed).splits["train"]
    texts = [t for r in recs for t in (r["source"], r["target"])]
    tok = train_tokenizer(texts, spec["vocab"], arch)
    if spec["pad_vocab"] and len(tok) < spec["vocab"]:
        tok.add_tokens([f"<unused{i}>" for i in range(spec["vocab"] - len(tok))])
    torch.manual_seed(0)
    model = tiny_model(spec["family"], spec["config"], tok)
    collate = Collator(tok.pad_token_id, arch)
    # max source / target lengths 128 / 48 as in the embedded default's training section
    feats = [encode_record({"id": str(i), **r}, tok, arch, 128, 48) for i, r in enumerate(recs)]
    bs = batch_size
    batches = [collate(feats[i : i + bs]) for i in range(0, 8 * bs, bs)]
    src = statistics.mean(len(f["prompt_ids"]) for f in feats[: 8 * bs])
    tgt = statistics.mean(len(f["target_ids"]) for f in feats[: 8 * bs])
    return {"arch": arch, "tok": tok, "model": model, "batches": batches, "src_len": src,
            "tgt_len": tgt, "params": sum(p.numel() for p in model.parameters())}


# --- the naive reference ------------------------------------------------------------------------


def naive_loss(meth: Warmup, model, batch: dict, warmups=None) -> tuple[torch.Tensor, dict]:
    """target_mean by n separate full model calls (encoder / prompt recomputed each time)."""
    if warmups is None:
        warmups = meth.sample_warmups(model, batch)
    n, start = meth.opts.n, decoder_start(model)
    total = 0.0
    for i in range(n):
        wb = meth.build(batch, [[cs[i]] for cs in warmups], start)
        if meth.arch == ENCODER_DECODER:
            logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                           decoder_input_ids=wb.input_ids).logits
            labels, tmask = wb.labels, wb.target_mask
        else:
            logits = model(input_ids=wb.input_ids, attention_mask=wb.attention_mask).logits
            logits, labels, tmask = logits[:, :-1], wb.labels[:, 1:], wb.target_mask[:, 1:]
        tok_ce = F.cross_entropy(logits.float().transpose(1, 2), labels.clamp_min(0),
                                 reduction="none")
        tok_ce = tok_ce.masked_fill(labels == IGNORE, 0.0)
        tm = tmask.float()  # the target tokens of the batch (loss_normalization token)
        total = total + (tok_ce * tm).sum() / tm.sum().clamp_min(1)
    return total / n, {}


def check_agreement(meth: Warmup, model, batch: dict) -> tuple[float, float]:
    """|loss difference| and max relative gradient difference, same warmups, eval mode."""
    model.eval()
    torch.manual_seed(0)
    warmups = meth.sample_warmups(model, batch)
    orig = meth.sample_warmups
    meth.sample_warmups = lambda m, b: warmups
    try:
        grads = []
        losses = []
        for fn in (lambda: meth.loss(model, batch)[0],
                   lambda: naive_loss(meth, model, batch, warmups)[0]):
            model.zero_grad()
            loss = fn()
            loss.backward()
            losses.append(loss.item())
            grads.append([p.grad.clone() for p in model.parameters() if p.grad is not None])
    finally:
        meth.sample_warmups = orig
        model.zero_grad()
        model.train()
    rel = max(((a - b).norm() / b.norm().clamp_min(1e-12)).item()
              for a, b in zip(*grads, strict=True))
    return abs(losses[0] - losses[1]), rel


# --- timing -------------------------------------------------------------------------------------


CLOCKS = {"cpu": time.process_time, "wall": time.perf_counter}
CLOCK_NAMES = {"cpu": "process CPU time (one thread, so other jobs on the shared cores do not "
                      "inflate it)", "wall": "wall-clock time"}


class SampleTimer:
    """Wraps a Warmup instance's sample_warmups and records the duration of the last call."""

    def __init__(self, meth: Warmup, clock) -> None:
        self.inner, self.clock, self.last = meth.sample_warmups, clock, 0.0
        meth.sample_warmups = self

    def __call__(self, model, batch):
        t0 = self.clock()
        out = self.inner(model, batch)
        self.last = self.clock() - t0
        return out


def timed_step(loss_fn, model, opt, batch, timer: SampleTimer) -> tuple[float, float]:
    """(total, sampling) seconds of loss + backward + AdamW step."""
    timer.last = 0.0
    t0 = timer.clock()
    loss, _ = loss_fn(model, batch)
    loss.backward()
    opt.step()
    opt.zero_grad(set_to_none=True)
    return timer.clock() - t0, timer.last


def measure(su: dict, n: int, warm: int, steps: int, lr: float, clock) -> dict:
    """Median ms of SFT, warmup and naive steps (with their sampling part) at one n."""
    tok, arch = su["tok"], su["arch"]
    meth = Warmup({"n": n}, tok, arch)
    timer = SampleTimer(meth, clock)
    sft = SFT({}, tok, arch)
    fns = {"sft": sft.loss, "warmup": meth.loss,
           "naive": lambda m, b: naive_loss(meth, m, b)}
    state = {}
    for name in fns:
        m = copy.deepcopy(su["model"]).train()
        state[name] = (m, torch.optim.AdamW(m.parameters(), lr=lr))
    times = {name: [] for name in fns}
    order = list(fns)
    for k in range(warm + steps):
        batch = su["batches"][k % len(su["batches"])]
        order = order[1:] + order[:1]  # rotate, so no method always runs first
        for name in order:
            torch.manual_seed(1000 + k)  # same sampled warmups for warmup and naive
            total, samp = timed_step(fns[name], *state[name], batch, timer)
            if k >= warm:
                times[name].append((total, samp))
    out = {}
    for name, ts in times.items():
        out[name] = 1e3 * statistics.median(t for t, _ in ts)
        out[f"{name}_sample"] = 1e3 * statistics.median(s for _, s in ts)
        out[f"{name}_fb"] = 1e3 * statistics.median(t - s for t, s in ts)
    out["speedup"] = statistics.median(
        n_[0] / w[0] for n_, w in zip(times["naive"], times["warmup"], strict=True))
    out["speedup_fb"] = statistics.median(
        (n_[0] - n_[1]) / (w[0] - w[1]) for n_, w in zip(times["naive"], times["warmup"],
                                                         strict=True))
    out["ratio_sft"] = statistics.median(
        w[0] / s[0] for w, s in zip(times["warmup"], times["sft"], strict=True))
    return out


def cost_split(su: dict, n: int, reps: int, clock) -> dict | None:
    """Where the batched fwd/bwd goes (encoder-decoder, first batch): encoder fwd+bwd on the B
    examples (E), the rest on the B*n rows (D), the LM head + log-softmax alone, the share of
    real and of target positions among the B*n x T decoder cells, and the ideal naive/batched
    fwd/bwd ratio (n E + D) / (E + D) if the encoder were the only difference."""
    if su["arch"] != ENCODER_DECODER:
        return None
    model = copy.deepcopy(su["model"]).train()
    meth = Warmup({"n": n}, su["tok"], su["arch"])
    batch = su["batches"][0]
    torch.manual_seed(0)
    wb = meth.build(batch, meth.sample_warmups(model, batch), decoder_start(model))

    def encoder():
        model.get_encoder()(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]
                            ).last_hidden_state.sum().backward()

    def full():
        tm, wm = target_and_warmup_masks(wb, su["arch"])
        warmup_loss(meth.forward_logprobs(model, batch, wb), tm, wm, n, "target_mean").backward()

    with torch.no_grad():  # the real decoder output, so the head sees realistic logits
        enc = model.get_encoder()(input_ids=batch["input_ids"],
                                  attention_mask=batch["attention_mask"]).last_hidden_state
        dec_out = model.get_decoder()(
            input_ids=wb.input_ids, encoder_hidden_states=enc.repeat_interleave(n, dim=0),
            encoder_attention_mask=batch["attention_mask"].repeat_interleave(n, dim=0),
        ).last_hidden_state
        if model.config.scale_decoder_outputs:
            dec_out = dec_out * model.config.d_model ** -0.5

    def head():
        logits = model.lm_head(dec_out.detach().requires_grad_())
        logp = torch.log_softmax(logits.float(), dim=-1)
        logp.gather(-1, wb.labels.clamp_min(0).unsqueeze(-1)).sum().backward()

    fns = {"enc": encoder, "full": full, "head": head}
    times = {k: [] for k in fns}
    for _ in range(reps + 1):
        for k, fn in fns.items():
            model.zero_grad(set_to_none=True)
            t0 = clock()
            fn()
            times[k].append(clock() - t0)
    out = {k: 1e3 * statistics.median(v[1:]) for k, v in times.items()}
    e, d = out["enc"], out["full"] - out["enc"]
    cells = wb.labels.numel()
    out.update(dec=d, bound=(n * e + d) / (e + d), real=(wb.labels != IGNORE).sum().item() / cells,
               target=wb.target_mask.sum().item() / cells)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default="tiny,larger", help="comma list of tiny, larger")
    ap.add_argument("--ns", default="1,2,4,8")
    ap.add_argument("--family", default="t5", choices=sorted(DEFAULT_MODEL))
    ap.add_argument("--tasks", default="translation",
                    help="comma list of synthetic tasks: translation, summarization")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--steps", type=int, default=None,
                    help="measured rounds (default: 10 tiny, 5 larger)")
    ap.add_argument("--warmup-steps", type=int, default=2, help="unmeasured rounds first")
    ap.add_argument("--split-reps", type=int, default=5, help="repetitions of the n=4 cost split")
    ap.add_argument("--larger-config", default="", help="overrides, e.g. d_model=512,d_ff=2048")
    ap.add_argument("--larger-vocab", type=int, default=8000)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--clock", default="cpu", choices=sorted(CLOCKS),
                    help="cpu: process CPU time (robust to other jobs on a shared machine)")
    ap.add_argument("--no-write", action="store_true", help="print only, leave BENCHMARKS.md")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    torch.set_num_threads(args.threads)
    ns = [int(x) for x in args.ns.split(",")]

    clock = CLOCKS[args.clock]
    rows, notes, met = [], [], {}
    for task in args.tasks.split(","):
        for spec in model_specs(args):
            su = setup(spec, task, args.batch_size)
            key = f"{spec['name']} / {task}"
            diff, gdiff = check_agreement(Warmup({"n": max(ns)}, su["tok"], su["arch"]),
                                          su["model"], su["batches"][0])
            ok = diff < 1e-4
            line = (f"{key}: {su['params'] / 1e6:.2f}M params, vocab {len(su['tok'])}, config "
                    f"{spec['config']}; mean source {su['src_len']:.1f} / target "
                    f"{su['tgt_len']:.1f} tokens. Naive vs batched at n={max(ns)}, same "
                    f"warmups, eval mode: |loss diff| {diff:.1e} ({'ok' if ok else 'FAIL'}, tol "
                    f"1e-4), max relative gradient diff {gdiff:.1e}.")
            if not ok:
                sys.exit(f"{key}: naive and batched losses disagree by {diff}")
            split = cost_split(su, 4, args.split_reps, clock) if 4 in ns else None
            if split:
                line += (f" Batched fwd/bwd at n=4 (batch 0): encoder on B {split['enc']:.0f} ms,"
                         f" decoder + LM head on B*n {split['dec']:.0f} ms (LM head + log-softmax"
                         f" alone {split['head']:.0f} ms); decoder cells {split['real']:.0%} "
                         f"real tokens, {split['target']:.0%} target tokens; ideal naive/batched "
                         f"fwd/bwd if only the encoder differed, (4E + D) / (E + D) = "
                         f"{split['bound']:.2f}x.")
            print(line, flush=True)
            notes.append(line)
            for n in ns:
                r = measure(su, n, args.warmup_steps, spec["steps"], args.lr, clock)
                if n == 4:
                    met[key] = r["speedup"]
                row = (f"| {spec['name']} | {task} | {n} | {r['sft']:.0f} | {r['warmup']:.0f} "
                       f"({r['warmup_sample']:.0f} + {r['warmup_fb']:.0f}) | {r['naive']:.0f} "
                       f"({r['naive_sample']:.0f} + {r['naive_fb']:.0f}) | {r['speedup']:.2f}x "
                       f"| {r['speedup_fb']:.2f}x | {r['ratio_sft']:.1f} |")
                print(row, flush=True)
                rows.append(row)

    verdict = "; ".join(f"{k}: {v:.2f}x ({'met' if v >= TARGET_SPEEDUP else 'NOT met'})"
                        for k, v in met.items())
    command = " ".join(["python bench/warmup_step.py", *sys.argv[1:]])
    body = f"""## Warmup Generations training step, {args.family} (`bench/warmup_step.py`)

Command: `{command}`.

Machine: {os.cpu_count()} cores (shared), {platform.machine()}, torch {torch.__version__}, \
{args.threads} thread(s). Family {args.family}, synthetic tasks as in the embedded default, batch \
{args.batch_size}, warmup_len 8, beams max(4, n), loss `target_mean`. A step is loss + backward \
+ AdamW; medians of interleaved rounds (each method on its own copy of the same initial model, \
same batch and sampling seed). Time in ms of {CLOCK_NAMES[args.clock]}: total (sampling + \
fwd/bwd), where fwd/bwd is everything after sampling (build, forward, loss, backward, AdamW). \
Naive: same `sample_warmups`, then n full model calls (encoder / prompt recomputed each), one \
backward.

{chr(10).join('- ' + x for x in notes)}

| model | task | n | SFT ms | warmup ms (sampling + fwd/bwd) | naive ms (sampling + fwd/bwd) \
| naive/warmup | naive/warmup fwd/bwd only | warmup/SFT |
| --- | --- | --- | --- | --- | --- | --- | --- | --- |
{chr(10).join(rows)}

Target: warmup step >= {TARGET_SPEEDUP}x faster than naive at n = 4 -> {verdict or 'n=4 not run'}.
"""
    print(body)
    if not args.no_write:  # one section per model family
        write_section("warmup_step" if args.family == "t5" else f"warmup_step_{args.family}",
                      body)


if __name__ == "__main__":
    main()
