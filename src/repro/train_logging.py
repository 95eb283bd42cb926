"""How often training logs its loss: at most every LOG_EVERY steps (the Trainer's
`logging_steps`; not tied to save_steps, which changes no result and no log), and often enough
that a short run still logs about LOG_POINTS losses, so that its training curve has points (a
7-step run logs every step, not once)."""

from __future__ import annotations

from typing import Any

from transformers import TrainerCallback

LOG_POINTS = 50
LOG_EVERY = 50


def logging_interval(cap: int, total_steps: int, points: int = LOG_POINTS) -> int:
    """Steps between two logs: `cap`, or fewer so that `total_steps` give about `points` logs."""
    return max(1, min(cap, total_steps // points))


class LogPoints(TrainerCallback):
    """Shorten the Trainer's logging interval for short runs (once the run's steps are known)."""

    def __init__(self, points: int = LOG_POINTS) -> None:
        self.points = points

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        state.logging_steps = logging_interval(state.logging_steps, state.max_steps, self.points)
