"""Options of the co-supervision method, and which stage of a run reads each one.

Light (no torch): the workflow reads it while it builds the DAG, to give each job only the
options it depends on, so that an edit reruns exactly the jobs it touches.

Stages: `gen` (training Gen), `embseq` (training Embseq with the next-sequence loss),
`decode` (building the passage index and decoding). A run of supervision `ntp`, `nsp` or
`ntp+nsp` trains Gen and Embseq in one job (it reads the `gen` and `embseq` options); a run of
`separate` trains them in two jobs (stage `gen`: Gen with NTP alone, as the official
run_train_genonly.py; stage `embseq`: Embseq alone, as run_train.py --single), so an edit to an
Embseq-only option does not retrain Gen, and the reverse. A run with `checkpoints` trains
nothing: it decodes with a (Gen, Embseq) pair of existing checkpoints (e.g. the released ones).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from repro.methods.options import option, option_stages, options_from_dict, require

SUPERVISIONS = ("ntp", "nsp", "ntp+nsp", "separate")
POSITIONS = ("last_token", "official_pad")
SCOPES = ("auto", "corpus", "candidates")
STAGES = ("joint", "gen", "embseq")  # joint: both models in one training job
EMBSEQ_LOSSES = ("nsp", "ntp+nsp")


@dataclass(frozen=True)
class CoSupOptions:
    supervision: str = option(
        "ntp+nsp", "gen embseq decode", "ntp+nsp (the paper's method), separate (its baseline: "
        "Gen with NTP alone and Embseq alone, two training jobs, queries from Embseq), ntp or "
        "nsp (our ablations); default: the run's variant name when it is one of these")
    nsp_weight: float = option(0.01, "embseq", "lambda of the NSP loss; official np_weight "
                               "100 -> 1/100")
    temperature: float = option(1.0, "embseq", "InfoNCE temperature (official: 1)")
    normalize: bool = option(False, "embseq decode",
                             "cosine instead of raw dot products (official: raw)")
    embed_position: str = option("last_token", "embseq decode",
                                 "the passage embedding's position: last_token | official_pad")
    embed_template: str = option("{text}", "embseq decode",
                                 "what Embseq embeds (official distractor setting: the text)")
    embed_eos: bool = option(True, "embseq decode",
                             "end each passage with </s> before Embseq; the official code does "
                             "not (dataset/generate_dataset.py _tokenize_fn, 48-85)")
    # the Embseq of `separate` reads Gen's sequences (passages inserted) as its queries
    insert_template: str = option("{title} :: {text}", "gen embseq decode",
                                  "what is inserted after [Ret]")
    max_passage_len: int = option(128, "gen embseq decode",
                                  "tokens of a passage, for Embseq and for the insertion")
    mask_passage: bool = option(True, "gen", "no NTP on inserted passages and [Cs] (official: "
                                "trains on them, loss_mask_context no_mask)")
    embseq_path: str | None = option(None, "embseq", "Embseq's checkpoint (default: the run's "
                                     "base model; another width adds a learned projection)")
    gather_negatives: bool = option(True, "embseq", "other ranks' passages as negatives under "
                                    "multi-GPU training")
    separate_embseq_loss: str = option(
        "nsp", "embseq", "`separate` only: the loss of the Embseq training; run_train.py "
        "--single adds the NTP loss of an LM head on the shared body (ntp+nsp); the paper "
        "trains each model with one supervision (nsp)")
    max_retrievals: int | None = option(3, "decode", "retrievals per example (null: no cap, "
                                        "as the official code)")
    retrieve_first: bool = option(False, "decode", "force [Ret] right after the prompt "
                                  "(official ret_first)")
    retrieval_scope: str = option("auto", "decode", "auto (the record's candidates if any) | "
                                  "corpus | candidates (exact search inside each pool)")
    checkpoints: dict[str, Any] | None = option(
        None, "decode", "decode with existing checkpoints, no training: {gen, embseq, "
        "tokenizer} (local directories or hub ids; tokenizer: where to load it from when Gen's "
        "directory has none; the official special tokens are added)")
    stage: str = option("joint", "gen embseq", "set by the workflow for the two trainings of "
                        "`separate`")

    @classmethod
    def from_dict(cls, options: dict[str, Any]) -> CoSupOptions:
        opts = options_from_dict(cls, options, "cosup")
        ck = opts.checkpoints
        checks = [
            (opts.supervision in SUPERVISIONS, f"supervision must be one of {SUPERVISIONS}"),
            (opts.embed_position in POSITIONS, f"embed_position must be one of {POSITIONS}"),
            (opts.retrieval_scope in SCOPES, f"retrieval_scope must be one of {SCOPES}"),
            (opts.stage in STAGES, f"stage must be one of {STAGES}"),
            (opts.separate_embseq_loss in EMBSEQ_LOSSES,
             f"separate_embseq_loss must be one of {EMBSEQ_LOSSES}"),
            (opts.temperature > 0, "temperature must be > 0"),
            (opts.nsp_weight >= 0, "nsp_weight must be >= 0"),
            (opts.max_passage_len >= 2, "max_passage_len must be >= 2"),
            (opts.max_retrievals is None or opts.max_retrievals >= 0,
             "max_retrievals must be >= 0 or null"),
            (ck is None or (isinstance(ck, dict) and bool(ck.get("gen"))
                            and bool(ck.get("embseq"))
                            and set(ck) <= {"gen", "embseq", "tokenizer"}),
             "checkpoints needs 'gen' and 'embseq' (and optionally 'tokenizer')"),
            (not (opts.supervision == "separate" and opts.embseq_path),
             "embseq_path does not apply to `separate` (its Embseq starts from the base model)"),
            (opts.stage == "joint" or opts.supervision == "separate",
             "stage gen/embseq belongs to supervision `separate` (set by the workflow)"),
        ]
        require(checks, "cosup", options)
        return opts


# Which stages read each option (see the module docstring); `supervision` is everywhere.
OPTION_STAGES: dict[str, frozenset[str]] = option_stages(CoSupOptions)


def supervision_of(options: dict[str, Any], variant: str | None) -> str:
    """The run's supervision: its option, else its variant name when that is one."""
    if "supervision" in options:
        return str(options["supervision"])
    return variant if variant in SUPERVISIONS else CoSupOptions.supervision


