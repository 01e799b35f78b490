"""IFBench's out-of-distribution constraints (AllenAI, "Generalizing Verifiable Instruction Following"),
with IFBench's ids and keyword-argument names: 56 of its 58. Left out: `words:start_verb` (needs NLTK's
part-of-speech tagger, a downloaded model) and `words:odd_even_syllables` (needs a pronunciation
dictionary); a homemade guess at either would hand out wrong rewards.

Verdicts follow IFBench's checks, except where a comment starting "Differs" says why not. The `custom:*`
constraints are whole tasks (their instruction is the prompt) and are marked standalone.
"""

from __future__ import annotations

import csv
import io
import random
import re
import string
import unicodedata
from collections import Counter
from functools import partial
from typing import Any

from pydantic import Field, model_validator

from ..registry import IFBENCH, WHOLE, Args, Count, NoArgs, Phrase, Positive
from ..registry import constraint as _constraint
from ..text import normalize, sentences, tokens, word_tokens, words
from ..vocabulary import KEYWORDS, PERSON_NAMES
from .iftrain import (KeywordPosition, PromptToRepeat, Span, bare, keyword_position_kwargs, same_text, span_kwargs,
                      word_at)

constraint = partial(_constraint, family=IFBENCH)
custom = partial(constraint, aspects={WHOLE}, standalone=True)

_STRIP_PUNCTUATION = str.maketrans("", "", string.punctuation)


def _no_punctuation(text: str) -> str:
    return text.translate(_STRIP_PUNCTUATION)


# -- counts and ratios -----------------------------------------------------------------------------


class WordRange(Args):
    min_words: Count
    max_words: Count

    @model_validator(mode="after")
    def _ordered(self) -> WordRange:
        if self.max_words < self.min_words:
            raise ValueError(f"max_words ({self.max_words}) is below min_words ({self.min_words})")
        return self


def _word_range(rng: random.Random, prompt: str) -> dict[str, Any]:
    low = rng.randrange(50, 400, 10)
    return {"min_words": low, "max_words": low + rng.randrange(50, 200, 10)}


@constraint("count:word_count_range", "Your response should be between {min_words} and {max_words} words long.",
            aspects={"length"}, generate=_word_range)
def word_count_range(text: str, args: WordRange) -> bool:
    """min_words ≤ number of words (runs of word characters) ≤ max_words."""
    return args.min_words <= len(words(text)) <= args.max_words


class AtLeast(Args):
    N: Count


@constraint("count:unique_word_count", "Use at least {N} different words in your response.", aspects={"length"},
            generate=lambda rng, prompt: {"N": rng.randrange(50, 200, 10)})
def unique_word_count(text: str, args: AtLeast) -> bool:
    """At least N distinct words (whitespace-separated, lowercased, surrounding punctuation removed).
    Differs from IFBench: a token of only punctuation is not a word (there "-" counted as one)."""
    return len({w for w in (t.lower().strip(string.punctuation) for t in text.split()) if w}) >= args.N


# Our English function-word list, including the fragments that contractions split into ("don", "t").
STOP_WORDS = frozenset("""
a about above after again against ain all am an and any are aren as at be because been before being below between
both but by can couldn d did didn do does doesn doing don down during each few for from further had hadn has hasn
have haven having he her here hers herself him himself his how i if in into is isn it its itself just ll m ma me
mightn more most mustn my myself needn no nor not now o of off on once only or other our ours ourselves out over
own re s same shan she should shouldn so some such t than that the their theirs them themselves then there these
they this those through to too under until up ve very was wasn we were weren what when where which while who whom
why will with won wouldn y you your yours yourself yourselves
""".split())


class Percentage(Args):
    percentage: int = Field(ge=0, le=100)


@constraint("ratio:stop_words", "Keep stop words (the, and, of, ...) to at most {percentage}% of the words in your "
            "response.", aspects={"word_choice"}, generate=lambda rng, prompt: {"percentage": rng.randrange(20, 50, 5)})
def stop_words(text: str, args: Percentage) -> bool:
    """Stop words are at most `percentage` % of the words (runs of word characters). The stop-word list is
    ours (`STOP_WORDS`, the usual English function words); IFBench uses NLTK's, a downloaded corpus."""
    found = [w.lower() for w in words(text)]
    return bool(found) and 100 * sum(w in STOP_WORDS for w in found) <= args.percentage * len(found)


def _endings(text: str) -> Counter[str]:
    """How many sentences end in each of . ? ! (closing quotes, brackets and emphasis skipped)."""
    return Counter(s.rstrip("\"'”’)]*_")[-1:] for s in sentences(text))


@constraint("ratio:sentence_type", "Write twice as many statements (ending in a period) as questions.",
            aspects={"sentences"}, excludes={"punctuation:punctuation_dot"})
def sentence_type(text: str, args: NoArgs) -> bool:
    """Sentences ending in "." are exactly twice those ending in "?", and there is at least one question.
    Differs from IFBench: 0 : 0 is not a 2 : 1 ratio, and a final quote or ** does not hide the mark."""
    ends = _endings(text)
    return ends["?"] >= 1 and ends["."] == 2 * ends["?"]


