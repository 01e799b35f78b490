"""Google's IFEval: its 25 instruction types, with IFEval's ids and keyword-argument names.

Verdicts follow IFEval's reference checks, except where a comment starting "Differs from IFEval" says why
not. Differences that apply to every constraint (newline and whitespace normalisation, the sentence
splitter standing in for NLTK punkt) are described in `text.py`.
"""

from __future__ import annotations

import json
import random
import re
from functools import partial
from typing import Any

from pydantic import Field, field_validator

from ..registry import IFEVAL, WHOLE, Args, Count, NoArgs, Phrase, Positive
from ..registry import constraint as _constraint
from ..text import (LANGDETECT_LANGUAGES, RELATIONS, Relation, compare, detect_language, normalize, paragraphs,
                    sentences, word_tokens, words)
from ..vocabulary import COMMON_LETTERS, END_PHRASES, KEYWORDS, LANGUAGE_NAMES, RARE_LETTERS

constraint = partial(_constraint, family=IFEVAL)


def _relation(rng: random.Random) -> Relation:
    return rng.choice(RELATIONS)


# -- keywords --------------------------------------------------------------------------------------


class Keywords(Args):
    keywords: list[Phrase] = Field(min_length=1)


@constraint("keywords:existence", "Make sure your response includes the keywords {keywords}.", aspects={"keywords"},
            generate=lambda rng, prompt: {"keywords": rng.sample(KEYWORDS, 2)})
def keyword_existence(text: str, args: Keywords) -> bool:
    """Every keyword occurs, case-insensitively, as a substring ("cat" is found in "category", as in
    IFEval). Differs from IFEval: keywords are literal text, not regular expressions."""
    lower = text.lower()
    return all(k.lower() in lower for k in args.keywords)


class KeywordFrequency(Args):
    keyword: Phrase
    frequency: Count
    relation: Relation


@constraint("keywords:frequency", "The word {keyword} should occur {relation} {frequency} times in your response.",
            aspects={"keywords"},
            generate=lambda rng, prompt: {"keyword": rng.choice(KEYWORDS), "frequency": rng.randint(1, 3),
                                          "relation": _relation(rng)})
def keyword_frequency(text: str, args: KeywordFrequency) -> bool:
    """Non-overlapping case-insensitive occurrences of the keyword (substrings count, as in IFEval),
    compared with `frequency` by `relation`."""
    return compare(text.lower().count(args.keyword.strip().lower()), args.relation, args.frequency)


class ForbiddenWords(Args):
    forbidden_words: list[Phrase] = Field(min_length=1)


@constraint("keywords:forbidden_words", "Do not use any of these words in your response: {forbidden_words}.",
            aspects={"keywords"}, generate=lambda rng, prompt: {"forbidden_words": rng.sample(KEYWORDS, 2)})
def forbidden_words(text: str, args: ForbiddenWords) -> bool:
    """None of the words occurs as a whole word, case-insensitively. Differs from IFEval: words are
    literal text, and "whole word" means no word character on either side, also for words such as "C++"
    that IFEval's `\\b` boundaries mishandle."""
    lower = text.lower()
    return not any(w.lower() in lower and re.search(rf"(?<!\w){re.escape(w)}(?!\w)", text, re.IGNORECASE)
                   for w in args.forbidden_words)


class LetterFrequency(Args):
    letter: str = Field(min_length=1, max_length=1)
    let_frequency: Count
    let_relation: Relation


def letter_frequency_kwargs(rng: random.Random, prompt: str) -> dict[str, Any]:
    relation = _relation(rng)
    if relation == "less than":
        return {"letter": rng.choice(RARE_LETTERS), "let_frequency": rng.randint(2, 8), "let_relation": relation}
    return {"letter": rng.choice(COMMON_LETTERS), "let_frequency": rng.randint(5, 20), "let_relation": relation}


@constraint("keywords:letter_frequency", "The letter {letter} should occur {let_relation} {let_frequency} times "
            "in your response.", aspects={"letters"}, generate=letter_frequency_kwargs)
