"""The zero-shot prompt (Jinja2 templates reproducing the paper's DSPy chat format) and the answer parser.

The paper called its LLMs through DSPy with a signature ``text -> category`` whose instruction lists the categories;
DSPy's ChatAdapter turned that into a system message (fields, the ``[[ ## field ## ]]`` markers, the instruction) and a
user message (the text, and how to answer). ``templates/dspy_chat.*.j2`` reproduce that format. The English
instruction is the paper's (its Appendix); the German one for FKTG is the kit's own translation (the paper does not
print its German wording) and is marked as such in ``PROMPT_INFO``.

The templates are versioned: ``PROMPT_VERSION`` plus the sha256 of the template files go into every result, so two runs
can tell whether they asked the same question.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Sequence
from importlib import resources
from typing import Any

PROMPT_NAME = "dspy-chat"
PROMPT_VERSION = 1

#: The instruction before the list of categories, per language.
INSTRUCTIONS = {
    "en": "Classify the text as one of the following categories:",
    # The kit's own translation: the paper's German wording is not printed.
    "de": "Klassifiziere den Text als eine der folgenden Kategorien:",
}
INSTRUCTION_SOURCE = {"en": "paper (Appendix A, English rendering)", "de": "kit's own translation (not the paper's)"}

_TEMPLATE_FILES = ("dspy_chat.system.j2", "dspy_chat.user.j2")


@functools.cache
def _environment() -> Any:
    import jinja2

    # Autoescape off: this is a plain-text chat prompt, not HTML; StrictUndefined: a missing variable is a bug.
    return jinja2.Environment(
        loader=jinja2.PackageLoader("bench.prompts", "templates"),
        autoescape=False,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=False,
    )


@functools.cache
def template_sha256() -> str:
    """sha256 over both template files (bytes), so any wording change shows up in the results."""
    folder = resources.files("bench.prompts") / "templates"
    return _named_contents_sha256([(name, (folder / name).read_bytes()) for name in _TEMPLATE_FILES])


def _named_contents_sha256(contents: Sequence[tuple[str, bytes]]) -> str:
    """sha256 over ``name`` (UTF-8) then its bytes, for each (name, bytes) in order: a digest of several files'
    contents held in memory (a file's own digest is ``bench.fsutil.file_sha256``)."""
    digest = hashlib.sha256()
    for name, data in contents:
        digest.update(name.encode())
        digest.update(data)
    return digest.hexdigest()


def prompt_info(language: str) -> dict[str, Any]:
    """What identifies the prompt in the results: name, version, template hash, instruction and its source."""
    instruction = _instruction(language)
    return {
        "name": PROMPT_NAME,
        "version": PROMPT_VERSION,
        "template_sha256": template_sha256(),
        "language": language,
        "instruction": instruction,
        "instruction_source": INSTRUCTION_SOURCE.get(language, "English fallback"),
    }


def _instruction(language: str) -> str:
    return INSTRUCTIONS.get(language, INSTRUCTIONS["en"])


def build_messages(text: str, labels: Sequence[str], language: str = "en") -> list[dict[str, str]]:
    """The chat messages (system, user) for one text, in the paper's DSPy format."""
    env = _environment()
    system = env.get_template(_TEMPLATE_FILES[0]).render(instruction=_instruction(language), labels=list(labels))
    user = env.get_template(_TEMPLATE_FILES[1]).render(text=text)
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


# --- the answer parser ----------------------------------------------------------------------------------------

_THINK_BLOCK = re.compile(r"<think>.*?</think>", re.DOTALL | re.IGNORECASE)
_FIELD = re.compile(r"\[\[\s*##\s*category\s*##\s*\]\](.*?)(?=\[\[\s*##|\Z)", re.DOTALL | re.IGNORECASE)
_STRIP_CHARS = " \t\r\n\"'`*_.:;,-–—>[]()"


def normalize_label(text: str) -> str:
    """Case-folded, whitespace-collapsed, with surrounding quotes, markdown emphasis, bullets and punctuation off."""
    return " ".join(text.split()).strip(_STRIP_CHARS).casefold()


def strip_reasoning(raw: str) -> str | None:
    """Drop ``<think>...</think>`` blocks; None when a block is opened and never closed (the answer never came).

    Some reasoning models' chat templates open the block in the prompt, so an output may hold only the closing tag:
    everything up to it is reasoning.
    """
    text = _THINK_BLOCK.sub("", raw)
    lowered = text.lower()
    if "</think>" in lowered:
        text = text[lowered.rindex("</think>") + len("</think>") :]
    elif "<think>" in lowered:
        return None
    return text


def parse_answer(raw: str, labels: Sequence[str]) -> int:
    """The label index the model answered, or -1 for an answer that matches no label (counted as wrong).

    Reads the ``[[ ## category ## ]]`` field (the last one, if the model repeated it); without the marker, the whole
    answer. The field matches a label when equal after ``normalize_label``; the first line of the field is tried too,
    since small models often add an explanation after the label.
    """
    text = strip_reasoning(raw)
    if text is None:
        return -1
    fields = _FIELD.findall(text)
    candidate = fields[-1] if fields else text
    lookup = {normalize_label(label): i for i, label in enumerate(labels)}
    for attempt in (candidate, candidate.strip().split("\n", 1)[0]):
        index = lookup.get(normalize_label(attempt))
        if index is not None:
            return index
    return -1
