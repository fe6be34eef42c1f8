"""The writing system of a data set's texts, and the words a bag-of-words model counts in them.

Chinese, Japanese, Thai, Lao, Khmer and Burmese are written without spaces between words. scikit-learn's default
``CountVectorizer`` token pattern (``BOW_TOKEN_PATTERN``: two or more word characters between word boundaries) takes a
whole clause of such a text as one "word", so almost no test text shares a word with training and a bag-of-words
model predicts one class for everything (issue 24: 0.350 on a Chinese file, the majority class).

``bow_tokenisation`` decides, from the training texts and the data set's language:

- the language (BCP 47) names a language or script written without spaces (``SPACELESS_LANGUAGES``,
  ``SPACELESS_SCRIPT_SUBTAGS``), or most letters of the training texts lie in the Unicode blocks of such scripts
  (``SPACELESS_BLOCKS``; share >= ``SPACELESS_SHARE``): words come from ICU's word break iterator (``icu4py``,
  ICU4C's dictionary-based segmentation of Chinese/Japanese, Thai, Lao, Khmer and Burmese, and Unicode UAX #29 word
  boundaries elsewhere), every segment holding a letter or digit is a token (one-character words included: many
  Chinese words are one character);
- otherwise scikit-learn's default pattern, exactly as the paper (English and German data sets are unchanged).

A local file whose language is not given is tagged with its script when it is one without spaces (``und-Hani``,
``und-Jpan``, ``und-Thai``, ...: ``detected_language``, BCP 47's "language undetermined, script known"), so the data
set's record in the results says what the texts are written in; such a tag, like ``zh`` or ``ja``, selects the
segmentation. A data set whose language is given is still checked: ``--language en`` on Chinese texts is tokenised
as Chinese, because the texts say so (the language decides only when it names a script without spaces). The choice
and why are recorded in the model's info (``Tokenisation.record``), and ``bench.data.checks.vocabulary_warnings``
applies the same choice before the run.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

#: scikit-learn's default ``CountVectorizer`` token pattern (the kit's BoW models use the defaults, as the paper):
#: a token is two or more word characters (letters, digits, underscore) between word boundaries.
BOW_TOKEN_PATTERN = r"(?u)\b\w\w+\b"
_TOKEN = re.compile(BOW_TOKEN_PATTERN)
_WORD_CHAR = re.compile(r"\w")

#: Unicode blocks of the scripts written without spaces between words, by script: (first, last code point, block
#: name) from the Unicode Character Database's Blocks.txt (Unicode 15.1). ``Han`` also takes the whole Supplementary
#: and Tertiary Ideographic Planes (U+20000..U+3FFFF: CJK Unified Ideographs Extensions B to I and the CJK
#: Compatibility Ideographs Supplement). ``Kana`` is what tells Japanese from Chinese.
SPACELESS_BLOCKS: dict[str, tuple[tuple[int, int, str], ...]] = {
    "Han": (
        (0x3400, 0x4DBF, "CJK Unified Ideographs Extension A"),
        (0x4E00, 0x9FFF, "CJK Unified Ideographs"),
        (0xF900, 0xFAFF, "CJK Compatibility Ideographs"),
        (0x20000, 0x3FFFF, "Supplementary and Tertiary Ideographic Planes"),
    ),
    "Kana": (
        (0x3040, 0x309F, "Hiragana"),
        (0x30A0, 0x30FF, "Katakana"),
        (0x31F0, 0x31FF, "Katakana Phonetic Extensions"),
        (0xFF66, 0xFF9F, "Halfwidth Katakana (in Halfwidth and Fullwidth Forms)"),
    ),
    "Thai": ((0x0E00, 0x0E7F, "Thai"),),
    "Lao": ((0x0E80, 0x0EFF, "Lao"),),
    "Khmer": ((0x1780, 0x17FF, "Khmer"), (0x19E0, 0x19FF, "Khmer Symbols")),
    "Myanmar": ((0x1000, 0x109F, "Myanmar"), (0xAA60, 0xAA7F, "Myanmar Extended-A")),
}
#: BCP 47 primary language subtags of languages written without spaces between words -> the ICU locale that
#: segments them.
SPACELESS_LANGUAGES: dict[str, str] = {
    "zh": "zh",
    "yue": "zh",
    "ja": "ja",
    "th": "th",
    "lo": "lo",
    "km": "km",
    "my": "my",
}
#: BCP 47 script subtags (ISO 15924, lower-cased) of scripts written without spaces -> the ICU locale that segments
#: them: a local file whose language is not given is tagged ``und-Hani``, ``und-Jpan``, ... when its texts are
#: (``detected_language``).
SPACELESS_SCRIPT_SUBTAGS: dict[str, str] = {
    "hani": "zh",
    "hans": "zh",
    "hant": "zh",
    "jpan": "ja",
    "hira": "ja",
    "kana": "ja",
    "hrkt": "ja",
    "thai": "th",
    "laoo": "lo",
    "khmr": "km",
    "mymr": "my",
}
#: Share of the training texts' letters (and combining marks) in ``SPACELESS_BLOCKS`` from which a data set whose
#: language is not given counts as written without spaces: most of its letters.
SPACELESS_SHARE = 0.5
#: Share of kana among Han and kana characters from which Han text is Japanese (Japanese prose is typically 30-70 %
#: kana; Chinese has none).
KANA_SHARE_JAPANESE = 0.1
#: ISO 15924 subtag per dominant script (``Jpan``: Han with kana).
_SCRIPT_SUBTAG = {"Han": "Hani", "Kana": "Jpan", "Thai": "Thai", "Lao": "Laoo", "Khmer": "Khmr", "Myanmar": "Mymr"}
UNDETERMINED = "und"


def script_of(char: str) -> str | None:
    """The ``SPACELESS_BLOCKS`` script of one character (``"Han"``, ``"Kana"``, ``"Thai"``, ...), None outside them."""
    point = ord(char)
    for script, blocks in SPACELESS_BLOCKS.items():
        if any(first <= point <= last for first, last, _ in blocks):
            return script
    return None


def _is_letter(char: str) -> bool:
    """A letter or a combining mark (Unicode general categories L* and M*: Thai vowel signs are marks)."""
    return unicodedata.category(char)[0] in "LM"


@dataclass(frozen=True)
class ScriptShare:
    """What the letters of some texts are written in: ``letters`` (count of L* and M* characters), ``spaceless``
    (how many of them lie in ``SPACELESS_BLOCKS``), per script, and the share (0..1) in such blocks."""

    letters: int
    spaceless: int
    by_script: dict[str, int]

    @property
    def share(self) -> float:
        """The share (0..1) of letters in scripts written without spaces; 0.0 for texts without letters."""
        return self.spaceless / self.letters if self.letters else 0.0

    def subtag(self) -> str | None:
        """The ISO 15924 subtag of the dominant script without spaces: ``Hani`` (Han), ``Jpan`` (Han and kana, kana
        at least ``KANA_SHARE_JAPANESE`` of them), ``Thai``, ``Laoo``, ``Khmr``, ``Mymr``; None when there is none."""
        if not self.by_script:
            return None
        cjk = self.by_script.get("Han", 0) + self.by_script.get("Kana", 0)
        top = max(self.by_script, key=lambda s: cjk if s in ("Han", "Kana") else self.by_script[s])
        if top in ("Han", "Kana"):
            return "Jpan" if self.by_script.get("Kana", 0) >= KANA_SHARE_JAPANESE * cjk else "Hani"
        return _SCRIPT_SUBTAG[top]

    def locale(self) -> str:
        """The ICU locale that segments the dominant script without spaces (``zh``, ``ja``, ``th``, ``lo``, ``km``,
        ``my``); ``und`` when there is none."""
        subtag = self.subtag()
        return SPACELESS_SCRIPT_SUBTAGS[subtag.lower()] if subtag else UNDETERMINED


def script_share(texts: Iterable[str]) -> ScriptShare:
    """Count the letters of ``texts`` and those in blocks of scripts written without spaces (``ScriptShare``)."""
    by_script: Counter[str] = Counter()
    letters = 0
    for text in texts:
        for char in text:
            if _is_letter(char):
                letters += 1
                script = script_of(char)
                if script is not None:
                    by_script[script] += 1
    return ScriptShare(letters=letters, spaceless=sum(by_script.values()), by_script=dict(by_script))


class IcuWordTokenizer:
    """A ``CountVectorizer`` tokenizer: the words of ICU's word break iterator (``icu4py.breakers.WordBreaker``)
    for ``locale``, keeping every segment that holds a letter or digit (``\\w``), one-character words included.
    Its ``repr`` names the locale and the ICU version, so the vectorizer's recorded parameters say what ran."""

    def __init__(self, locale: str) -> None:
        from bench.extras import missing_module_error

        try:
            import icu4py
            from icu4py.breakers import WordBreaker
        except ImportError as exc:
            raise missing_module_error("icu4py", needed_by="word segmentation of scripts without spaces") from exc
        self.locale = locale
        self.icu_version = str(icu4py.icu_version)
        self._breaker = WordBreaker

    def __call__(self, text: str) -> list[str]:
        """The words of ``text`` (already lower-cased by the vectorizer), in order."""
        if not text:
            return []
        return [word for word in self._breaker(text, self.locale) if _WORD_CHAR.search(word)]

    def __repr__(self) -> str:
        return f"IcuWordTokenizer(locale={self.locale!r}, icu={self.icu_version})"