@constraint("ratio:sentence_balance", "Use as many statements as questions and as exclamations.", aspects={"sentences"},
            excludes={"punctuation:punctuation_dot", "punctuation:punctuation_exclamation"})
def sentence_balance(text: str, args: NoArgs) -> bool:
    """Equal numbers of sentences ending in ".", "?" and "!", at least one of each. Differs from IFBench:
    a response with none of the three does not count as balanced."""
    ends = _endings(text)
    return ends["."] == ends["?"] == ends["!"] >= 1


CONJUNCTIONS = frozenset({"and", "but", "for", "nor", "or", "so", "yet"})


class SmallN(Args):
    small_n: Positive


@constraint("count:conjunctions", "Use at least {small_n} different coordinating conjunctions (and, but, for, nor, or, "
            "so, yet).", aspects={"word_choice"}, generate=lambda rng, prompt: {"small_n": rng.randint(2, 5)})
def conjunctions(text: str, args: SmallN) -> bool:
    """At least small_n distinct words among and/but/for/nor/or/so/yet. Differs from IFBench, which told
    "And" from "and" and "and," from "and" apart."""
    return len({w for w in (bare(t) for t in text.split()) if w in CONJUNCTIONS}) >= args.small_n


@constraint("count:person_names", lambda a: f"Mention at least {a.N} different people by name, choosing from: "
            f"{', '.join(PERSON_NAMES)}.", aspects={"keywords"}, generate=lambda rng, prompt: {"N": rng.randint(2, 6)})
def person_names(text: str, args: AtLeast) -> bool:
    """At least N distinct names from IFBench's list (`vocabulary.PERSON_NAMES`), as whole words,
    case-sensitive."""
    return len(set(words(text)) & set(PERSON_NAMES)) >= args.N


class Overlap(Args):
    reference_text: Phrase
    percentage: int = Field(ge=0, le=100)


@constraint("ratio:overlap", "Write a response whose character trigrams overlap {percentage}% (give or take 2%) with "
            "this reference text: \"{reference_text}\"", aspects={WHOLE},
            generate=lambda rng, prompt: {"reference_text": prompt, "percentage": rng.randrange(30, 80, 5)})
def overlap(text: str, args: Overlap) -> bool:
    """Of the response's distinct character trigrams, the share also in the reference is within 2
    percentage points of `percentage`."""
    mine, theirs = _trigrams(text), _trigrams(args.reference_text)
    return bool(mine) and abs(100 * len(mine & theirs) / len(mine) - args.percentage) <= 2


def _trigrams(text: str) -> set[tuple[str, str, str]]:
    return set(zip(text, text[1:], text[2:]))


class Exactly(Args):
    N: Count


@constraint("count:numbers", "Include exactly {N} numbers in your response.", aspects={"numbers"},
            excludes={"detectable_format:multiple_sections"},
            generate=lambda rng, prompt: {"N": rng.randint(1, 6)})
def numbers(text: str, args: Exactly) -> bool:
    """Exactly N numbers: runs of digits once punctuation is removed (so 3.14 and 1,000 are one each)."""
    return len(re.findall(r"\d+", _no_punctuation(text))) == args.N


@constraint("count:punctuation", "Use every standard punctuation mark at least once: . , ; : ! ? and the "
            "interrobang ?!", aspects={"punctuation"},
            excludes={"punctuation:no_comma", "punctuation:punctuation_dot", "punctuation:punctuation_exclamation"})
def punctuation(text: str, args: NoArgs) -> bool:
    """An interrobang (?!, !? or ‽) and, apart from it, each of . , ; : ! ?"""
    if not any(mark in text for mark in ("?!", "!?", "‽")):
        return False
    rest = text.replace("?!", "", 1) if "?!" in text else text.replace("!?", "", 1)
    return set(".,!?;:") <= set(rest)


# -- words -----------------------------------------------------------------------------------------


_NEXT_LETTER = dict(zip(string.ascii_lowercase, string.ascii_lowercase[1:] + "a"))


@constraint("words:alphabet", "Start each word with the letter after the previous word's first letter, going back to "
            "A after Z.", aspects={WHOLE})
def alphabet(text: str, args: NoArgs) -> bool:
    """Word i+1 starts with the letter after word i's first letter (a…z, then a again), case-insensitive;
    punctuation is ignored and the first word must start with a letter."""
    initials = [w[0].lower() for w in _no_punctuation(text).split()]
    return bool(initials) and initials[0] in _NEXT_LETTER and all(
        _NEXT_LETTER.get(a) == b for a, b in zip(initials, initials[1:]))


@constraint("words:vowel", "Write a single paragraph whose words use no more than three different vowels.",
            aspects={WHOLE})
def vowel(text: str, args: NoArgs) -> bool:
    """One line only, using at most three of the vowels a, e, i, o, u."""
    return "\n" not in text.strip() and len(set(text.lower()) & set("aeiou")) <= 3