def letter_frequency(text: str, args: LetterFrequency) -> bool:
    """Occurrences of the letter, case-insensitively, compared with `let_frequency` by `let_relation`."""
    return compare(text.lower().count(args.letter.lower()), args.let_relation, args.let_frequency)


# -- language and case -----------------------------------------------------------------------------


class Language(Args):
    language: str

    @field_validator("language")
    @classmethod
    def _detectable(cls, value: str) -> str:
        if value.lower().split("-")[0] not in LANGDETECT_LANGUAGES:
            raise ValueError(f"not a language langdetect knows: {value!r} (ISO 639-1 codes such as 'en', 'fr')")
        return value


@constraint("language:response_language",
            lambda a: f"Write your whole response in {LANGUAGE_NAMES.get(a.language, a.language)}, and in no other "
                      "language.",
            aspects={"language", "case", "keywords"}, excludes={"startend:end_checker"},
            generate=lambda rng, prompt: {"language": rng.choice(sorted(LANGUAGE_NAMES))})
def response_language(text: str, args: Language) -> bool:
    """langdetect (seeded) names the language. As in IFEval, text where it finds no language features
    (digits, symbols) passes. Differs from IFEval: only the primary subtag is compared, so "zh" matches
    langdetect's "zh-cn" and "zh-tw"."""
    detected = detect_language(text)
    return detected is None or detected == args.language.lower().split("-")[0]


class CapitalWordFrequency(Args):
    capital_frequency: Count
    capital_relation: Relation


def _capital_kwargs(rng: random.Random, prompt: str) -> dict[str, Any]:
    relation = _relation(rng)  # "fewer than 5" at the least: "I" and a "P.S." already count
    return {"capital_relation": relation,
            "capital_frequency": rng.randint(2, 10) if relation == "at least" else rng.randint(5, 20)}


@constraint("change_case:capital_word_frequency", "Words written entirely in capital letters should occur "
            "{capital_relation} {capital_frequency} times in your response.", aspects={"case"},
            generate=_capital_kwargs)
def capital_word_frequency(text: str, args: CapitalWordFrequency) -> bool:
    """Words written entirely in capitals (hyphenated words count once; "I" and "A" count, as in IFEval),
    compared with `capital_frequency` by `capital_relation`."""
    return compare(sum(map(str.isupper, word_tokens(text))), args.capital_relation, args.capital_frequency)


@constraint("change_case:english_capital", "Write your whole response in English, using capital letters only.",
            aspects={"case", "language"})
def english_capital(text: str, args: NoArgs) -> bool:
    """No lowercase letter, some cased letter, and langdetect does not name another language than English.
    Differs from IFEval: the language is detected on the lowercased text; langdetect's profiles are
    lowercase, and on capitals it answers "en" for French or German alike, so IFEval never checked it."""
    return text.isupper() and detect_language(text.lower()) in (None, "en")


@constraint("change_case:english_lowercase", "Write your whole response in English, using lowercase letters only; "
            "no capital letters at all.", aspects={"case", "language"})
def english_lowercase(text: str, args: NoArgs) -> bool:
    """No capital letter, some cased letter, and langdetect does not name another language than English."""
    return text.islower() and detect_language(text) in (None, "en")


# -- length ----------------------------------------------------------------------------------------


class NumberSentences(Args):
    num_sentences: Count
    relation: Relation


def _sentence_kwargs(rng: random.Random, prompt: str) -> dict[str, Any]:
    relation = _relation(rng)
    return {"relation": relation, "num_sentences": rng.randint(2, 10) if relation == "at least" else rng.randint(5, 20)}


@constraint("length_constraints:number_sentences", "Your response should have {relation} {num_sentences} sentences.",
            aspects={"sentences"}, generate=_sentence_kwargs)
def number_sentences(text: str, args: NumberSentences) -> bool:
    """The number of sentences (see `text.sentences`) compared with `num_sentences` by `relation`."""
    return compare(len(sentences(text)), args.relation, args.num_sentences)


class NumberWords(Args):
    num_words: Count
    relation: Relation


