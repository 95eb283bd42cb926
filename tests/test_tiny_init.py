"""Tiny models start each seed from its own initialisation: seed 0 from the weights saved in
the base model directory, any other seed from a fresh initialisation under that seed, without
touching the caller's random state."""

import torch

from repro.models import build_tiny, initial_model, load_model

TEXTS = ["the cat sat on the mat", "a dog ran far away", "birds sing at dawn"] * 30
CONFIGS = {"t5": {"d_model": 32, "d_kv": 8, "d_ff": 64, "num_layers": 1,
                  "num_decoder_layers": 1, "num_heads": 4},
           "llama": {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
                     "num_attention_heads": 4, "num_key_value_heads": 2}}


def weights(model):
    return model.state_dict()


def test_seed_zero_is_the_saved_base_and_other_seeds_differ(tmp_path):
    for family, cfg in CONFIGS.items():
        manifest = build_tiny("m", {"family": family, "config": cfg,
                                    "tokenizer": {"vocab_size": 100}}, TEXTS,
                              tmp_path / family)
        saved = weights(load_model(manifest["path"], manifest["arch"]))
        seed0, seed1 = (weights(initial_model(manifest, s)) for s in (0, 1))
        assert all(torch.equal(saved[k], seed0[k]) for k in saved), family
        assert not all(torch.equal(saved[k], seed1[k]) for k in saved), family
        again = weights(initial_model(manifest, 1))
        assert all(torch.equal(seed1[k], again[k]) for k in seed1), family


def test_initialisation_leaves_the_random_state_alone(tmp_path):
    manifest = build_tiny("m", {"family": "llama", "config": CONFIGS["llama"]}, TEXTS, tmp_path)
    torch.manual_seed(7)
    expected = torch.rand(3)
    torch.manual_seed(7)
    initial_model(manifest, 3)
    assert torch.equal(torch.rand(3), expected)