_CONSONANT_PAIR = re.compile(r"[bcdfghjklmnpqrstvwxyz]{2}")


@constraint("words:consonants", "Make sure every word you use contains at least two consonants in a row.",
            aspects={WHOLE})
def consonants(text: str, args: NoArgs) -> bool:
    """Every whitespace-separated token has two adjacent consonant letters (case-insensitive)."""
    return all(_CONSONANT_PAIR.search(t.lower()) for t in text.split())


@constraint("sentence:alliteration_increment", "Make each sentence contain a longer run of alliterating words (words "
            "with the same first letter in a row) than the sentence before it.", aspects={"sentences", "words"})
def alliteration_increment(text: str, args: NoArgs) -> bool:
    """Each sentence's alliteration score is higher than the previous sentence's: the number of words
    in runs of neighbours sharing a first letter (a run of k words scores k)."""
    scores = [_alliteration(s) for s in sentences(text)]
    return all(b > a for a, b in zip(scores, scores[1:]))


def _alliteration(sentence: str) -> int:
    initials = [w[0] for w in (t.lower().lstrip(string.punctuation) for t in sentence.split()) if w]
    score, in_run = 0, False
    for a, b in zip(initials, initials[1:]):
        if a == b:
            score += 1 if in_run else 2
        in_run = a == b
    return score


@constraint("words:palindrome", "Include at least 10 one-word palindromes of at least 5 letters each.",
            aspects={"palindrome"})
def palindromes(text: str, args: NoArgs) -> bool:
    """At least 10 words (punctuation removed, case-insensitive) of length ≥ 5 that read the same backwards."""
    return sum(1 for w in _no_punctuation(text).lower().split() if len(w) >= 5 and w == w[::-1]) >= 10


@constraint("words:prime_lengths", "Use only words whose length is a prime number of letters.", aspects={WHOLE})
def prime_lengths(text: str, args: NoArgs) -> bool:
    """Every word (punctuation removed) has a prime number of characters."""
    return all(_is_prime(len(w)) for w in _no_punctuation(text).split())


def _is_prime(n: int) -> bool:
    return n >= 2 and all(n % d for d in range(2, int(n**0.5) + 1))


@constraint("words:repeats", "Do not use any word more than {small_n} times.", aspects={"keywords", "words"},
            generate=lambda rng, prompt: {"small_n": rng.randint(2, 5)})
def repeats(text: str, args: SmallN) -> bool:
    """No word (lowercased, punctuation removed, whitespace-separated) occurs more than small_n times."""
    counts = Counter(_no_punctuation(text.lower()).split())
    return max(counts.values(), default=0) <= args.small_n


@constraint("words:no_consecutive", "No two words in a row may start with the same letter.", aspects={"words"})
def no_consecutive(text: str, args: NoArgs) -> bool:
    """No two neighbouring words (lowercased, punctuation removed) share their first character."""
    initials = [w[0] for w in _no_punctuation(text.lower()).split()]
    return all(a != b for a, b in zip(initials, initials[1:]))


@constraint("words:last_first", "Make the last word of each sentence the first word of the next one.",
            aspects={"sentences"})
def last_first(text: str, args: NoArgs) -> bool:
    """For every two neighbouring sentences, the last word of the first equals the first word of the
    second (case-insensitive, punctuation at the sentence edges ignored)."""
    found = [s.strip(string.punctuation + " ").split() for s in sentences(text)]
    return all(a and b and a[-1].lower() == b[0].lower() for a, b in zip(found, found[1:]))


@constraint("words:paragraph_last_first", "End every paragraph with the word it starts with; put each paragraph on a "
            "line of its own.", aspects={"lines"})
def paragraph_last_first(text: str, args: NoArgs) -> bool:
    """Every non-empty line starts and ends with the same word (case-insensitive, punctuation at the
    line's edges ignored)."""
    lines = [line.strip().lower().strip(string.punctuation + " ").split() for line in text.split("\n")]
    return all(ws[0] == ws[-1] for ws in lines if ws)


@constraint("sentence:increment", "Each sentence must have exactly {small_n} more words than the sentence before it.",
            aspects={"sentences"}, generate=lambda rng, prompt: {"small_n": rng.randint(1, 3)})
def increment(text: str, args: SmallN) -> bool:
    """Word counts of consecutive sentences (punctuation removed) grow by exactly small_n each time."""
    counts = [len(_no_punctuation(s).split()) for s in sentences(text)]
    return all(b == a + args.small_n for a, b in zip(counts, counts[1:]))


class EveryNth(Args):
    N: Positive


_JAPANESE = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")


@constraint("count:words_japanese", "Write every {N}th word of your response in Japanese.", aspects={"language"},
            generate=lambda rng, prompt: {"N": rng.randint(2, 6)})