@constraint("length_constraints:number_words", "Your response should be {relation} {num_words} words long.",
            aspects={"length"},
            generate=lambda rng, prompt: {"relation": _relation(rng), "num_words": rng.randint(100, 500)})
def number_words(text: str, args: NumberWords) -> bool:
    """The number of words (runs of word characters) compared with `num_words` by `relation`."""
    return compare(len(words(text)), args.relation, args.num_words)


_DIVIDER = re.compile(r"\s?\*\*\*\s?")


class NumberParagraphs(Args):
    num_paragraphs: Positive


@constraint("length_constraints:number_paragraphs", "Write exactly {num_paragraphs} paragraphs, separated from "
            "each other by the markdown divider ***", aspects={"paragraphs"},
            generate=lambda rng, prompt: {"num_paragraphs": rng.randint(2, 5)})
def number_paragraphs(text: str, args: NumberParagraphs) -> bool:
    """Exactly `num_paragraphs` pieces between `***` dividers; an empty piece before the first or after
    the last divider is ignored, an empty one in between fails."""
    return divided_paragraphs(text) == args.num_paragraphs


def divided_paragraphs(text: str) -> int:
    """The number of `***`-divided paragraphs, or -1 when an inner one is empty (IFEval's rule)."""
    parts = _DIVIDER.split(text)
    inner_empty = any(not p.strip() for p in parts[1:-1])
    return -1 if inner_empty else sum(1 for p in parts if p.strip())


class NthParagraphFirstWord(Args):
    num_paragraphs: Positive
    nth_paragraph: Positive
    first_word: Phrase


def _nth_paragraph_kwargs(rng: random.Random, prompt: str) -> dict[str, Any]:
    n = rng.randint(2, 5)
    return {"num_paragraphs": n, "nth_paragraph": rng.randint(1, n), "first_word": rng.choice(KEYWORDS)}


_FIRST_WORD_STOP = re.compile(r"[.,?!'\"]")


@constraint("length_constraints:nth_paragraph_first_word", "Write exactly {num_paragraphs} paragraphs, separated by "
            "blank lines (two line breaks) and by nothing else. Paragraph number {nth_paragraph} must begin with "
            "the word {first_word}.", aspects={"paragraphs", "start"}, generate=_nth_paragraph_kwargs)
def nth_paragraph_first_word(text: str, args: NthParagraphFirstWord) -> bool:
    """Exactly `num_paragraphs` blank-line-separated paragraphs, and paragraph `nth_paragraph` begins with
    `first_word` (case-insensitive; leading quotes and anything from the first . , ? ! ' " on are ignored).
    Differs from IFEval: a line of only spaces separates paragraphs too, and the n-th paragraph is counted
    among non-empty ones (IFEval indexes the raw split, so an extra blank line shifted it)."""
    found = paragraphs(text)
    if len(found) != args.num_paragraphs or args.nth_paragraph > len(found):
        return False
    word = found[args.nth_paragraph - 1].split()[0].lstrip("'\"")
    return _FIRST_WORD_STOP.split(word, maxsplit=1)[0].lower() == args.first_word.lower()


# -- content ---------------------------------------------------------------------------------------


class NumberPlaceholders(Args):
    num_placeholders: Count


@constraint("detectable_content:number_placeholders", "Include at least {num_placeholders} placeholders in square "
            "brackets, for example [name].", aspects={"placeholders"},
            generate=lambda rng, prompt: {"num_placeholders": rng.randint(1, 4)})
def number_placeholders(text: str, args: NumberPlaceholders) -> bool:
    """At least `num_placeholders` square-bracketed spans on one line, such as [name]."""
    return bracketed_spans(text) >= args.num_placeholders


def bracketed_spans(text: str) -> int:
    """Matches of IFEval's `\\[.*?\\]`, counted with str.find: the regex is quadratic on a long line of `[`."""
    count = 0
    for line in text.split("\n"):
        pos = 0
        while (opening := line.find("[", pos)) >= 0 and (closing := line.find("]", opening + 1)) >= 0:
            count, pos = count + 1, closing + 1
    return count


class Postscript(Args):
    postscript_marker: Phrase


