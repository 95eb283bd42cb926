"""A rank of a test training job: repro.train_cli with test callbacks, set by environment.

REPRO_TEST_GRADS=DIR: rank r saves the gradients of the first optimizer step to DIR/rank<r>.pt.
REPRO_TEST_SIGTERM=STEP:RANK: that rank sends itself SIGTERM at the end of step STEP (the
other ranks never get it).
REPRO_TEST_WARMUPS=1: warmup runs still sample (on the plain model, which must not be a DDP
wrapper), then use fixed warmups instead, a function of each example alone (the first i target
tokens for i = 0..n-1), so that any split of a batch over ranks sees the same warmups.
REPRO_TEST_WRAPPER=DIR: rank r writes the class name of the model its loss got to
DIR/wrapper<r>.txt (DistributedDataParallel under torchrun).
"""

import os
import signal
import sys

import torch
from transformers import TrainerCallback

from repro import train as train_mod
from repro import train_cli
from repro.batching import IGNORE
from repro.methods.warmup import Warmup

RANK = int(os.environ.get("RANK", "0"))


class SaveFirstGrads(TrainerCallback):
    def __init__(self, out_dir):
        self.out_dir = out_dir

    def on_pre_optimizer_step(self, args, state, control, model=None, **kw):
        if state.global_step == 0:
            grads = {n: p.grad.detach().clone() for n, p in model.named_parameters()
                     if p.grad is not None}
            torch.save(grads, os.path.join(self.out_dir, f"rank{RANK}.pt"))


class SigtermAt(TrainerCallback):
    def __init__(self, step, rank):
        self.step, self.rank = step, rank

    def on_step_end(self, args, state, control, **kw):
        if state.global_step == self.step and RANK == self.rank:
            os.kill(os.getpid(), signal.SIGTERM)


def callbacks():
    out = []
    if os.environ.get("REPRO_TEST_GRADS"):
        out.append(SaveFirstGrads(os.environ["REPRO_TEST_GRADS"]))
    if os.environ.get("REPRO_TEST_SIGTERM"):
        step, rank = os.environ["REPRO_TEST_SIGTERM"].split(":")
        out.append(SigtermAt(int(step), int(rank)))
    return out


def fixed_warmups(method, model, batch):
    """Sample as training does (checking the model is the plain one), then return warmups that
    depend on each example alone."""
    from torch.nn.parallel import DistributedDataParallel

    if isinstance(model, DistributedDataParallel):
        raise AssertionError("warmups sampled through the DDP wrapper")
    sample_warmups(method, model, batch)
    targets = [row[row != IGNORE].tolist() for row in batch["labels"]]
    return [[y[:i] for i in range(method.opts.n)] for y in targets]


sample_warmups = Warmup.sample_warmups


def install():
    """Add callbacks() to every MethodTrainer (the callbacks run before StopOnSignal's), and
    the REPRO_TEST_WARMUPS / REPRO_TEST_WRAPPER patches."""
    orig = train_mod.MethodTrainer.__init__

    def init(self, *a, **kw):
        kw["callbacks"] = [*callbacks(), *kw.get("callbacks", [])]
        orig(self, *a, **kw)

    train_mod.MethodTrainer.__init__ = init
    if os.environ.get("REPRO_TEST_WARMUPS") == "1":
        Warmup.sample_warmups = fixed_warmups
    if os.environ.get("REPRO_TEST_WRAPPER"):
        loss = train_mod.method_loss

        def recorded(method, model, *a, **kw):
            path = os.path.join(os.environ["REPRO_TEST_WRAPPER"], f"wrapper{RANK}.txt")
            with open(path, "w") as f:
                f.write(type(model).__name__)
            return loss(method, model, *a, **kw)

        train_mod.method_loss = recorded


if __name__ == "__main__":
    install()
    sys.exit(train_cli.main())