def words_japanese(text: str, args: EveryNth) -> bool:
    """Every N-th whitespace-separated word that is not a number contains kana or kanji."""
    found = [t.strip(string.punctuation) for t in text.split()]
    return all(_JAPANESE.search(w) for w in found[args.N - 1 :: args.N] if w and not w.isdigit())


class Keyword(Args):
    word: Phrase
    N: Positive


@constraint("sentence:keyword", "Use the word {word} in sentence number {N} of your response.", aspects={"keywords"},
            generate=lambda rng, prompt: {"word": rng.choice(KEYWORDS), "N": rng.randint(1, 5)})
def sentence_keyword(text: str, args: Keyword) -> bool:
    """Sentence N (from 1) contains `word` as a whole word, case-insensitively."""
    found = sentences(text)
    pattern = rf"\b{re.escape(args.word)}\b"
    return len(found) >= args.N and re.search(pattern, found[args.N - 1], re.IGNORECASE) is not None


PRONOUNS = frozenset("""
i me we us you he him she her it they them my mine our ours your yours his hers its their theirs myself ourselves
yourself yourselves himself herself itself themselves this that these those who whom whose which what whoever
whomever whatever whichever anybody anyone anything everybody everyone everything nobody nothing somebody someone
something each either neither both all some any none
""".split())


@constraint("count:pronouns", "Use at least {N} pronouns in your response.", aspects={"word_choice"},
            generate=lambda rng, prompt: {"N": rng.randint(5, 25)})
def pronouns(text: str, args: AtLeast) -> bool:
    """At least N pronouns (IFBench's list) among the words. Differs from IFBench: words are runs of word
    characters, so "she's" holds the pronoun "she" (NLTK tokens differ on contractions)."""
    return len([w for w in words(text.lower()) if w in PRONOUNS]) >= args.N


class FiveKeywords(Args):
    keyword1: Phrase
    keyword2: Phrase
    keyword3: Phrase
    keyword4: Phrase
    keyword5: Phrase


@constraint("count:keywords_multiple", "Use the word {keyword1} once, {keyword2} twice, {keyword3} three times, "
            "{keyword4} five times and {keyword5} seven times.", aspects={"keywords"},
            generate=lambda rng, prompt: dict(zip([f"keyword{i}" for i in range(1, 6)], rng.sample(KEYWORDS, 5))))
def keywords_multiple(text: str, args: FiveKeywords) -> bool:
    """keyword1…keyword5 occur exactly 1, 2, 3, 5 and 7 times (case-insensitive, substrings count)."""
    lower = text.lower()
    wanted = (args.keyword1, args.keyword2, args.keyword3, args.keyword4, args.keyword5)
    return all(lower.count(k.lower()) == n for k, n in zip(wanted, (1, 2, 3, 5, 7)))


@constraint("words:keywords_specific_position", "Use the word {keyword} as word number {m} of sentence number {n}.",
            aspects={"sentences", "keywords", "start"}, generate=keyword_position_kwargs)
def keywords_specific_position(text: str, args: KeywordPosition) -> bool:
    """Sentence n's m-th word (both from 1, punctuation not counted) is `keyword`, case-insensitively."""
    return word_at(text, args.n, args.m) == args.keyword.lower()


class WordsPosition(Args):
    keyword: Phrase


@constraint("words:words_position", "Make {keyword} both the second word and the second-to-last word of your response.",
            aspects={"keywords"}, generate=lambda rng, prompt: {"keyword": rng.choice(KEYWORDS)})
def words_position(text: str, args: WordsPosition) -> bool:
    """The second word and the second-to-last word are `keyword`, case-insensitively. Differs from IFBench:
    no punctuation mark counts as a word (IFBench skipped only a final one, so "Well, tea ..." failed)."""
    found = [t.lower() for t in word_tokens(text)]
    return len(found) >= 2 and found[1] == found[-2] == args.keyword.lower()


# -- format ----------------------------------------------------------------------------------------

_MATCHING = {")": "(", "]": "[", "}": "{"}


@constraint("format:parentheses", "Nest brackets at least 5 levels deep, mixing (parentheses), [brackets] and "
            "{{curly braces}}.", aspects={"nesting"})
def parentheses(text: str, args: NoArgs) -> bool:
    """Some bracket closes correctly after brackets were open 5 deep; a mismatched closer starts over."""
    stack: list[str] = []
    deepest = 0
    for ch in text:
        if ch in "([{":
            stack.append(ch)
            deepest = max(deepest, len(stack))
        elif ch in _MATCHING:
            if stack and stack[-1] == _MATCHING[ch]:
                stack.pop()
                if deepest >= 5:
                    return True
            else:
                stack, deepest = [], 0
    return False


_CURLY_QUOTES = str.maketrans({"“": '"', "”": '"', "‘": "'", "’": "'"})


@constraint("format:quotes", "Put quotes inside quotes inside quotes, at least 3 levels deep, alternating double and "
            "single quotation marks.", aspects={"quotes"})
