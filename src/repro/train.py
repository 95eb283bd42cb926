"""Training wiring shared by every method, on top of the HF Trainer.

The Trainer brings checkpoints, resumption, gradient accumulation, mixed precision and progress
bars; the method only supplies `loss(model, batch)`. Checkpoints live outside the rule's declared
outputs (Snakemake deletes the outputs of a failed job), so a killed run resumes on rerun.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import signal
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from transformers import Trainer, TrainerCallback, TrainingArguments, set_seed

from repro.checkpoints import resumable_checkpoint
from repro.device import (
    autocast,
    enable_activation_checkpointing,
    fsdp_arguments,
    precision,
    strategy,
)
from repro.errors import ConfigError
from repro.io import write_jsonl
from repro.methods import get_method
from repro.models import initial_model, load_tokenizer
from repro.train_logging import LOG_EVERY, LogPoints


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or infinite."""


def method_loss(method, model, batch: dict[str, torch.Tensor], prec: str,
                dev: torch.device | str) -> tuple[torch.Tensor, dict[str, float]]:
    """The method's loss of one batch with its whole forward under the `training.precision`
    autocast (Accelerate autocasts only `model.forward`; warmup also samples and calls the
    encoder, decoder and LM head, co-supervision runs two models)."""
    with autocast(prec, dev):
        return method.loss(model, batch)


