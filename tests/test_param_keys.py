"""The key slots that track a job's config slice (repro.param_keys): every leaf once, an edit
changes the slot of the edited key only."""

from __future__ import annotations

import json

from repro import param_keys as pk
from repro.io import canonical_json

SLICE = {"run": {"task": "translation", "seed": 0},
         "training": {"learning_rate": 1e-4, "epochs": 10, "caps": {"train": 5}},
         "method": {"name": "warmup", "options": {"n": 4, "separator": " || "}},
         "decoding": {"num_beams": 4, "stop": ["a", "b"], "extra": {}}}


def test_leaves_are_dotted_keys_with_json_values():
    assert pk.leaves(SLICE) == [
        'decoding.extra={}', 'decoding.num_beams=4', 'decoding.stop=["a", "b"]',
        'method.name="warmup"', 'method.options.n=4', 'method.options.separator=" || "',
        'run.seed=0', 'run.task="translation"', 'training.caps.train=5',
        'training.epochs=10', 'training.learning_rate=0.0001']


def test_slots_hold_every_leaf_once_by_the_hash_of_its_key():
    slots = pk.slots(canonical_json(SLICE))
    assert len(slots) == pk.SLOTS
    held = [leaf for s in slots if s for leaf in s.split(pk.SEP)]
    assert sorted(held) == sorted(pk.leaves(SLICE))
    for i, s in enumerate(slots):
        assert all(pk.slot_of(leaf) == i for leaf in s.split(pk.SEP) if s)
    # the slot of a key does not depend on its value or on the other keys
    assert pk.slot_of("training.learning_rate=1") == pk.slot_of("training.learning_rate=2")


def test_an_edit_changes_only_the_slots_of_the_edited_keys():
    before = pk.slots(canonical_json(SLICE))
    edited = json.loads(json.dumps(SLICE))
    edited["training"]["learning_rate"] = 3e-4
    after = pk.slots(canonical_json(edited))
    changed = [i for i in range(pk.SLOTS) if before[i] != after[i]]
    assert changed == [pk.slot_of("training.learning_rate=")]
    assert "training.learning_rate=0.0001" in before[changed[0]]
    assert "training.learning_rate=0.0003" in after[changed[0]]
    # an added key: its own slot; a removed one likewise
    edited["training"]["new"] = 1
    added = pk.slots(canonical_json(edited))
    assert [i for i in range(pk.SLOTS) if added[i] != after[i]] == [pk.slot_of("training.new=")]