# IFEval's patterns without their leading `\s*` and trailing `.*$`: the same matches exist, and a leading
# `\s*` makes a search quadratic on long runs of whitespace.
_POSTSCRIPT_PATTERNS = {"P.P.S": r"p\.\s?p\.\s?s", "P.S.": r"p\.\s?s\."}


@constraint("detectable_content:postscript", "End your response with a postscript that begins with "
            "{postscript_marker}", aspects={"postscript"},
            excludes={"punctuation:punctuation_dot", "first_word:first_word_sent"},
            generate=lambda rng, prompt: {"postscript_marker": rng.choice(["P.S.", "P.P.S"])})
def postscript(text: str, args: Postscript) -> bool:
    """The marker appears, case-insensitively (P.S. and P.P.S also with a space after each period), with
    text after it on its line or not (IFEval's rule: anywhere in the response)."""
    marker = args.postscript_marker.strip()
    pattern = _POSTSCRIPT_PATTERNS.get(marker, re.escape(marker.lower()))
    return re.search(pattern, text.lower()) is not None


# -- format ----------------------------------------------------------------------------------------


class NumberBullets(Args):
    num_bullets: Count


_BULLET = re.compile(r"^[ \t]*[*-][ \t]+\S", re.MULTILINE)


@constraint("detectable_format:number_bullet_lists", "Use exactly {num_bullets} markdown bullet points, written like:\n"
            "* First point\n* Second point",
            aspects={"bullets"}, generate=lambda rng, prompt: {"num_bullets": rng.randint(2, 5)})
def number_bullet_lists(text: str, args: NumberBullets) -> bool:
    """Exactly `num_bullets` markdown bullet lines (`*` or `-`, then a space, then text; nested ones count).
    Differs from IFEval, which counts every line starting with `-` or with `*` plus any character: a
    horizontal rule `---`, a negative number or a line opening in *italics* is not a bullet here."""
    return len(_BULLET.findall(text)) == args.num_bullets


CONSTRAINED_RESPONSES = ("My answer is yes.", "My answer is no.", "My answer is maybe.")


@constraint("detectable_format:constrained_response",
            f"Your answer must be one of these: {' / '.join(CONSTRAINED_RESPONSES)}", aspects={WHOLE})
def constrained_response(text: str, args: NoArgs) -> bool:
    """One of "My answer is yes.", "My answer is no.", "My answer is maybe." appears (IFEval's rule)."""
    return any(option in text for option in CONSTRAINED_RESPONSES)


class NumberHighlights(Args):
    num_highlights: Count


@constraint("detectable_format:number_highlighted_sections", "Highlight at least {num_highlights} parts of your answer "
            "with markdown, like *this highlighted part*.", aspects={"highlights"},
            generate=lambda rng, prompt: {"num_highlights": rng.randint(1, 4)})
def number_highlighted_sections(text: str, args: NumberHighlights) -> bool:
    """At least `num_highlights` non-empty *single* or **double** starred spans on one line."""
    single = sum(1 for h in re.findall(r"\*[^\n*]*\*", text) if h.strip("*").strip())
    double = sum(1 for h in re.findall(r"\*\*[^\n*]*\*\*", text) if h[2:-2].strip())
    return single + double >= args.num_highlights


class MultipleSections(Args):
    section_spliter: Phrase
    num_sections: Count


@constraint("detectable_format:multiple_sections", "Organise your response in {num_sections} sections, each "
            "opening with a line {section_spliter} X where X is its number:\n{section_spliter} 1\n[first section]\n"
            "{section_spliter} 2\n[second section]", aspects={"sections", "case"},
            generate=lambda rng, prompt: {"section_spliter": rng.choice(["Section", "SECTION"]),
                                          "num_sections": rng.randint(2, 5)})
def multiple_sections(text: str, args: MultipleSections) -> bool:
    """At least `num_sections` occurrences of the splitter followed by a number ("Section 2"), case-sensitive."""
    pattern = r"\s?" + re.escape(args.section_spliter.strip()) + r"\s?\d+\s?"
    return len(re.findall(pattern, text)) >= args.num_sections


