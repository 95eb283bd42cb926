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

from dataclasses import dataclass, fields
from typing import Any

from repro.config import ConfigError

SUPERVISIONS = ("ntp", "nsp", "ntp+nsp", "separate")
POSITIONS = ("last_token", "official_pad")
SCOPES = ("auto", "corpus", "candidates")
STAGES = ("joint", "gen", "embseq")  # joint: both models in one training job
EMBSEQ_LOSSES = ("nsp", "ntp+nsp")


@dataclass(frozen=True)
class CoSupOptions:
    # both: what is trained and how decoding queries (Gen's [Ret] state, or Embseq's for
    # `separate`); default: the run's variant name when it is one of SUPERVISIONS
    supervision: str = "ntp+nsp"
    nsp_weight: float = 0.01  # training: lambda; official np_weight=100 -> 1/100
    temperature: float = 1.0  # training: InfoNCE temperature (official: 1)
    normalize: bool = False  # both: cosine instead of raw dot product (official: raw)
    embed_position: str = "last_token"  # both: last_token | official_pad (passage embedding)
    embed_template: str = "{text}"  # both: what Embseq embeds (official distractor: the text)
    # both: end each passage with </s> before Embseq; the official code does not (its Llama
    # tokenizer adds <s> only: dataset/generate_dataset.py _tokenize_fn, 48-85)
    embed_eos: bool = True
    insert_template: str = "{title} :: {text}"  # both: what is inserted after [Ret]
    max_passage_len: int = 128  # both: tokens of a passage, for Embseq and for the insertion
    mask_passage: bool = True  # training: no NTP on passages and [Cs] (official: "no_mask")
    embseq_path: str | None = None  # training: Embseq checkpoint (default: the base model)
    gather_negatives: bool = True  # training: other ranks' passages as negatives
    # training, `separate` only: the loss of the Embseq training; run_train.py --single adds
    # the NTP loss of an LM head on the shared body ("ntp+nsp"); the paper trains each model
    # with one supervision ("nsp")
    separate_embseq_loss: str = "nsp"
    max_retrievals: int | None = 3  # decoding: per example (None: as the official code, no cap)
    retrieve_first: bool = False  # decoding: force [Ret] after the prompt (official ret_first)
    retrieval_scope: str = "auto"  # decoding: auto (record candidates if any) | corpus | candidates
    # decoding: decode with existing checkpoints, no training: {"gen": path or hub id,
    # "embseq": path or hub id, "tokenizer": where to load the tokenizer from when Gen's
    # directory has none (the official special tokens are added to it)}
    checkpoints: dict[str, Any] | None = None
    stage: str = "joint"  # set by the workflow for the two trainings of `separate`

    @classmethod
    def from_dict(cls, options: dict[str, Any]) -> CoSupOptions:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise ConfigError(f"cosup: unknown options {unknown} (known: {sorted(known)})")
        opts = cls(**options)
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
        for ok, msg in checks:
            if not ok:
                raise ConfigError(f"cosup: {msg}, got {options}")
        return opts


# Which stages read each option (see the module docstring). `supervision` is everywhere.
OPTION_STAGES: dict[str, frozenset[str]] = {
    "supervision": frozenset({"gen", "embseq", "decode"}),
    "nsp_weight": frozenset({"embseq"}),
    "temperature": frozenset({"embseq"}),
    "normalize": frozenset({"embseq", "decode"}),
    "embed_position": frozenset({"embseq", "decode"}),
    "embed_template": frozenset({"embseq", "decode"}),
    "embed_eos": frozenset({"embseq", "decode"}),
    # the Embseq of `separate` reads Gen's sequences (passages inserted) as its queries
    "insert_template": frozenset({"gen", "embseq", "decode"}),
    "max_passage_len": frozenset({"gen", "embseq", "decode"}),
    "mask_passage": frozenset({"gen"}),  # (the `separate` Embseq with NTP reads gen options)
    "embseq_path": frozenset({"embseq"}),
    "gather_negatives": frozenset({"embseq"}),
    "separate_embseq_loss": frozenset({"embseq"}),
    "max_retrievals": frozenset({"decode"}),
    "retrieve_first": frozenset({"decode"}),
    "retrieval_scope": frozenset({"decode"}),
    "checkpoints": frozenset({"decode"}),
    "stage": frozenset({"gen", "embseq"}),
}


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