def quotes(text: str, args: NoArgs) -> bool:
    """Quotation marks open 3 deep and close again: a mark equal to the innermost open one closes it,
    any other opens a level. Differs from IFBench: typographic quotes count as their straight forms."""
    stack: list[str] = []
    deepest = 0
    for ch in text.translate(_CURLY_QUOTES):
        if stack and ch == stack[-1]:
            stack.pop()
            if deepest - len(stack) >= 3:
                return True
        elif ch in "\"'":
            stack.append(ch)
            deepest = max(deepest, len(stack))
    return False


class Options(Args):
    options: Phrase


_OPTION_SETS = ("yes/no/maybe", "I know or I don't know", "a), b), c), d)", "true/false", "agree or disagree")


@constraint("format:options", "Answer with one of these options and nothing else: {options}.", aspects={WHOLE},
            generate=lambda rng, prompt: {"options": rng.choice(_OPTION_SETS)})
def options(text: str, args: Options) -> bool:
    """The response is one of the options. Lettered options (a), b), c) ...) must match exactly; others
    ignoring case and surrounding punctuation. Options are split on "/", else on the word "or", else on
    ",". Differs from IFBench, which split on "or" inside words too ("forward" became "f" + "ward")."""
    if "/" in args.options:
        choices = args.options.split("/")
    elif re.search(r"\bor\b", args.options):
        choices = re.split(r"\bor\b", args.options)
    else:
        choices = args.options.split(",")
    choices = [c.strip() for c in choices]
    if re.match(r"\W*[aA]\W*[bB]\W*[cC]", args.options):
        return text in choices
    edges = string.punctuation + " "
    return text.strip(edges).lower() in {c.strip(edges).lower() for c in choices}


@constraint("format:newline", "Put every word on a line of its own.", aspects={WHOLE})
def newline(text: str, args: NoArgs) -> bool:
    """Every line that is not blank (punctuation removed) holds exactly one word."""
    return all(len(line.split()) == 1 for line in _no_punctuation(text).split("\n") if line.strip())


# Unicode emoji blocks and the emoji scattered outside them; IFBench asks the `emoji` package, this is a
# code-point test that agrees with it on the emoji models use (faces, hands, hearts, objects, flags).
_EMOJI_BLOCKS = ((0x1F000, 0x1FAFF), (0x2600, 0x27BF))
_EMOJI_SINGLES = frozenset([0xA9, 0xAE, 0x203C, 0x2049, 0x2122, 0x2139, *range(0x2194, 0x219A), 0x21A9, 0x21AA,
                            0x231A, 0x231B, 0x2328, 0x23CF, *range(0x23E9, 0x23F4), *range(0x23F8, 0x23FB), 0x24C2,
                            0x25AA, 0x25AB, 0x25B6, 0x25C0, *range(0x25FB, 0x25FF), 0x2934, 0x2935, 0x2B05, 0x2B06,
                            0x2B07, 0x2B1B, 0x2B1C, 0x2B50, 0x2B55, 0x3030, 0x303D, 0x3297, 0x3299])
_EMOJI_JOINERS = "\ufe0f\ufe0e\u200d "


def is_emoji(ch: str) -> bool:
    cp = ord(ch)
    return cp in _EMOJI_SINGLES or any(low <= cp <= high for low, high in _EMOJI_BLOCKS)


@constraint("format:emoji", "End every sentence with an emoji.", aspects={"sentences"})
def emoji(text: str, args: NoArgs) -> bool:
    """Every sentence ends with an emoji (punctuation and variation selectors ignored), or else the next
    sentence starts with one (an emoji written after the full stop)."""
    found = [_no_punctuation(s).strip().rstrip(_EMOJI_JOINERS) for s in sentences(text)]
    return all(s and (is_emoji(s[-1]) or (i + 1 < len(found) and found[i + 1][:1] and is_emoji(found[i + 1][0])))
               for i, s in enumerate(found))


@constraint("ratio:sentence_words", "Answer in three sentences of equal length in characters, using different words.",
            aspects={WHOLE})
def sentence_words(text: str, args: NoArgs) -> bool:
    """Exactly three sentences with the same number of characters (IFBench checks the lengths only)."""
    found = sentences(text)
    return len(found) == 3 and len({len(s) for s in found}) == 1


@constraint("format:line_indent", "Write in the shape of stairs: indent every line further than the line before it.",
            aspects={"lines", "paragraphs", "bullets"})
def line_indent(text: str, args: NoArgs) -> bool:
    """Each non-blank line starts with more spaces than the non-blank line before it."""
    indents = [len(line) - len(line.lstrip(" ")) for line in text.split("\n") if line.strip()]
    return all(b > a for a, b in zip(indents, indents[1:]))


@constraint("format:quote_unquote", "Follow every quoted phrase with an explanation outside the quotes.",
            aspects={"quotes"}, excludes={"startend:quotation"})
