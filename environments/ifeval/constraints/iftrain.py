"""The RLVR instruction-following training constraints beyond IFEval's 25: the 29 that AllenAI's open-instruct
adds in `IFEvalG` (the IFBench paper calls them IFTrain), with its ids and keyword-argument names.

Verdicts follow the open-instruct checks, except where a comment starting "Differs" says why not; most
differences fix checks that reject what their own instruction asks for (punctuation counted as words,
"including index n" sliced exclusively) or accept almost anything (a one-letter "palindrome").
"""

from __future__ import annotations

import random
import re
import string
from functools import partial
from typing import Any

from pydantic import model_validator

from ..registry import IFTRAIN, WHOLE, Args, Count, NoArgs, Phrase, Positive
from ..registry import constraint as _constraint
from ..text import RELATIONS, Relation, compare, normalize, paragraphs, sentences, tokens, word_tokens, words
from ..vocabulary import KEYWORDS, PHRASES
from .ifeval import KeywordFrequency, LetterFrequency, divided_paragraphs, letter_frequency_kwargs

constraint = partial(_constraint, family=IFTRAIN)

_PUNCTUATION = string.punctuation + "“”‘’…"


def bare(word: str) -> str:
    """A word without the punctuation (and markdown emphasis) around it, lowercased."""
    return word.strip(_PUNCTUATION).lower()


def same_text(response: str, expected: str) -> bool:
    """Equal ignoring case and surrounding whitespace (the copy constraints' rule)."""
    return response.strip().lower() == normalize(expected).strip().lower()


class Keyword(Args):
    keyword: Phrase


def _keyword(rng: random.Random, prompt: str) -> dict[str, Any]:
    return {"keyword": rng.choice(KEYWORDS)}


# -- copying ---------------------------------------------------------------------------------------


class RepeatPhrase(Args):
    phrase: Phrase
    small_n: Positive

    @model_validator(mode="after")
    def _has_middle(self) -> RepeatPhrase:
        if len(self.phrase.split()) < 3:
            raise ValueError(f"phrase needs at least 3 words to change one in the middle, got {self.phrase!r}")
        return self


@constraint("copy:repeat_phrase", "Repeat the phrase \"{phrase}\" exactly {small_n} times, each time replacing "
            "just one word in the middle of it with another word.", aspects={"keywords"},
            excludes={"count:lowercase_counting"},
            generate=lambda rng, prompt: {"phrase": rng.choice(PHRASES), "small_n": rng.randint(2, 3)})
def repeat_phrase(text: str, args: RepeatPhrase) -> bool:
    """Exactly `small_n` runs of words, each starting with the phrase's first word and ending at the next
    occurrence of its last word (within a line), and each has the phrase's length with exactly one word
    different. Differs from open-instruct: words compare without surrounding punctuation (there a final
    "worm." counted as a changed word) and a run starts at a whole word, not inside one."""
    phrase = args.phrase.split()
    if phrase[0].lower() not in text.lower():
        return False
    runs = [run for line in text.split("\n") for run in _runs(line.split(), phrase[0], phrase[-1])]
    return len(runs) == args.small_n and all(_one_word_changed(run, phrase) for run in runs)


def _runs(line: list[str], first: str, last: str) -> list[list[str]]:
    runs, i = [], 0
    while i < len(line):
        if bare(line[i]) == first.lower():
            end = next((j for j in range(i + 1, len(line)) if bare(line[j]) == last.lower()), None)
            if end is None:
                break
            runs.append(line[i : end + 1])
            i = end + 1
        else:
            i += 1
    return runs


def _one_word_changed(run: list[str], phrase: list[str]) -> bool:
    return len(run) == len(phrase) and sum(bare(a) != bare(b) for a, b in zip(run, phrase)) == 1


class PromptToRepeat(Args):
    prompt_to_repeat: Phrase


def _prompt(rng: random.Random, prompt: str) -> dict[str, Any]:
    return {"prompt_to_repeat": prompt}


@constraint("copy:copy", "Copy the request before this sentence word for word as your whole output; do not "
            "carry it out, and do not copy this sentence.", aspects={WHOLE}, generate=_prompt)
