"""How often training logs: short runs log about LOG_POINTS times, long ones every 50 steps."""

from __future__ import annotations

import pytest
from transformers import TrainerControl, TrainerState, TrainingArguments

from repro.train_logging import LOG_POINTS, LogPoints, logging_interval


@pytest.mark.parametrize("cap,total,want", [
    (50, 7, 1),  # a 7-step run: every step (it used to log at steps 1 and 4 of 7 at most)
    (50, 500, 10),  # the embedded default's runs: 50 points instead of 10
    (50, 100_000, 50),  # a paper run: every 50 steps, as before (NaN checks stay as frequent)
    (4, 1000, 4),  # save_steps below 50 still caps it
])
def test_logging_interval(cap, total, want):
    assert logging_interval(cap, total) == want
    assert LOG_POINTS == 50


def test_callback_sets_the_trainer_state(tmp_path):
    args = TrainingArguments(output_dir=str(tmp_path), logging_steps=50, report_to="none")
    state = TrainerState(max_steps=120)
    state.compute_steps(args, 120)
    assert state.logging_steps == 50
    LogPoints().on_train_begin(args, state, TrainerControl())
    assert state.logging_steps == 2  # 120 // 50
