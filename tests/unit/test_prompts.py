"""The paper's DSPy chat prompt and the answer parser, on a corpus of real-looking and malformed outputs."""

from __future__ import annotations

import pytest

from bench.prompts import build_messages, normalize_label, parse_answer, prompt_info, strip_reasoning

NEWS = ["World", "Sports", "Business", "Sci/Tech"]
STARS = ["1 star", "2 star", "3 stars", "4 stars", "5 stars"]


def test_messages_follow_the_dspy_chat_format() -> None:
    system, user = build_messages("Stocks fell sharply.", NEWS)
    assert system["role"] == "system" and user["role"] == "user"
    s = system["content"]
    assert "1. `text` (str)" in s and "1. `category` (str)" in s
    for marker in ("[[ ## text ## ]]", "[[ ## category ## ]]", "[[ ## completed ## ]]"):
        assert marker in s
    assert "Classify the text as one of the following categories:" in s
    assert s.rstrip().endswith("- Sci/Tech")
    assert [line.strip() for line in s.splitlines() if line.strip().startswith("- ")] == [f"- {x}" for x in NEWS]
    u = user["content"]
    assert u.startswith("[[ ## text ## ]]\nStocks fell sharply.\n")
    assert "starting with the field `[[ ## category ## ]]`" in u and "`[[ ## completed ## ]]`" in u


def test_german_instruction_is_marked_as_the_kits_translation() -> None:
    system, _ = build_messages("Ein Text.", ["Tongestein", "Steinsalz in steiler Lagerung"], language="de")
    assert "Klassifiziere den Text als eine der folgenden Kategorien:" in system["content"]
    info = prompt_info("de")
    assert "own translation" in info["instruction_source"]
    assert info["template_sha256"] == prompt_info("en")["template_sha256"]  # same template, other words
    assert len(info["template_sha256"]) == 64 and info["version"] == 1


def test_text_is_not_interpreted_as_template() -> None:
    _, user = build_messages("{{ 7*7 }} {% if x %}", NEWS)
    assert "{{ 7*7 }} {% if x %}" in user["content"]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("[[ ## category ## ]]\nSports\n\n[[ ## completed ## ]]", 1),
        ("[[ ## category ## ]]\nsports\n[[ ## completed ## ]]", 1),
        ("[[ ## category ## ]]\n  SCI/TECH  \n\n[[ ## completed ## ]]", 3),
        ("[[ ## category ## ]]\n**Business**\n\n[[ ## completed ## ]]", 2),
        ('[[ ## category ## ]]\n"World"\n[[ ## completed ## ]]', 0),
        ("[[ ## category ## ]]\n- World\n[[ ## completed ## ]]", 0),
        ("[[ ## category ## ]]\nBusiness.\n[[ ## completed ## ]]", 2),
        ("[[ ## category ## ]] World [[ ## completed ## ]]", 0),
        ("[[ ##category## ]]\nWorld", 0),  # sloppy marker, no end marker
        ("[[ ## category ## ]]\nSports\nThe text is about a football match.\n[[ ## completed ## ]]", 1),
        ("World", 0),  # no marker: the whole answer
        ("Sports\n", 1),
        (
            "<think>Stocks: Business? Or World.</think>\n[[ ## category ## ]]\nWorld\n[[ ## completed ## ]]",
            0,
        ),
        ("<think>\nhmm\n</think>\n\n[[ ## category ## ]]\nSci/Tech\n\n[[ ## completed ## ]]", 3),
        ("Okay, let me think.\n</think>\n[[ ## category ## ]]\nSports\n[[ ## completed ## ]]", 1),  # opened in prompt
        ("<think>I keep thinking and never answer", -1),  # ran out of tokens inside the reasoning
        ("[[ ## category ## ]]\nPolitics\n[[ ## completed ## ]]", -1),  # not a label
        ("[[ ## category ## ]]\nSports or World\n[[ ## completed ## ]]", -1),  # two labels: not a valid answer
        ("", -1),
        ("[[ ## category ## ]]\n\n[[ ## completed ## ]]", -1),
        ("[[ ## category ## ]]\nWorld\n[[ ## completed ## ]]\n[[ ## category ## ]]\nSports\n", 1),  # last one wins
        ("I cannot classify this text.", -1),
    ],
)
def test_parser_corpus(raw: str, expected: int) -> None:
    assert parse_answer(raw, NEWS) == expected


def test_labels_with_digits_and_spaces() -> None:
    assert parse_answer("[[ ## category ## ]]\n3 stars\n[[ ## completed ## ]]", STARS) == 2
    assert parse_answer("[[ ## category ## ]]\n2 Star\n[[ ## completed ## ]]", STARS) == 1
    assert parse_answer("[[ ## category ## ]]\n3\n[[ ## completed ## ]]", STARS) == -1


def test_german_labels_with_umlauts() -> None:
    labels = ["Aktive Störungszonen", "Öffentlichkeitsbeteiligung", "geoWK"]
    assert parse_answer("[[ ## category ## ]]\nöffentlichkeitsbeteiligung\n[[ ## completed ## ]]", labels) == 1
    assert parse_answer("[[ ## category ## ]]\nGEOWK", labels) == 2


def test_helpers() -> None:
    assert normalize_label('  "**Sci/Tech**." ') == "sci/tech"
    assert strip_reasoning("<think>a</think>b<think>c</think>d") == "bd"
    assert strip_reasoning("<think>unfinished") is None
