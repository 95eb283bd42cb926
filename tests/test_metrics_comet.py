"""COMET skip paths, and the subprocess worker's plumbing with a stand-in `comet` package."""

import sys
import textwrap

import pytest

from repro.io import DataError
from repro.metrics.comet import comet_score, resolve_checkpoint

SRC = ["Der Hund bellt.", "Es regnet."]
HYP = ["The dog barks.", "It rains."]
REF = ["The dog is barking.", "It is raining."]


@pytest.fixture
def ckpt(tmp_path):
    path = tmp_path / "model" / "checkpoints" / "model.ckpt"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not a real checkpoint")
    return path


def test_no_model():
    out = comet_score(SRC, HYP, REF, {"model": None, "batch_size": 32})
    assert out == {"comet": {"skipped": "no COMET model configured (set metrics.comet.model)"}}
    assert comet_score(SRC, HYP, REF, {}) == out


@pytest.mark.parametrize("name", ["missing.ckpt", "missing/dir/model", "./missing"])
def test_missing_path(tmp_path, name):
    model = str(tmp_path / name) if not name.startswith(".") else name
    out = comet_score(SRC, HYP, REF, {"model": model})
    assert out["comet"]["skipped"] == f"COMET model path not found: {model}"


def test_folder_without_checkpoint(tmp_path):
    out = comet_score(SRC, HYP, REF, {"model": str(tmp_path)})
    assert "no checkpoints/model.ckpt" in out["comet"]["skipped"]


def test_resolve_checkpoint(ckpt):
    folder = ckpt.parents[1]
    assert resolve_checkpoint(str(folder)) == (str(ckpt.resolve()), None)
    assert resolve_checkpoint(str(ckpt)) == (str(ckpt.resolve()), None)
    assert resolve_checkpoint("Unbabel/wmt22-comet-da") == ("Unbabel/wmt22-comet-da", None)


def test_missing_interpreter(ckpt, tmp_path):
    python = str(tmp_path / "bin" / "python")
    out = comet_score(SRC, HYP, REF, {"model": str(ckpt), "python": python})
    assert out["comet"]["skipped"] == f"COMET python interpreter not found: {python}"


def test_interpreter_without_comet(ckpt):
    """The main venv has no unbabel-comet: the worker reports it instead of scoring."""
    out = comet_score(SRC, HYP, REF, {"model": str(ckpt), "python": sys.executable})
    reason = out["comet"]["skipped"]
    assert reason.startswith(f"unbabel-comet not importable by {sys.executable}")


def test_length_mismatch():
    with pytest.raises(DataError):
        comet_score(SRC, HYP[:1], REF, {"model": None})


FAKE_COMET = textwrap.dedent(
    '''
    """Stand-in for unbabel-comet: scores a segment by its length ratio to the reference."""
    __version__ = "0.0-test"
    CALLS = []

    class _Prediction:
        def __init__(self, scores):
            self.scores = scores
            self.system_score = sum(scores) / len(scores)

    class _Model:
        def predict(self, samples, batch_size=16, gpus=1, progress_bar=True, accelerator="auto"):
            assert batch_size == 7 and gpus == 0 and accelerator == "cpu" and not progress_bar
            return _Prediction([min(len(s["mt"]) / len(s["ref"]), 1.0) for s in samples])

    def load_from_checkpoint(checkpoint_path, reload_hparams=False, strict=False,
                             local_files_only=False):
        assert local_files_only
        if "broken" in checkpoint_path:
            raise OSError("encoder files missing\\nmore detail")
        return _Model()
    '''
)


@pytest.fixture
def fake_comet(tmp_path, monkeypatch):
    pkg = tmp_path / "fake_site" / "comet"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text(FAKE_COMET)
    monkeypatch.setenv("PYTHONPATH", str(pkg.parent))
    return pkg.parent


def test_worker_subprocess_with_stand_in(ckpt, fake_comet):
    cfg = {"model": str(ckpt.parents[1]), "batch_size": 7, "gpus": 0, "python": sys.executable}
    out = comet_score(SRC, HYP, REF, cfg)["comet"]
    expected = 100 * sum(min(len(h) / len(r), 1.0) for h, r in zip(HYP, REF, strict=True)) / 2
    assert out["value"] == pytest.approx(expected)
    assert out["signature"] == f"comet=0.0-test|model={ckpt.parents[1]}"
    assert out["n"] == 2


def test_worker_load_error_is_skip(tmp_path, fake_comet):
    broken = tmp_path / "broken.ckpt"
    broken.write_bytes(b"")
    cfg = {"model": str(broken), "batch_size": 7, "python": sys.executable}
    out = comet_score(SRC, HYP, REF, cfg)
    assert out["comet"]["skipped"] == f"cannot load COMET model {broken}: encoder files missing"


def test_worker_hub_id_not_cached(fake_comet, monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    cfg = {"model": "Unbabel/wmt22-comet-da", "batch_size": 7, "python": sys.executable}
    reason = comet_score(SRC, HYP, REF, cfg)["comet"]["skipped"]
    assert reason.startswith("cannot load COMET model Unbabel/wmt22-comet-da: ")
    assert "not found locally" in reason
