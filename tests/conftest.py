"""Test-wide settings: never touch the network."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


import pytest  # noqa: E402


@pytest.fixture(scope="session")
def tiny_true_nli(tmp_path_factory):
    """Path of a tiny seq2seq NLI model answering tests/tiny_models.TRUE_PAIRS ("1"/"0"/"2")."""
    from tiny_models import build_true_nli

    return build_true_nli(tmp_path_factory.mktemp("true_nli") / "model")
