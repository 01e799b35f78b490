"""Text primitives shared by the constraints: normalisation, loose variants, words, sentences, language.

IFEval counts words with NLTK's `RegexpTokenizer(r"\\w+")` (reproduced exactly by `words`) and sentences
with NLTK's punkt model, which is a downloaded data file. Nothing may be downloaded at run time here, so
`sentences` is a rule-based splitter that agrees with punkt on ordinary prose: a sentence ends at `.`, `!`,
`?`, `‽` or `…` (closing quotes, brackets and markdown emphasis may follow) before whitespace, and at the
CJK full stops `。！？`; a period after a known abbreviation (Mr., e.g., U.S.), a single-letter initial, or a
list number at the start of a line does not end one. Like punkt, a line break alone does not end a sentence.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from typing import Literal

from langdetect import DetectorFactory, LangDetectException, detect

DetectorFactory.seed = 0  # langdetect samples at random; a fixed seed makes every verdict reproducible

Relation = Literal["less than", "at least"]
RELATIONS: tuple[Relation, ...] = ("less than", "at least")

# The languages langdetect can answer (ISO 639-1; Chinese is zh-cn / zh-tw).
LANGDETECT_LANGUAGES = frozenset(
    "af ar bg bn ca cs cy da de el en es et fa fi fr gu he hi hr hu id it ja kn ko lt lv mk ml mr ne nl no pa pl "
    "pt ro ru sk sl so sq sv sw ta te th tl tr uk ur vi zh".split())

_NEWLINES = re.compile(r"\r\n?")
_LEADING_BLANK_LINES = re.compile(r"\A(?:[ \t]*\n)+")
_WORD = re.compile(r"\w+")
_WORD_TOKEN = re.compile(r"\w+(?:['’-]\w+)*")
_TOKEN = re.compile(r"\w+(?:['’-]\w+)*|[^\w\s]")
# A whole token ending in a sentence mark, then closing quotes/brackets/emphasis. Anchored at token starts
# and free of nested quantifiers, so it runs in linear time on any input.
_ENDING_TOKEN = re.compile(r"(?<!\S)\S*[.!?‽…。！？][\"'”’)\]*_]*(?!\S)")
_BLANK_LINE = re.compile(r"\n\s*\n")
_CJK_STOPS = re.compile(r"([。！？]+)")
_CLOSERS = "\"'”’)]*_"
_ABBREVIATIONS = frozenset(
    "mr mrs ms dr prof sr jr st mt vs etc e.g i.e cf approx dept est fig inc ltd co corp vol al no "
    "u.s u.k a.m p.m ph.d p.s p.p.s jan feb mar apr jun jul aug sep sept oct nov dec".split())


def normalize(response: str) -> str:
    """The text every constraint sees: CRLF/CR become LF, Unicode is NFC, leading blank lines and trailing
    whitespace are dropped (a deliberate difference from IFEval, whose verdicts can flip on an invisible
    trailing newline or a CRLF paragraph break). Indentation of the first line is kept."""
    text = unicodedata.normalize("NFC", _NEWLINES.sub("\n", response))
    return _LEADING_BLANK_LINES.sub("", text).rstrip()


def loose_variants(text: str) -> list[str]:
    """IFEval's loose set: the text, without its first line, last line, or both, each also with every `*`
    removed (8 variants; duplicates dropped). The first element is the text itself."""
    lines = text.split("\n")
    cut = ["\n".join(lines[1:]).strip(), "\n".join(lines[:-1]).strip(), "\n".join(lines[1:-1]).strip()]
    variants = [text, *cut, text.replace("*", ""), *(c.replace("*", "") for c in cut)]
    return list(dict.fromkeys(variants))


def compare(value: float, relation: Relation, threshold: float) -> bool:
    return value < threshold if relation == "less than" else value >= threshold


def words(text: str) -> list[str]:
    """Runs of word characters, exactly as IFEval counts words."""
    return _WORD.findall(text)


def tokens(text: str) -> list[str]:
    """Words (hyphenated and apostrophe words whole) and single punctuation marks; stands in for NLTK's
    `word_tokenize`, which splits contractions ("don't" → "do", "n't") where this keeps them whole."""
    return _TOKEN.findall(text)


def word_tokens(text: str) -> list[str]:
    """`tokens` without the punctuation marks."""
    return _WORD_TOKEN.findall(text)


@lru_cache(maxsize=64)  # several constraints and loose variants split the same text; small: texts can be long
def sentences(text: str) -> tuple[str, ...]:
    """The sentences of `text` (see the module docstring for the rules), stripped, empty ones dropped."""
    if any(stop in text for stop in "。！？"):
        text = _CJK_STOPS.sub(r"\1 ", text)
    found, start, prev_end = [], 0, 0
    for token in _ENDING_TOKEN.finditer(text):
        between = text[prev_end : token.start()]  # since the previous candidate: disjoint spans, linear time
        newline = between.rfind("\n")
        first_on_line = not between[newline + 1 :].strip() and (newline >= 0 or prev_end == 0)
        prev_end = token.end()
        if _ends_sentence(token.group(), first_on_line):
            piece = text[start : token.end()].strip()
            if piece:
                found.append(piece)
            start = token.end()
    tail = text[start:].strip()
    if tail:
        found.append(tail)
    return tuple(found)


def _ends_sentence(token: str, first_on_line: bool) -> bool:
    core = token.rstrip(_CLOSERS)
    if core[-1] != "." or core.endswith(".."):
        return True
    stem = core[:-1].lstrip("\"'“‘([*_").lower()
    if stem in _ABBREVIATIONS or (len(stem) == 1 and stem.isalpha()):
        return False
    return not (first_on_line and stem.isdigit())  # "1." opening a numbered-list line


def paragraphs(text: str) -> list[str]:
    """Non-empty pieces between blank lines, stripped. A line of only spaces counts as blank (IFEval splits on
    "\\n\\n" only, so there an invisible space merged two paragraphs)."""
    return [p.strip() for p in _BLANK_LINE.split(text) if p.strip()]


@lru_cache(maxsize=64)
def detect_language(text: str) -> str | None:
    """langdetect's ISO code (primary subtag only, so zh-cn is "zh"); None when it finds no features.
    Cached: detection costs milliseconds and several constraints (and loose variants) ask about one text."""
    try:
        return detect(text).split("-")[0]
    except LangDetectException:
        return None
