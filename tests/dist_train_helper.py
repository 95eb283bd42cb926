"""A rank of a test training job: repro.train_cli with test callbacks, set by environment.

REPRO_TEST_GRADS=DIR: rank r saves the gradients of the first optimizer step to DIR/rank<r>.pt.
REPRO_TEST_SIGTERM=STEP:RANK: that rank sends itself SIGTERM at the end of step STEP (the
other ranks never get it).
"""

import os
import signal
import sys

import torch
from transformers import TrainerCallback

from repro import train as train_mod
from repro import train_cli

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


def install():
    """Add callbacks() to every MethodTrainer (the callbacks run before StopOnSignal's)."""
    orig = train_mod.MethodTrainer.__init__

    def init(self, *a, **kw):
        kw["callbacks"] = [*callbacks(), *kw.get("callbacks", [])]
        orig(self, *a, **kw)

    train_mod.MethodTrainer.__init__ = init


if __name__ == "__main__":
    install()
    sys.exit(train_cli.main())
