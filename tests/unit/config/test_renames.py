"""Tests of config/renames.py: Hailo's model names across releases and the hint for a name not offered."""

from __future__ import annotations

import time

import pytest

from hailo_ollama_service.config import renames

# What /hailo/v1/list answers: Hailo 5.1.1's five models, 5.4.0's six (tests/standin/manifests-*).
LIST_51 = ["deepseek_r1_distill_qwen:1.5b", "llama3.2:3b", "qwen2.5-coder:1.5b", "qwen2.5-instruct:1.5b",
           "qwen2:1.5b"]
LIST_54 = ["deepseek_r1:1.5b", "llama3.2:1b", "qwen2.5-coder:1.5b", "qwen2.5:1.5b", "qwen2:1.5b", "qwen3:1.7b"]


@pytest.mark.parametrize("old,new", [("qwen2.5-instruct:1.5b", "qwen2.5:1.5b"),
                                     ("deepseek_r1_distill_qwen:1.5b", "deepseek_r1:1.5b")])
def test_a_5_1_name_on_a_5_4_server_gets_did_you_mean_its_new_name(old, new):
    assert renames.hint(old, LIST_54) == \
        f"{old}: not offered by this server; did you mean {new}? (Hailo 5.2 renamed it)"


@pytest.mark.parametrize("new,old", [("qwen2.5:1.5b", "qwen2.5-instruct:1.5b"),
                                     ("deepseek_r1:1.5b", "deepseek_r1_distill_qwen:1.5b"),
                                     ("deepseek-r1:1.5b", "deepseek_r1_distill_qwen:1.5b")])
def test_a_5_4_name_on_a_5_1_server_gets_did_you_mean_its_old_name(new, old):
    assert renames.hint(new, LIST_51) == (f"{new}: not offered by this server; did you mean {old}? "
                                          "(its name before Hailo 5.2)")


def test_the_spelling_of_hailos_notes_gets_the_name_the_server_lists():
    assert renames.hint("deepseek-r1:1.5b", LIST_54) == \
        "deepseek-r1:1.5b: not offered by this server; did you mean deepseek_r1:1.5b?"


def test_a_dropped_model_gets_what_the_server_offers_nearest_first():
    assert renames.hint("llama3.2:3b", LIST_54) == (
        "llama3.2:3b: not offered by this server (Hailo 5.2 dropped it); it offers: llama3.2:1b, "
        "deepseek_r1:1.5b, qwen2.5-coder:1.5b, qwen2.5:1.5b, qwen2:1.5b, qwen3:1.7b")


def test_a_model_of_a_later_release_on_a_5_1_server_says_so_and_what_it_offers():
    text = renames.hint("qwen3:1.7b", LIST_51)
    assert text and text.startswith("qwen3:1.7b: not offered by this server (Hailo 5.3 and later offer it); "
                                    "it offers: ")
    assert sorted(text.split("it offers: ")[1].split(", ")) == LIST_51


def test_a_typo_gets_the_near_names():
    assert renames.hint("qwen2:1.5", LIST_51) == \
        ("qwen2:1.5: not offered by this server; did you mean qwen2:1.5b, qwen2.5-coder:1.5b or "
         "qwen2.5-instruct:1.5b?")
    assert renames.hint("qwen2", LIST_54) == "qwen2: not offered by this server; did you mean qwen2:1.5b?"


def test_a_name_near_nothing_gets_the_sorted_list():
    assert renames.hint("nosuch:1b", LIST_54) == \
        "nosuch:1b: not offered by this server; it offers: " + ", ".join(sorted(LIST_54))


@pytest.mark.parametrize("model,offered", [("qwen2:1.5b", LIST_51), ("qwen2.5:1.5b", LIST_54),
                                           ("anything:1b", []), ("qwen2.5-instruct:1.5b", LIST_51)])
def test_an_offered_model_or_an_empty_list_gives_no_hint(model, offered):
    assert renames.hint(model, offered) is None


def test_the_table_works_both_ways_from_one_entry():
    for old, new in renames.RENAMED.items():
        assert all(old in renames.other_names(name) for name in new)
        assert set(renames.other_names(old)) == set(new)
    assert renames.other_names("qwen2:1.5b") == ()


def test_every_name_from_the_server_is_escaped():
    text = renames.hint("qwen9\x1b:1b", ["qwen9\x1b]0;owned\x07:1b", "x\u202e:1"])
    assert text is not None and "\x1b" not in text and "\u202e" not in text and "\x07" not in text
    assert text.startswith("qwen9\\x1b:1b: not offered by this server; did you mean qwen9\\x1b]0;owned\\x07:1b?")


def test_a_huge_hostile_list_is_bounded_in_names_shown_and_in_time():
    names = [f"m{n}:{'x' * 50}" for n in range(100_000)] + ["y" * 100_000]
    start = time.monotonic()
    text = renames.hint("nosuch", names)
    assert time.monotonic() - start < 2
    assert text is not None and text.endswith(f" (and {renames.MOST_NAMES - renames.MOST_SHOWN} more)")
    assert len(text) < 2000
    assert renames.hint(names[-2], names) is None  # offered, though past the names compared
