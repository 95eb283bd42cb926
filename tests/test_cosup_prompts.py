"""The co-supervision paper configs prompt as the official code does: per test dataset, the
encoded prompt of a record equals the official template on it, token for token."""

from pathlib import Path

import pytest

from repro import config as rc
from repro.batching import encode_record, prompt_options
from repro.methods import get_method
from repro.models import build_tiny, load_tokenizer

ROOT = Path(__file__).resolve().parents[1]

# Verbatim from kaistAI/Semiparametric_Token-Sequence_Co-Supervision at 10e39b0,
# dataset/generate_dataset.py: TASK_INST (lines 12-35) and the prompt (lines 206-217):
#     instructions + "## Input:\n\n" + item["question"] + "## Output:\n\n"
TASK_INST = {
    "wow": "Given a chat history separated by new lines, generates an informative, "
           "knowledgeable and engaging response. ",
    "fever": "Is the following statement correct or not? Say supports if it's correct; "
             "otherwise say refutes. Also provide the evidence.",
    "eli5": "Provide a paragraph-length response using simple words to answer the following "
            "question.",
    "nq": "Answer the following question with corresponding evidence.",
    "triviaqa": "Answer the following question with corresponding evidence.",
    "zsre": "Find the correct entity given subject and relation with corresponding evidence.",
    "trex": "Find the correct object given subject and relation with corresponding evidence.",
    "asqa": "Answer the following question. The question may be ambiguous and have multiple "
            "correct answers, and in that case, you have to provide a long-form answer "
            "including all correct answers.",
    "hotpotqa": "Answer question that require 2 step reasoning where each reasoning steps have "
                "corresponding evidence.",
}


def official_prompt(task: str, question: str) -> str:
    return TASK_INST[task] + "## Input:\n\n" + question + "## Output:\n\n"


# (our dataset, the official task key, one record's question in that dataset's form)
RECORDS = [
    ("kilt_nq", "nq", "who wrote the novel the rainmaker"),
    ("kilt_triviaqa", "triviaqa", "Which city is the capital of Russia?"),
    ("kilt_hotpotqa", "hotpotqa", "Which river flows through the city where Grisham was born?"),
    ("kilt_eli5", "eli5", "Why is the sky blue?"),
    ("kilt_fever", "fever", "The Yangtze flows through Shanghai."),
    ("kilt_wow", "wow", "Rivers\nI love the Yangtze river.\nWhere does it reach the sea?"),
    ("kilt_zsre", "zsre", "John Grisham [SEP] occupation"),
    ("kilt_trex", "trex", "Moscow [SEP] country"),
    ("alce_asqa", "asqa", "Who won the world cup?"),
    ("alce_eli5", "eli5", "How do rivers form?"),
]


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    texts = [official_prompt(t, q) for _, t, q in RECORDS] * 3
    m = build_tiny("m", {"family": "llama", "config": {
        "hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1,
        "num_attention_heads": 2, "num_key_value_heads": 1}, "tokenizer": {"vocab_size": 200}},
        texts, tmp_path_factory.mktemp("prompts"))
    tok = load_tokenizer(m["path"], "decoder-only")
    get_method("cosup", {}, tok, "decoder-only")  # with the special tokens, as decoding has
    return tok


@pytest.mark.parametrize("configfile", ["paper_cosup.yaml", "paper_cosup_released.yaml"])
@pytest.mark.parametrize("dataset,task,question", RECORDS)
def test_prompt_of_a_record_is_the_official_template(tokenizer, configfile, dataset, task,
                                                     question):
    cfg = rc.load_config(ROOT / "config" / configfile)
    run = next(r for r in rc.expand_runs(cfg) if r.dataset == dataset)
    training = rc.resolve(cfg, run)["training"]
    rec = {"id": "1", "source": question, "target": "x"}
    feat = encode_record(rec, tokenizer, "decoder-only", training["max_source_len"], 8,
                         training["prompt_suffix"], **prompt_options(training))
    want = tokenizer(official_prompt(task, question))["input_ids"]
    assert feat["prompt_ids"] == want
    assert tokenizer.decode(feat["prompt_ids"], skip_special_tokens=True) == official_prompt(
        task, question)


def test_training_data_prompts_are_used_verbatim():
    """The official training inputs are whole prompts already (utils/dataset_utils.py 38-47)."""
    cfg = rc.load_config(ROOT / "config" / "paper_cosup.yaml")
    run = rc.training_run(cfg, next(r for r in rc.expand_runs(cfg) if r.dataset == "kilt_nq"))
    training = rc.resolve(cfg, run)["training"]
    assert run.dataset == "cosup_train"
    assert (training["prompt_template"], training["instruction"],
            training["prompt_suffix"]) == ("{source}", "", "")