def default_tokens(text: str) -> list[str]:
    """The tokens scikit-learn's default ``CountVectorizer`` counts in ``text``: lower-cased, ``BOW_TOKEN_PATTERN``."""
    return _TOKEN.findall(text.lower())


@dataclass(frozen=True)
class Tokenisation:
    """How a bag-of-words model splits texts into words: ``method`` ``"icu-word-break"`` (with its ICU ``locale``)
    or ``"sklearn-default-pattern"``; ``reason``, why, in words; ``spaceless_share``, the share of the training
    texts' letters in scripts without spaces (0..1)."""

    method: str
    locale: str | None
    reason: str
    spaceless_share: float

    @property
    def segments(self) -> bool:
        """True when words come from ICU's segmentation, not from the default pattern."""
        return self.method == "icu-word-break"

    def tokenizer(self) -> Callable[[str], list[str]] | None:
        """The tokenizer to give ``CountVectorizer(tokenizer=...)``; None for scikit-learn's default pattern."""
        return IcuWordTokenizer(self.locale or UNDETERMINED) if self.segments else None

    def tokens(self) -> Callable[[str], list[str]]:
        """A function text -> its tokens as the model counts them (lower-cased first, as ``CountVectorizer``)."""
        if not self.segments:
            return default_tokens
        split = IcuWordTokenizer(self.locale or UNDETERMINED)
        return lambda text: split(text.lower())

    def record(self) -> dict[str, Any]:
        """The JSON form for the model's info."""
        out: dict[str, Any] = {
            "method": self.method,
            "locale": self.locale,
            "reason": self.reason,
            "spaceless_share": round(self.spaceless_share, 4),
        }
        if self.segments:
            import importlib.metadata

            out["library"] = f"icu4py {importlib.metadata.version('icu4py')}"
        else:
            out["token_pattern"] = BOW_TOKEN_PATTERN
        return out