@constraint("detectable_format:json_format", "Your entire output must be valid JSON; you may put it in a ``` code "
            "fence.", aspects={WHOLE})
def json_format(text: str, args: NoArgs) -> bool:
    """The response, without surrounding whitespace and an optional ``` / ```json fence, parses as JSON."""
    body = text.strip()
    for fence in ("```json", "```Json", "```JSON", "```"):
        body = body.removeprefix(fence)
    body = body.removesuffix("```").strip()
    try:
        json.loads(body)
    except (ValueError, RecursionError):  # RecursionError: thousands of nested brackets
        return False
    return True


@constraint("detectable_format:title", "Give your answer a title in double angular brackets, for example "
            "<<a day at sea>>.", aspects={"title"})
def title(text: str, args: NoArgs) -> bool:
    """Some non-blank text in double angular brackets on one line, such as <<poem of joy>>."""
    return any(_line_title(line) for line in text.split("\n"))


def _line_title(line: str) -> bool:
    # IFEval's greedy `<<[^\n]+>>` spans from a line's first "<<" to its last ">>"; found with str.find
    # because the regex backtracks quadratically on a long line of "<".
    start, end = line.find("<<"), line.rfind(">>")
    return start >= 0 and end >= start + 3 and bool(line[start : end + 2].strip("<>").strip())


# -- combination -----------------------------------------------------------------------------------


@constraint("combination:two_responses", "Write two different responses, separated by six asterisks ****** and "
            "by nothing else.", aspects={WHOLE})
def two_responses(text: str, args: NoArgs) -> bool:
    """Exactly two non-empty, different parts around `******` (an empty part may only be first or last)."""
    parts = text.split("******")
    if any(not p.strip() for p in parts[1:-1]):
        return False
    answers = [p.strip() for p in parts if p.strip()]
    return len(answers) == 2 and answers[0] != answers[1]


class RepeatPrompt(Args):
    prompt_to_repeat: Phrase


@constraint("combination:repeat_prompt", "Begin by repeating the request before this sentence exactly as written, "
            "then answer it. Write nothing before the repeated request, and do not repeat this sentence.",
            aspects={WHOLE}, generate=lambda rng, prompt: {"prompt_to_repeat": prompt})
def repeat_prompt(text: str, args: RepeatPrompt) -> bool:
    """The response begins with `prompt_to_repeat`, case-insensitively."""
    return text.strip().lower().startswith(normalize(args.prompt_to_repeat).strip().lower())


# -- start and end ---------------------------------------------------------------------------------


class EndPhrase(Args):
    end_phrase: Phrase


@constraint("startend:end_checker", "End your response with the exact phrase \"{end_phrase}\", with nothing "
            "after it.", aspects={"end"}, generate=lambda rng, prompt: {"end_phrase": rng.choice(END_PHRASES)})
def end_checker(text: str, args: EndPhrase) -> bool:
    """The response ends with the phrase, case-insensitively, ignoring wrapping double quotes. Differs from
    IFEval: curly double quotes are ignored too."""
    return text.strip().strip('"“”').lower().endswith(args.end_phrase.strip().lower())


@constraint("startend:quotation", "Put your entire response inside double quotation marks.",
            aspects={"start", "end"}, excludes={"detectable_format:title"})
def quotation(text: str, args: NoArgs) -> bool:
    """The response starts and ends with a double quotation mark. Differs from IFEval: typographic
    quotes “…” count as well as straight ones."""
    body = text.strip()
    return len(body) > 1 and ((body[0], body[-1]) in (('"', '"'), ("“", "”")))


# -- punctuation -----------------------------------------------------------------------------------

COMMAS = ",，、،﹐﹑"


@constraint("punctuation:no_comma", "Do not use a single comma anywhere in your response.", aspects={"comma"})
def no_comma(text: str, args: NoArgs) -> bool:
    """No comma anywhere. Differs from IFEval (ASCII "," only): full-width, ideographic, Arabic and small
    commas (，、،﹐﹑) are commas too, so answers in other scripts are held to the same rule."""
    return not any(c in text for c in COMMAS)
