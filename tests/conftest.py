"""Test-wide settings: never touch the network; in CI (CI=true, as .ci/run runs), a skipped
test is a failure: CI installs everything the tests need, so a skip means a broken install."""

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.skipped and os.environ.get("CI") == "true":
        reason = report.longrepr[-1] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"skipped in CI, where nothing may be skipped: {reason}"


@pytest.fixture(scope="session")
def tiny_true_nli(tmp_path_factory):
    """Path of a tiny seq2seq NLI model answering tests/tiny_models.TRUE_PAIRS ("1"/"0"/"2")."""
    from tiny_models import build_true_nli

    return build_true_nli(tmp_path_factory.mktemp("true_nli") / "model")