def quote_unquote(text: str, args: NoArgs) -> bool:
    """No two quotes touch (whitespace ignored) and the response does not end on a closing quote (digits
    and other punctuation after it ignored). Differs from IFBench: typographic double quotes count."""
    squeezed = "".join(text.translate(_CURLY_QUOTES).replace("'\"'", "").split())
    if '""' in squeezed:
        return False
    return not squeezed.strip(string.digits + string.punctuation.replace('"', "")).endswith('"')


class Separator(Args):
    sep: Phrase


@constraint("format:list", "Answer with a list of items, starting each item on a new line with {sep} instead of a "
            "bullet point.", aspects={"bullets"},
            generate=lambda rng, prompt: {"sep": rng.choice(["...", "SEPARATOR", "!?!?", "-", ">>"])})
def item_list(text: str, args: Separator) -> bool:
    """At least two lines begin (after indentation) with the separator. Differs from IFBench, which counted
    the separator anywhere, so any two hyphens in the text made a "list"."""
    return sum(1 for line in text.split("\n") if line.lstrip().startswith(args.sep)) >= 2


@constraint("format:thesis", "Begin each section with a thesis statement in italics, marked up with HTML <i> or <em>.",
            aspects={"html"})
def thesis(text: str, args: NoArgs) -> bool:
    """Some <i>…</i> or <em>…</em> holds text and is followed by more text. Differs from IFBench, whose
    offsets were those of <i> also for <em> (so "<em></em>>" passed)."""
    opening = re.search(r"<(i|em)>", text)
    if opening is None:
        return False
    closing = text.find(f"</{opening[1]}>", opening.end())
    after = closing + len(opening[1]) + 3  # past </i> or </em>
    return closing >= 0 and bool(text[opening.end() : closing].strip()) and bool(text[after:].strip())


_STAR_BULLET = re.compile(r"[ \t]*\*[ \t]+\S")
_DASH_BULLET = re.compile(r"[ \t]*-[ \t]+\S")


@constraint("format:sub-bullets", "Use bullet points marked with *, and give every bullet point at least one "
            "sub-point marked with -.", aspects={"bullets"})
def sub_bullets(text: str, args: NoArgs) -> bool:
    """At least one `* ` bullet line, and after each one, before the next, at least one `- ` line.
    Differs from IFBench, which passed a text without bullets and took any hyphen for a sub-bullet."""
    kinds = ["*" if _STAR_BULLET.match(line) else "-" if _DASH_BULLET.match(line) else "" for line in text.split("\n")]
    groups = "".join(kinds).split("*")  # "*--*-" → ["", "--", "-"]: the sub-points after each bullet
    return len(groups) > 1 and all(groups[1:])


@constraint("format:no_bullets_bullets", "Write at least two sentences ending in a period, then at least two bullet "
            "points marked with *.", aspects={"bullets"}, excludes={"punctuation:punctuation_dot"})
def no_bullets_bullets(text: str, args: NoArgs) -> bool:
    """Prose of at least two sentences, then at least two `* ` bullet lines and nothing after them (blank
    lines aside). Differs from IFBench: a line opening in **bold** is not a bullet, and blank lines
    between bullets are allowed."""
    lines = [line for line in text.split("\n") if line.strip()]
    first = next((i for i, line in enumerate(lines) if _STAR_BULLET.match(line)), None)
    if first is None:
        return False
    prose, bullets = lines[:first], lines[first:]
    return (sum(len(sentences(line)) for line in prose) >= 2 and len(bullets) >= 2
            and all(_STAR_BULLET.match(line) for line in bullets))


@constraint("format:title_case", "Write your entire response in title case, capitalising the first letter of every "
            "word.", aspects={"case"})
def title_case(text: str, args: NoArgs) -> bool:
    """No word starts with a lowercase letter, except mixed-case words such as "iPhone"; a one-letter
    word must be a capital."""
    return not any(w[0].islower() and (len(w) == 1 or w[1:].islower() or w[1:].isupper()) for w in tokens(text))


TEMPLATE_LABELS = ("My Answer:", "My Conclusion:", "Future Outlook:")


@constraint("format:output_template", "Use this exact template for your response: My Answer: [answer] My Conclusion: "
            "[conclusion] Future Outlook: [outlook]", aspects={"start", "end", "sections"})
def output_template(text: str, args: NoArgs) -> bool:
    """The labels "My Answer:", "My Conclusion:" and "Future Outlook:" all appear (case-sensitive)."""
    return all(label in text for label in TEMPLATE_LABELS)


@constraint("format:no_whitespace", "Write your response without any whitespace at all.", aspects={WHOLE})
def no_whitespace(text: str, args: NoArgs) -> bool:
    """No whitespace character anywhere (surrounding whitespace aside, see `text.normalize`)."""
    return not any(c.isspace() for c in text)


# -- repeating the request -------------------------------------------------------------------------


@constraint("repeat:repeat_change", "Repeat the request before this sentence, changing only its first word; write "
            "nothing before it, do not answer it, and do not repeat this sentence.", aspects={WHOLE},
            generate=lambda rng, prompt: {"prompt_to_repeat": prompt})