def is_decode_only(options: dict[str, Any]) -> bool:
    """True for a run that decodes with existing checkpoints (nothing to train)."""
    return bool(options.get("checkpoints"))


def training_stages(options: dict[str, Any], variant: str | None) -> tuple[str, ...]:
    """The training jobs of a run: () with checkpoints, ("gen", "embseq") for `separate`,
    ("joint",) otherwise."""
    if is_decode_only(options):
        return ()
    if supervision_of(options, variant) == "separate":
        return ("gen", "embseq")
    return ("joint",)


def stage_options(options: dict[str, Any], variant: str | None, stage: str) -> dict[str, Any]:
    """The options one training job reads (`stage` joint | gen | embseq), with `stage` set
    for the two jobs of `separate`; the `separate` Embseq also reads the NTP options when its
    loss includes NTP."""
    wanted = {"joint": {"gen", "embseq"}, "gen": {"gen"}, "embseq": {"embseq"}}[stage]
    if stage == "embseq" and options.get("separate_embseq_loss") == "ntp+nsp":
        wanted = {"gen", "embseq"}
    out = {k: v for k, v in options.items()
           if k not in OPTION_STAGES or OPTION_STAGES[k] & wanted}
    out["supervision"] = supervision_of(options, variant)
    if stage != "joint":
        out["stage"] = stage
    return out


def encoder_settings(options: dict[str, Any]) -> dict[str, Any]:
    """How Embseq embeds passages (repro.retrieval.EncoderSettings fields) from the options;
    what a trained Embseq saves in sequence_encoder.json, given here for `checkpoints`."""
    opts = CoSupOptions.from_dict(options)
    return {"position": opts.embed_position, "template": opts.embed_template,
            "max_len": opts.max_passage_len, "normalize": opts.normalize, "eos": opts.embed_eos}