def spaceless_locale(language: str | None) -> str | None:
    """The ICU locale of a BCP 47 tag that names a language or script written without spaces (``zh``, ``ja-JP``,
    ``und-Hani``, ``sr-Latn`` -> None); None for any other tag, ``und`` or None."""
    parts = (language or UNDETERMINED).replace("_", "-").lower().split("-")
    if parts[0] in SPACELESS_LANGUAGES:
        return SPACELESS_LANGUAGES[parts[0]]
    for part in parts[1:]:
        if len(part) == 4 and part in SPACELESS_SCRIPT_SUBTAGS:
            return SPACELESS_SCRIPT_SUBTAGS[part]
    return None


def detected_language(texts: Sequence[str]) -> str:
    """The BCP 47 tag of texts whose language is not given: ``und-Hani``, ``und-Jpan``, ``und-Thai``, ``und-Laoo``,
    ``und-Khmr`` or ``und-Mymr`` (language undetermined, script known) when at least ``SPACELESS_SHARE`` of their
    letters are in that script without spaces (``script_share``); else ``und``."""
    share = script_share(texts)
    subtag = share.subtag() if share.letters and share.share >= SPACELESS_SHARE else None
    return f"{UNDETERMINED}-{subtag}" if subtag else UNDETERMINED


def bow_tokenisation(train_texts: Sequence[str], language: str | None = None) -> Tokenisation:
    """How a bag-of-words model tokenises a data set, from its training texts and its language (BCP 47; ``None`` or
    ``und``: not given). See the module's docstring for the rule. Pure: imports nothing, raises nothing."""
    share = script_share(train_texts)
    locale = spaceless_locale(language)
    if locale is not None:
        return Tokenisation(
            "icu-word-break",
            locale,
            f"language {language} is written without spaces between words",
            share.share,
        )
    primary = (language or UNDETERMINED).split("-")[0].split("_")[0].lower()
    if share.letters and share.share >= SPACELESS_SHARE:
        locale = share.locale()
        given = f" (the language given, {language}, notwithstanding)" if primary != UNDETERMINED else ""
        return Tokenisation(
            "icu-word-break",
            locale,
            f"{share.share:.0%} of the training texts' letters are in scripts written without spaces "
            f"({', '.join(f'{s} {n}' for s, n in sorted(share.by_script.items()))}; Unicode blocks){given}",
            share.share,
        )
    return Tokenisation(
        "sklearn-default-pattern",
        None,
        "words separated by spaces: scikit-learn's default token pattern, as the paper"
        + (f" ({share.share:.0%} of letters in scripts without spaces)" if share.spaceless else ""),
        share.share,
    )