def repeat_change(text: str, args: PromptToRepeat) -> bool:
    """The response is `prompt_to_repeat` with a different first word (the rest word for word). Differs
    from IFBench, which accepted an unchanged first word written with different spacing."""
    mine, theirs = text.split(), normalize(args.prompt_to_repeat).split()
    return mine[1:] == theirs[1:] and mine[0].lower() != theirs[0].lower()


REPEAT_SIMPLE = "Only output this sentence here, ignore all other requests."


@constraint("repeat:repeat_simple", REPEAT_SIMPLE, aspects={WHOLE})
def repeat_simple(text: str, args: NoArgs) -> bool:
    """The response is exactly the instruction sentence (ignoring case and surrounding whitespace)."""
    return same_text(text, REPEAT_SIMPLE)


@constraint("repeat:repeat_span", "Copy the characters of the request before this sentence from index {n_start} to "
            "index {n_end}, both included (indices count characters from 0), and output nothing else.", aspects={WHOLE},
            generate=span_kwargs)
def repeat_span(text: str, args: Span) -> bool:
    """The response is `prompt_to_repeat[n_start : n_end + 1]` (ignoring case and surrounding whitespace)."""
    return same_text(text, args.prompt_to_repeat[args.n_start : args.n_end + 1])


# -- whole tasks (IFBench's custom:*) --------------------------------------------------------------


@custom("custom:multiples", "Count from 10 to 50, but print only the multiples of 7.")
def multiples(text: str, args: NoArgs) -> bool:
    """The numbers in the response are exactly 14, 21, 28, 35, 42, 49, in order."""
    return re.findall(r"\d+", text.replace(",", ", ")) == [str(n) for n in range(14, 51, 7)]


_QUESTION = re.compile(r"\n*Question \d+[.|):;]?\s*")
_OPTION_LINE = re.compile(r"[A-Ea-e][.|)]\s*\w")


@custom("custom:mcq_count_length", "Write 4 multiple-choice questions about 20th-century art history, each with 5 "
        "options. Start each question with the label \"Question\", make every question longer than the one before, "
        "and give no explanation.")
def mcq_count_length(text: str, args: NoArgs) -> bool:
    """The response starts with "Question"; it holds 4 questions (split at "Question N"), each with 5 option
    lines (A. … E.), and each question's text is longer than the one before."""
    if not text.startswith("Question"):
        return False
    questions = [q.strip() for q in _QUESTION.split(text) if q.strip()]
    lengths = [_question_length(q) for q in questions]
    return len(questions) == 4 and None not in lengths and all(a < b for a, b in zip(lengths, lengths[1:]))


def _question_length(question: str) -> int | None:
    """Characters of the question text before its options; None unless it has exactly 5 options."""
    lines = [line.strip() for line in question.split("\n")]
    first_option = next((i for i, line in enumerate(lines) if _OPTION_LINE.match(line)), len(lines))
    n_options = sum(1 for line in lines if _OPTION_LINE.match(line))
    return len(" ".join(lines[:first_option]).strip()) if n_options == 5 else None