def copy(text: str, args: PromptToRepeat) -> bool:
    """The response is `prompt_to_repeat` (ignoring case and surrounding whitespace)."""
    return same_text(text, args.prompt_to_repeat)


class Span(Args):
    prompt_to_repeat: Phrase
    n_start: Count
    n_end: Count

    @model_validator(mode="after")
    def _ordered(self) -> Span:
        if self.n_end < self.n_start:
            raise ValueError(f"n_end ({self.n_end}) is before n_start ({self.n_start})")
        return self


def span_kwargs(rng: random.Random, prompt: str) -> dict[str, Any]:
    start = rng.randrange(max(1, len(prompt) // 2))
    end = rng.randint(start + 1, max(start + 1, len(prompt) - 1))
    return {"prompt_to_repeat": prompt, "n_start": start, "n_end": end}


@constraint("new:copy_span_idx", "Copy the characters of the request before this sentence from index {n_start} to "
            "index {n_end}, both included (indices count characters from 0), and output nothing else.",
            aspects={WHOLE}, generate=span_kwargs)
def copy_span_idx(text: str, args: Span) -> bool:
    """The response is `prompt_to_repeat[n_start : n_end + 1]` (ignoring case and surrounding whitespace).
    Differs from open-instruct, which slices `[n_start:n_end]` although its instruction says the span
    includes index n_end: here the span is what the instruction says."""
    return same_text(text, args.prompt_to_repeat[args.n_start : args.n_end + 1])


@constraint("copy:copying_simple", "Repeat the request before this sentence exactly as written and do not answer "
            "it; write nothing before it, and do not repeat this sentence.", aspects={WHOLE}, generate=_prompt)
def copying_simple(text: str, args: PromptToRepeat) -> bool:
    """The response is `prompt_to_repeat` (ignoring case and surrounding whitespace)."""
    return same_text(text, args.prompt_to_repeat)


class CopyingMultiple(Args):
    prompt_to_repeat: Phrase
    N: Positive


@constraint("copy:copying_multiple", "Repeat the request before this sentence exactly as written {N} times, "
            "separating the copies with six asterisks ******, and do not answer it; write nothing before the first "
            "copy, and do not repeat this sentence.", aspects={WHOLE},
            generate=lambda rng, prompt: {"prompt_to_repeat": prompt, "N": rng.randint(2, 3)})
def copying_multiple(text: str, args: CopyingMultiple) -> bool:
    """Exactly N parts around `******`, each equal to `prompt_to_repeat` (ignoring case and whitespace)."""
    parts = text.split("******")
    return len(parts) == args.N and all(same_text(p, args.prompt_to_repeat) for p in parts)


# -- formatting ------------------------------------------------------------------------------------


@constraint("detectable_format:sentence_hyphens", "Join all your sentences with hyphens, leaving no spaces around "
            "the hyphens.", aspects={WHOLE})
def sentence_hyphens(text: str, args: NoArgs) -> bool:
    """The pieces between hyphens are exactly the sentences of the response, with no space next to a
    hyphen (a single sentence without hyphens passes, as in open-instruct)."""
    parts = text.split("-")
    return all(p and p == p.strip() for p in parts) and list(sentences(" ".join(parts))) == parts


@constraint("detectable_format:square_brackets", "Put every word of your response in its own square brackets, "
            "[like] [this].", aspects={WHOLE})
def square_brackets(text: str, args: NoArgs) -> bool:
    """Every whitespace-separated token starts with `[` and ends with `]`."""
    return all(t.startswith("[") and t.endswith("]") for t in text.split())


@constraint("detectable_format:bigram_wrapping", "Wrap every pair of consecutive words in double angular brackets, "
            "for example <<I am>> <<at home>> <<with my>> <<old dog>>.", aspects={WHOLE})
def bigram_wrapping(text: str, args: NoArgs) -> bool:
    """Tokens taken in pairs: the first of each pair starts with `<<`, the second ends with `>>` (an odd
    last token is free, as in open-instruct)."""
    found = text.split()
    return all(found[i].startswith("<<") and found[i + 1].endswith(">>") for i in range(0, len(found) - 1, 2))


@constraint("paragraphs:paragraphs", "Write exactly 2 paragraphs, separated from each other by the markdown "
            "divider ***",
            aspects={"paragraphs"})
def two_divided_paragraphs(text: str, args: NoArgs) -> bool:
    """Exactly two paragraphs around `***` dividers (the rule of length_constraints:number_paragraphs)."""
    return divided_paragraphs(text) == 2


@constraint("paragraphs:paragraphs2", "Write exactly 2 paragraphs, separated by a blank line (two line breaks) and by "
            "nothing else.", aspects={"paragraphs"})
def two_blank_line_paragraphs(text: str, args: NoArgs) -> bool:
    """Exactly two paragraphs between blank lines. Differs from open-instruct: a run of several blank
    lines, or a line of spaces, separates like one blank line (there it failed or merged paragraphs)."""
    return len(paragraphs(text)) == 2


# -- words at positions ----------------------------------------------------------------------------


class FirstWord(Args):
    first_word: Phrase


class LastWord(Args):
    last_word: Phrase


@constraint("first_word:first_word_sent", "Begin every sentence with the word {first_word}.",
            aspects={"sentences", "start"}, generate=lambda rng, prompt: {"first_word": rng.choice(KEYWORDS)})
def first_word_sent(text: str, args: FirstWord) -> bool:
    """Every sentence's first word is `first_word` (case-insensitive). Differs from open-instruct:
    punctuation and markdown around the word are ignored ("Lantern," is the word lantern)."""
    return all(bare(s.split()[0]) == args.first_word.lower() for s in sentences(text))


@constraint("first_word:first_word_answer", "Make {first_word} the first word of your response.", aspects={"start"},
            generate=lambda rng, prompt: {"first_word": rng.choice(KEYWORDS)})
def first_word_answer(text: str, args: FirstWord) -> bool:
    """The response's first word is `first_word` (case-insensitive, surrounding punctuation ignored)."""
    return bare(text.split()[0]) == args.first_word.lower()


@constraint("last_word:last_word_sent", "End every sentence with the word {last_word}, just before its punctuation.",
            aspects={"sentences", "end"}, generate=lambda rng, prompt: {"last_word": rng.choice(KEYWORDS)})
def last_word_sent(text: str, args: LastWord) -> bool:
    """Every sentence's last word, with punctuation removed, is `last_word` (case-insensitive)."""
    return all(_last_word(s) == args.last_word.lower() for s in sentences(text))


@constraint("last_word:last_word_answer", "Make {last_word} the last word of your response.", aspects={"end"},
            generate=lambda rng, prompt: {"last_word": rng.choice(KEYWORDS)})
def last_word_answer(text: str, args: LastWord) -> bool:
    """The response's last word, with punctuation removed, is `last_word` (case-insensitive)."""
    return _last_word(text) == args.last_word.lower()


def _last_word(text: str) -> str:
    return re.sub(r"[^\w\s]", "", text.split()[-1]).lower()


class KeywordPosition(Args):
    keyword: Phrase
    n: Positive
    m: Positive


def keyword_position_kwargs(rng: random.Random, prompt: str) -> dict[str, Any]:
    return {"keyword": rng.choice(KEYWORDS), "n": rng.randint(1, 5), "m": rng.randint(1, 10)}


@constraint("keywords:keyword_specific_position", "Use the word {keyword} as word number {m} of sentence number {n}.",
            aspects={"sentences", "keywords", "start"}, generate=keyword_position_kwargs)
def keyword_specific_position(text: str, args: KeywordPosition) -> bool:
    """Sentence n (from 1) exists and its m-th word (from 1, punctuation not counted) is `keyword`,
    case-insensitively. Differs from open-instruct: punctuation marks are not counted as words and case
    is ignored, as in IFBench's version of this constraint (words:keywords_specific_position)."""
    return word_at(text, args.n, args.m) == args.keyword.lower()


def word_at(text: str, n: int, m: int) -> str | None:
    """The m-th word of the n-th sentence, lowercased; None if there is none."""
    found = sentences(text)
    if len(found) < n:
        return None
    sentence_words = word_tokens(found[n - 1])
    return sentence_words[m - 1].lower() if len(sentence_words) >= m else None


@constraint("keywords:start_end", "Begin and end your response with the same word, and write nothing after that last "
            "word, not even punctuation.", aspects={"start", "end"})
def start_end(text: str, args: NoArgs) -> bool:
    """At least two tokens, the first and last equal (case-insensitive); a final punctuation mark is a
    token of its own, so it fails, as the instruction says."""
    found = tokens(text)
    return len(found) >= 2 and found[0].lower() == found[-1].lower()


# -- keywords --------------------------------------------------------------------------------------


@constraint("keywords:word_once", "Use the word {keyword} exactly once in your response.", aspects={"keywords"},
            generate=_keyword)
def word_once(text: str, args: Keyword) -> bool:
    """Exactly one case-insensitive occurrence of the keyword (substrings count, as in keywords:frequency)."""
    return text.lower().count(args.keyword.strip().lower()) == 1


@constraint("keywords:word_count_different_numbers", "The word {keyword} should occur {relation} {frequency} times "
            "in your response.", aspects={"keywords"},
            generate=lambda rng, prompt: {"keyword": rng.choice(KEYWORDS), "frequency": rng.randint(1, 4),
                                          "relation": rng.choice(RELATIONS)})
def word_count_different_numbers(text: str, args: KeywordFrequency) -> bool:
    """Case-insensitive occurrences of the keyword compared with `frequency` by `relation`."""
    return compare(text.lower().count(args.keyword.strip().lower()), args.relation, args.frequency)


@constraint("keywords:exclude_word_harder", "Do not use the word {keyword} anywhere in your response.",
            aspects={"keywords"}, generate=_keyword)
def exclude_word_harder(text: str, args: Keyword) -> bool:
    """The keyword does not occur as a whole word, case-insensitively. Differs from open-instruct, which
    only looked for it between two spaces, case-sensitively (so "keyword." or "Keyword" passed)."""
    return re.search(rf"(?<!\w){re.escape(args.keyword.strip())}(?!\w)", text, re.IGNORECASE) is None


class TwoKeywords(Args):
    keyword1: Phrase
    keyword2: Phrase


@constraint("count:count_increment_word", "Use the word {keyword1} exactly once and the word {keyword2} exactly twice.",
            aspects={"keywords"},
            generate=lambda rng, prompt: dict(zip(("keyword1", "keyword2"), rng.sample(KEYWORDS, 2))))
def count_increment_word(text: str, args: TwoKeywords) -> bool:
    """keyword1 occurs exactly once and keyword2 exactly twice (case-insensitive, substrings count)."""
    lower = text.lower()
    return lower.count(args.keyword1.strip().lower()) == 1 and lower.count(args.keyword2.strip().lower()) == 2


@constraint("keywords:palindrome", "Include a palindrome in your response.", aspects={"palindrome"})
def palindrome(text: str, args: NoArgs) -> bool:
    """Some word of at least three letters or digits reads the same backwards (case and punctuation
    ignored). Differs from open-instruct, where any one-letter word such as "a" or "I" was a palindrome."""
    return any(len(w) >= 3 and w == w[::-1] for w in (bare(t) for t in text.split()))


@constraint("keywords:no_adjacent_consecutive", "No two neighbouring words may start with consecutive letters of the "
            "alphabet (such as a word starting with b followed by one starting with c).", aspects={"words"})
def no_adjacent_consecutive(text: str, args: NoArgs) -> bool:
    """No word starts with the letter right after the first letter of the word before it (a→b, ...,
    y→z; case-insensitive). Differs from open-instruct: leading punctuation is skipped and only letters
    count, so "(apple" starts with a and digits are never "consecutive letters"."""
    initials = [b[0] for b in map(bare, text.split()) if b]
    return not any(a in string.ascii_lowercase and b == chr(ord(a) + 1) for a, b in zip(initials, initials[1:]))


# -- punctuation, case, counting -------------------------------------------------------------------

DOTS = ".．。…"
EXCLAMATIONS = "!！¡‽"


@constraint("punctuation:punctuation_dot", "Do not use any dots (.) in your response, as punctuation or otherwise.",
            aspects={"dots"})
def punctuation_dot(text: str, args: NoArgs) -> bool:
    """No period anywhere. Differs from open-instruct (ASCII "." only): full-width and ideographic full
    stops and the ellipsis character (．。…) count as dots too."""
    return not any(c in text for c in DOTS)


@constraint("punctuation:punctuation_exclamation", "Do not use any exclamation marks (!) in your response.",
            aspects={"exclamations"})
def punctuation_exclamation(text: str, args: NoArgs) -> bool:
    """No exclamation mark anywhere. Differs from open-instruct (ASCII "!" only): ！ ¡ ‽ count too."""
    return not any(c in text for c in EXCLAMATIONS)


class AtMost(Args):
    N: Count


@constraint("count:lowercase_counting", "Your response may contain at most {N} words written in lowercase letters.",
            aspects={"case"}, generate=lambda rng, prompt: {"N": rng.randint(2, 20)})
def lowercase_counting(text: str, args: AtMost) -> bool:
    """At most N all-lowercase ASCII words (open-instruct's `\\b[a-z]+\\b`)."""
    return len(re.findall(r"\b[a-z]+\b", text)) <= args.N


class LetterCount(Args):
    N: Count
    relation: Relation


def _letter_count(rng: random.Random, prompt: str) -> dict[str, Any]:
    relation = rng.choice(RELATIONS)
    return {"relation": relation, "N": rng.randint(100, 800) if relation == "at least" else rng.randint(400, 2000)}


@constraint("letters:letter_counting", "Your response should contain {relation} {N} letters.", aspects={"length"},
            generate=_letter_count)
def letter_counting(text: str, args: LetterCount) -> bool:
    """The number of letters compared with N by `relation`. Differs from open-instruct, which counts
    A–Z only: letters of every script count (é, ж, 字)."""
    return compare(sum(map(str.isalpha, text)), args.relation, args.N)


@constraint("letters:letter_counting2", "The letter {letter} should occur {let_relation} {let_frequency} times in your "
            "response.", aspects={"letters"}, generate=letter_frequency_kwargs)
def letter_counting2(text: str, args: LetterFrequency) -> bool:
    """Occurrences of the letter, case-insensitively, compared by `let_relation` (as keywords:letter_frequency)."""
    return compare(text.lower().count(args.letter.lower()), args.let_relation, args.let_frequency)


class Composition(Args):
    n_sent: Positive
    n_words: Positive


_SPACED_DIVIDER = re.compile(r"\s?\*\s?\*\s?\*\s?")


@constraint("count:counting_composition", "Write 3 paragraphs separated by the markdown divider * * *, each with "
            "exactly {n_sent} sentences of exactly {n_words} words.", aspects={WHOLE},
            generate=lambda rng, prompt: {"n_sent": rng.randint(2, 3), "n_words": rng.randint(5, 12)})
def counting_composition(text: str, args: Composition) -> bool:
    """Three paragraphs between `* * *` (or `***`) dividers, each of exactly n_sent sentences of exactly
    n_words words. Differs from open-instruct: the divider the instruction names (`* * *`) is accepted,
    punctuation marks are not counted as words, and an empty piece before the first or after the last
    divider is ignored (there any of these failed a response that did what was asked)."""
    parts = _SPACED_DIVIDER.split(text)
    if any(not p.strip() for p in parts[1:-1]):
        return False
    found = [p for p in parts if p.strip()]
    return len(found) == 3 and all(_composed(p, args) for p in found)


def _composed(paragraph: str, args: Composition) -> bool:
    found = sentences(paragraph)
    return len(found) == args.n_sent and all(len(words(s)) == args.n_words for s in found)


@constraint("count:count_unique", "Use every word only once: no word may be repeated in your response.",
            aspects={"words", "keywords"})
def count_unique(text: str, args: NoArgs) -> bool:
    """No word (case-insensitive run of word characters) occurs twice. Differs from open-instruct, which
    counted punctuation marks as words, so any answer with two periods failed."""
    found = [w.lower() for w in words(text)]
    return len(found) == len(set(found))