class MethodTrainer(Trainer):
    """A Trainer whose loss is the method's; the method's `log_keys` entries of its loss dict
    are averaged over the training steps between two log rows and logged with `loss`."""

    def __init__(self, *args: Any, method, training: dict[str, Any] | None = None,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.precision = "bf16" if self.args.bf16 else "fp16" if self.args.fp16 else "fp32"
        self.schedule = schedule_options(training or {})
        # The method's loss is the mean over its micro-batch: the Trainer divides it by the
        # accumulation steps (and DDP averages over ranks), so a step's gradient is the mean
        # over the global batch, however many processes and micro-batches hold it.
        self.model_accepts_loss_kwargs = False
        self.method = method
        self._method_logs: dict[str, list[float]] = {}

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        loss, logs = method_loss(self.method, model, inputs, self.precision, self.args.device)
        if not torch.isfinite(loss):
            raise NonFiniteLossError(
                f"non-finite training loss ({loss.item()}) at step {self.state.global_step + 1}"
            )
        if model.training:
            for key in self.method.log_keys:
                if key in logs:
                    self._method_logs.setdefault(key, []).append(float(logs[key]))
        return (loss, {}) if return_outputs else loss

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if "loss" in logs and self._method_logs:
            logs.update({k: sum(v) / len(v) for k, v in self._method_logs.items() if v})
            self._method_logs = {}
        super().log(logs, start_time)

    def create_scheduler(self, num_training_steps: int, optimizer=None):
        """`training.lr_scheduler: epoch_step`: see epoch_step_schedule; else the Trainer's."""
        if self.lr_scheduler is None and self.schedule["epoch_step_gamma"] is not None:
            self.lr_scheduler = epoch_step_schedule(
                optimizer or self.optimizer, num_training_steps, self.args.num_train_epochs,
                self.schedule["epoch_step_gamma"], self.args.get_warmup_steps(num_training_steps))
        return super().create_scheduler(num_training_steps, optimizer)

    def _clip_grad_norm(self, model):
        """`training.clip_grad_scope: generator`: clip only the method's generator parameters
        (co-supervision: Gen's decoder body, as the official code); else all of them."""
        if self.schedule["clip_grad_scope"] != "generator":
            return super()._clip_grad_norm(model)
        params = list(self.method.generator_parameters(model))
        return self.accelerator.clip_grad_norm_(params, self.args.max_grad_norm)


# --- learning-rate schedule and gradient clipping options ---------------------------------------

SCHEDULERS_OF_OURS = ("epoch_step",)
CLIP_SCOPES = ("all", "generator")


def schedule_options(training: dict[str, Any]) -> dict[str, Any]:
    """Training options the HF Trainer has no name for (training only): `lr_scheduler:
    epoch_step` with `lr_step_gamma` (the official StepLR(step_size=1, gamma) stepped once per
    epoch, run_train.py 231), and `clip_grad_scope` (all | generator) for `max_grad_norm`."""
    scope = training.get("clip_grad_scope", "all")
    if scope not in CLIP_SCOPES:
        raise ConfigError(f"training.clip_grad_scope: {scope!r} is not one of {CLIP_SCOPES}")
    step = training.get("lr_scheduler") == "epoch_step"
    return {"epoch_step_gamma": float(training.get("lr_step_gamma", 0.85)) if step else None,
            "clip_grad_scope": scope}


def epoch_step_schedule(optimizer, num_training_steps: int, epochs: float, gamma: float,
                        warmup_steps: int = 0):
    """lr x gamma ** epoch, the epoch of each optimizer step (num_training_steps / epochs steps
    an epoch), after a linear warmup of warmup_steps."""
    from torch.optim.lr_scheduler import LambdaLR

    per_epoch = max(1, math.ceil(num_training_steps / max(1.0, float(epochs))))

    def factor(step: int) -> float:
        warm = step / warmup_steps if step < warmup_steps else 1.0
        return warm * gamma ** (step // per_epoch)

    return LambdaLR(optimizer, factor)


class FiniteLogCheck(TrainerCallback):
    """Stop with a clear error when a logged loss is NaN or infinite (e.g. under fp16 overflow)."""

    def on_log(self, args, state, control, logs=None, **kwargs):
        for key in ("loss", "eval_loss"):
            if logs and key in logs and not math.isfinite(logs[key]):
                raise NonFiniteLossError(f"{key} is {logs[key]} at step {state.global_step}")


def world_size() -> int:
    """Processes of this training job (torchrun sets WORLD_SIZE), 1 otherwise."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def grad_accum(training: dict[str, Any], world: int) -> int:
    """Micro-batches per optimizer step: `grad_accum`, or with `global_batch` set, what makes
    batch_size x processes x accumulation equal it (the same steps on any number of GPUs)."""
    total = training.get("global_batch")
    if total is None:
        return training["grad_accum"]
    per_step = training["batch_size"] * world
    if total % per_step:
        raise ConfigError(f"training.global_batch: {total} is not a multiple of batch_size "
                          f"{training['batch_size']} x {world} processes")
    return total // per_step


def training_arguments(training: dict[str, Any], ckpt_dir: Path, seed: int, has_eval: bool,
                       world: int = 1, **parallel: Any) -> TrainingArguments:
    """The Trainer's arguments; `parallel`: extra ones for the strategy (fsdp_arguments)."""
    prec = precision(training.get("precision", "auto"))
    return TrainingArguments(
        **parallel,
        output_dir=str(ckpt_dir),
        per_device_train_batch_size=training["batch_size"],
        per_device_eval_batch_size=training["batch_size"],
        gradient_accumulation_steps=grad_accum(training, world),
        learning_rate=training["learning_rate"],
        num_train_epochs=training["epochs"],
        weight_decay=training["weight_decay"],
        warmup_steps=training["warmup_ratio"],
        # epoch_step is ours (MethodTrainer.create_scheduler); the Trainer gets a valid name
        lr_scheduler_type=("constant" if training["lr_scheduler"] in SCHEDULERS_OF_OURS
                           else training["lr_scheduler"]),
        max_grad_norm=training.get("max_grad_norm", 1.0),
        eval_strategy="epoch" if has_eval else "no",
        save_strategy="steps",
        save_steps=training["save_steps"],
        save_total_limit=2,
        logging_steps=LOG_EVERY,  # LogPoints logs short runs more often
        logging_first_step=True,
        report_to="none",
        seed=seed,
        data_seed=seed,
        bf16=prec == "bf16",
        fp16=prec == "fp16",
        use_cpu=not torch.cuda.is_available(),
        remove_unused_columns=False,
        prediction_loss_only=True,
        dataloader_num_workers=0,
        dataloader_pin_memory=torch.cuda.is_available(),
    )


def train_run(resolved: dict[str, Any], manifest: dict[str, Any], data_dir: Path,
              model_out: Path, log_out: Path, ckpt_dir: Path,
              settings: dict[str, Any] | None = None) -> dict[str, Any]:
    """Train one run; save the final model to `model_out` and the log rows to `log_out`.
    `settings`: training keys that change no model (repro.config.UNTRACKED_TRAINING, e.g.
    save_steps), merged into resolved["training"]; checkpoints are tied to `resolved` alone,
    so a job resumes from them after such an edit."""
    run, training = resolved["run"], {**resolved["training"], **(settings or {})}
    set_seed(run["seed"])
    arch = manifest["arch"]
    tokenizer = load_tokenizer(manifest["path"], arch)
    method = get_method(run["method"], resolved["method"]["options"], tokenizer, arch,
                        run.get("variant"))
    model = method.prepare_model(initial_model(manifest, run["seed"]), manifest["path"])
    world = world_size()
    parallel = parallel_arguments(training, model, world)
    train_set = method.encode_split(data_dir / "train.jsonl", training)
    val_path = data_dir / "validation.jsonl"
    eval_set = (method.encode_split(val_path, training)
                if training["eval_each_epoch"] and val_path.exists() and val_path.stat().st_size
                else None)
    args = training_arguments(training, ckpt_dir, run["seed"], eval_set is not None, world,
                              **parallel)
    trainer = MethodTrainer(
        model=model, args=args, train_dataset=train_set, eval_dataset=eval_set,
        data_collator=method.collator(), processing_class=tokenizer,
        callbacks=[FiniteLogCheck(), LogPoints()], method=method, training=training,
    )
    result, last = fit(trainer, method, resolved, ckpt_dir, model_out, log_out)
    return {"resumed_from": last, "train_loss": result.training_loss,
            "steps": trainer.state.global_step, "processes": world,
            "strategy": "fsdp" if parallel else "ddp"}


def fit(trainer: Trainer, method, run_config: dict[str, Any], ckpt_dir: Path, model_out: Path,
        log_out: Path) -> tuple[Any, str | None]:
    """Train to the end, resuming from the last finished checkpoint made with this very
    `run_config` (repro.checkpoints; rank 0 decides and cleans up, the other ranks follow);
    on SIGTERM save a checkpoint and raise TrainingInterrupted. Then save the model to
    `model_out`, the log rows to `log_out`, and remove the checkpoints. Returns the Trainer's
    TrainOutput and the checkpoint resumed from (None: from the start)."""
    last = on_main(trainer, lambda: resumable_checkpoint(ckpt_dir, run_config, trainer.model))
    last = str(last) if last is not None else None
    stop = StopOnSignal()
    trainer.add_callback(stop)
    with stop.installed():
        result = trainer.train(resume_from_checkpoint=last)
    if stop.stopped and trainer.state.global_step < trainer.state.max_steps:
        raise TrainingInterrupted(
            f"{signal.Signals(stop.signum or signal.SIGTERM).name} at step "
            f"{trainer.state.global_step}: checkpoint saved in "
            f"{ckpt_dir}/checkpoint-{trainer.state.global_step}; rerun to resume from it"
        )
    save_model(trainer, method, model_out)
    if trainer.is_world_process_zero():
        write_jsonl(log_out, trainer.state.log_history)
        # The final model is in place: its checkpoints would only go stale (and fill the disk).
        shutil.rmtree(ckpt_dir, ignore_errors=True)
    barrier()
    return result, last


def parallel_arguments(training: dict[str, Any], model, world: int) -> dict[str, Any]:
    """FSDP's TrainingArguments when the run is sharded, else none (DDP is the Trainer's
    default under torchrun); switches on activation checkpointing for DDP."""
    cfg = training.get("distributed", {})
    n_params = sum(p.numel() for p in model.parameters())
    checkpointing = cfg.get("activation_checkpointing", False)
    if strategy(cfg.get("strategy", "auto"), world, n_params) == "fsdp":
        return fsdp_arguments(model, checkpointing)
    if checkpointing:
        enable_activation_checkpointing(model)
    return {}


def distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def barrier() -> None:
    if distributed():
        dist.barrier()


def on_main(trainer: Trainer, fn):
    """fn() on rank 0 only, its (picklable) result broadcast to every rank."""
    if not distributed():
        return fn()
    box = [fn() if trainer.is_world_process_zero() else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]


class TrainingInterrupted(RuntimeError):
    """Training stopped on SIGTERM (SLURM preemption or time limit) after saving a checkpoint."""


class StopOnSignal(TrainerCallback):
    """On SIGTERM, finish the current step, save a checkpoint and stop training.

    SLURM sends SIGTERM when it preempts a job or the job reaches its time limit, and SIGKILL
    KillWait seconds later (30 by default); a checkpoint at the current step saves the work
    done since the last periodic one.
    """

    def __init__(self) -> None:
        self.signum: int | None = None
        self.stopped = False

    def _handle(self, signum, frame) -> None:
        self.signum = signum
        logging.getLogger(__name__).warning("received %s: saving a checkpoint and stopping",
                                            signal.Signals(signum).name)

    @contextmanager
    def installed(self):
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = signal.signal(signal.SIGTERM, self._handle)
        try:
            yield
        finally:
            signal.signal(signal.SIGTERM, previous)

    def on_step_end(self, args, state, control, **kwargs):
        if self.signaled(args.device):
            self.stopped = True
            control.should_save = True
            control.should_training_stop = True

    def signaled(self, dev: torch.device) -> bool:
        """Whether any rank got the signal: all ranks must stop at the same step (saving a
        checkpoint takes all of them)."""
        flag = self.signum is not None
        if not distributed():
            return flag
        t = torch.tensor([int(flag)], device=dev)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return bool(t.item())


def save_model(trainer: Trainer, method, out: Path) -> None:
    """Save the method's model(s) and tokenizer(s) to a temporary sibling, then move it into
    place. Only rank 0 writes; under FSDP every rank first gathers the full parameters."""
    tmp = out.with_name(out.name + ".tmp")
    with full_parameters(trainer):
        if trainer.is_world_process_zero():
            shutil.rmtree(tmp, ignore_errors=True)
            method.save(trainer, tmp)
            shutil.rmtree(out, ignore_errors=True)
            tmp.rename(out)
    barrier()


@contextmanager
def full_parameters(trainer: Trainer):
    """Under FSDP (GPU only): every sharded module unsharded (an all-gather on every rank), and
    the Trainer saving as a plain model, so rank 0 saves full tensors; resharded after."""
    if not getattr(trainer, "is_fsdp_enabled", False):
        yield
        return
    from torch.distributed.fsdp import FSDPModule

    sharded = [m for m in trainer.model.modules() if isinstance(m, FSDPModule)]
    for m in sharded:
        m.unshard()
    trainer.is_fsdp_enabled = False
    try:
        yield
    finally:
        trainer.is_fsdp_enabled = True
        for m in sharded:
            m.reshard()