def _ascii(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")


@custom("custom:reverse_newline", "List the countries of Africa in reverse alphabetical order, one per line.")
def reverse_newline(text: str, args: NoArgs) -> bool:
    """From the first line naming Zimbabwe on, at least 52 non-blank lines, in reverse alphabetical order
    (accents ignored; punctuation around each line ignored)."""
    edges = string.punctuation + " "
    lines = [line.strip(edges) for line in text.split("\n") if line.strip(edges)]
    start = next((i for i, line in enumerate(lines) if "Zimbabwe" in line), None)
    if start is None or len(lines) - start < 52:
        return False
    names = [_ascii(line) for line in lines[start:]]
    return names == sorted(names, reverse=True)


@custom("custom:word_reverse", "What animal is the national symbol of the US? Answer in one sentence, written with its "
        "words in reverse order.")
def word_reverse(text: str, args: NoArgs) -> bool:
    """Read backwards word by word (case and punctuation ignored), the response contains "bald eagle"."""
    return "bald eagle" in " ".join(reversed(_no_punctuation(text.lower()).split()))


@custom("custom:character_reverse", "What animal is the national symbol of the US? Answer in one sentence, written "
        "backwards letter by letter.")
def character_reverse(text: str, args: NoArgs) -> bool:
    """The response contains "elgae dlab" ("bald eagle" backwards), case-insensitively."""
    return "elgae dlab" in text.lower()


@custom("custom:sentence_alphabet", "Tell a story in 26 sentences whose first words start with the letters A to Z, "
        "in order.")
def sentence_alphabet(text: str, args: NoArgs) -> bool:
    """Exactly 26 sentences; the first letter of sentence i is the i-th letter of the alphabet."""
    found = sentences(text)
    initials = [s.split()[0][0].lower() for s in found]
    return initials == list(string.ascii_lowercase)


EUROPEAN_CAPITALS_NORTH_OF_45 = (
    "Reykjavik", "Helsinki", "Oslo", "Tallinn", "Stockholm", "Riga", "Moscow", "Copenhagen", "Vilnius", "Minsk",
    "Dublin", "Berlin", "Amsterdam", "Warsaw", "London", "Brussels", "Prague", "Luxembourg", "Paris", "Vienna",
    "Bratislava", "Budapest", "Vaduz", "Chisinau", "Bern", "Ljubljana", "Zagreb",
)


@custom("custom:european_capitals_sort", "Name the capitals of the European countries that lie north of 45 degrees "
        "latitude, without country names, separated by commas, ordered from the northernmost to the southernmost.")
def european_capitals_sort(text: str, args: NoArgs) -> bool:
    """The comma-separated items are exactly the 27 capitals north of 45°N, north to south (accents ignored)."""
    items = [item.strip() for item in _ascii(text).split(",") if item.strip()]
    return items == list(EUROPEAN_CAPITALS_NORTH_OF_45)


def _csv_rows(text: str, delimiter: str = ",") -> list[list[str]] | None:
    try:
        return list(csv.reader(io.StringIO(text), delimiter=delimiter))
    except csv.Error:  # e.g. a field beyond csv's size limit
        return None


@custom("custom:csv_city", "Write CSV data with the columns [\"ID\", \"Country\", \"City\", \"Year\", \"Count\"], "
        "comma-delimited, and 7 rows.")
def csv_city(text: str, args: NoArgs) -> bool:
    """Parses as CSV with the header ID,Country,City,Year,Count and 7 rows of 5 fields."""
    rows = _csv_rows(text)
    return (rows is not None and len(rows) == 8 and rows[0] == ["ID", "Country", "City", "Year", "Count"]
            and all(len(row) == 5 for row in rows[1:]))


_PRODUCT_HEADER = re.compile(r'("?)ProductID\1,[ \t]*("?)Category\2,[ \t]*("?)Brand\3,[ \t]*("?)Price\4,'
                             r'[ \t]*("?)Stock\5')


@custom("custom:csv_special_character", "Write CSV data with the columns [\"ProductID\", \"Category\", \"Brand\", "
        "\"Price\", \"Stock\"], comma-delimited, and 14 rows. One field must contain a special character and be "
        "enclosed in double quotes.")
def csv_special_character(text: str, args: NoArgs) -> bool:
    """The ProductID,Category,Brand,Price,Stock header, 14 rows of 5 fields, and some field in double quotes
    with a character that is neither a letter, digit, underscore nor space."""
    if not _PRODUCT_HEADER.fullmatch(text.split("\n")[0].strip()):
        return False
    rows = _csv_rows(text.replace('"', '"""'))  # keeps each field's own quotes in the parsed value
    return (rows is not None and len(rows) == 15 and all(len(row) == 5 for row in rows[1:])
            and any(_quoted_special(field) for row in rows[1:] for field in row))


def _quoted_special(field: str) -> bool:
    first_line = field.split("\n")[0]
    inner = first_line[1 : first_line.rfind('"')] if first_line.startswith('"') else ""
    return any(not (c.isalnum() or c == "_" or c.isspace()) for c in inner)


_GRADE_HEADER = re.compile(r'("?)StudentID\1\t *("?)Subject\2\t *("?)Grade\3\t *("?)Semester\4\t *("?)Score\5')


@custom("custom:csv_quotes", "Write CSV data with the columns [\"StudentID\", \"Subject\", \"Grade\", \"Semester\", "
        "\"Score\"], tab-delimited, and 3 rows, with every single field enclosed in double quotes.")
def csv_quotes(text: str, args: NoArgs) -> bool:
    """The StudentID/Subject/Grade/Semester/Score header (tab-separated), 3 rows, every row 5 fields, and
    every field in double quotes."""
    if not _GRADE_HEADER.fullmatch(text.split("\n")[0].strip()):
        return False
    rows = _csv_rows(text.replace('"', '"""'), delimiter="\t")
    return (rows is not None and len(rows) == 4
            and all(len(row) == 5 and all(_quoted(field.strip()) for field in row) for row in rows))


def _quoted(field: str) -> bool:
    return len(field) >= 2 and field[0] == field[-1] == '"'


_DAYS_IN_MONTH = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


@custom("custom:date_format_list", "List the start dates of all the battles Napoleon fought, separated by commas, in "
        "the format YYYY-MM-DD, with no explanation.")
def date_format_list(text: str, args: NoArgs) -> bool:
    """Comma-separated dates YYYY-MM-DD, years 1769 to 1821, real months and days. Differs from IFBench:
    month 00 and day 00 are not dates."""
    return all(_napoleonic_date(item.strip()) for item in text.split(","))


def _napoleonic_date(item: str) -> bool:
    match = re.fullmatch(r"(\d{4})-(\d{2})-(\d{2})", item)
    if match is None:
        return False
    year, month, day = map(int, match.groups())
    return 1769 <= year <= 1821 and 1 <= month <= 12 and 1 <= day <= _DAYS_IN_MONTH[month - 1]
