"""The instruction-following environment: every constraint right and wrong, strict and loose, the edge cases
that trip reference implementations, task generation and loading, rewards, and a server round trip."""

from __future__ import annotations

import asyncio
import json
import random
import re
import string

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import environments
from environments import Completion, Message, Score, Task
from environments.ifeval import (CONSTRAINTS, FAMILIES, ConstraintError, IFEvalEnv, IFEvalFile, check, compatible,
                                 compose, conflicts, group_length_penalty)
from environments.ifeval.constraints.ifbench import EUROPEAN_CAPITALS_NORTH_OF_45
from environments.ifeval.registry import WHOLE
from environments.ifeval.seeds import SEED_PROMPTS
from environments.ifeval.text import loose_variants, normalize, sentences
from environments.ifeval.vocabulary import KEYWORDS, RARE_LETTERS
from env_server.client import EnvServerClient

# -- every constraint, followed and not followed ----------------------------------------------------

PROMPT = "Write a poem about tea."
SPAN = {"prompt_to_repeat": "Hello wonderful world", "n_start": 6, "n_end": 14}


def _mcq(lengths: list[int]) -> str:
    options = "\n".join(f"{letter}. option {letter}" for letter in "ABCDE")
    return "\n".join(f"Question {i + 1}\n{'w' * n}?\n{options}" for i, n in enumerate(lengths))


def _csv(header: str, rows: list[str]) -> str:
    return "\n".join([header, *rows])


_AFRICA = ["Zimbabwe", "Zambia", *(f"Y{k:03d}" for k in range(49, -1, -1))]
_ALPHABET_STORY = " ".join(f"{letter.upper()}{letter}word is here." for letter in string.ascii_lowercase)
_TAB_ROW = '"1"\t"Math"\t"A"\t"Fall"\t"90"'

LOOSE = "the loose metric accepts it"  # marks a case whose failing response passes once a line is dropped

# (instruction id, kwargs, a response that follows it, a response that does not[, LOOSE])
CASES = [
    # IFEval
    ("keywords:existence", {"keywords": ["lantern", "C++"]}, "I code in C++ by the Lantern light.",
     "I code in C by the lantern light."),
    ("keywords:frequency", {"keyword": "tea", "frequency": 2, "relation": "at least"}, "Tea first, tea later.",
     "Tea once."),
    ("keywords:frequency", {"keyword": "tea", "frequency": 2, "relation": "less than"}, "Tea once.", "tea and TEA"),
    ("keywords:forbidden_words", {"forbidden_words": ["cat", "C++"]}, "A category of code in C#.", "The Cat sat."),
    ("keywords:forbidden_words", {"forbidden_words": ["C++"]}, "C+ is a grade.", "I like C++."),
    ("keywords:letter_frequency", {"letter": "z", "let_frequency": 2, "let_relation": "at least"}, "Zebras zoom.",
     "A zebra."),
    ("language:response_language", {"language": "fr"},
     "Bonjour, je m'appelle Marie et j'habite à Paris depuis dix ans avec ma famille.",
     "Hello, my name is Marie and I have lived in Paris for ten years with my family."),
    ("language:response_language", {"language": "zh"}, "我喜欢在公园里散步，因为那里很安静。",
     "I like walking in the park because it is quiet there."),
    ("length_constraints:number_sentences", {"num_sentences": 3, "relation": "at least"}, "One. Two! Three?",
     "Dr. Smith arrived. He left."),
    ("length_constraints:number_sentences", {"num_sentences": 2, "relation": "less than"},
     "1. First item of the list", "It rained. We stayed."),
    ("length_constraints:number_paragraphs", {"num_paragraphs": 2}, "First part.\n***\nSecond part.",
     "First.\n***\n***\nSecond."),
    ("length_constraints:number_paragraphs", {"num_paragraphs": 1}, "***\nOnly one.\n***", "One\n***\nTwo", LOOSE),
    ("length_constraints:number_words", {"num_words": 5, "relation": "less than"}, "Just four words here.",
     "These are exactly five words."),
    ("length_constraints:nth_paragraph_first_word", {"num_paragraphs": 2, "nth_paragraph": 2, "first_word": "lantern"},
     "Intro here.\n\n\"Lantern, they said.\"", "Intro.\n\nThe lantern."),
    ("length_constraints:nth_paragraph_first_word", {"num_paragraphs": 2, "nth_paragraph": 1, "first_word": "tea"},
     "Tea's warmth.\n\nMore.", "Tea.\n\nMore.\n\nEven more.", LOOSE),
    ("detectable_content:number_placeholders", {"num_placeholders": 2}, "Dear [name], at [address].",
     "Dear [name], see [the\nnote]."),
    ("detectable_content:postscript", {"postscript_marker": "P.S."}, "Bye.\n\np.s. see you", "Bye. PS see you"),
    ("detectable_content:postscript", {"postscript_marker": "P.P.S"}, "Bye.\nP. P. S. Later!", "Bye.\nP.S. Later!"),
    ("detectable_content:postscript", {"postscript_marker": "Note:"}, "Text.\nNOTE: more", "Text. Notes."),
    ("detectable_format:number_bullet_lists", {"num_bullets": 2}, "* one\n  - nested two",
     "* one\n---\n*italic* line\n-5 degrees"),
    ("detectable_format:constrained_response", {}, "I thought hard. My answer is maybe.", "My answer is perhaps."),
    ("detectable_format:number_highlighted_sections", {"num_highlights": 2}, "*one* and **two**", "*one* and ** **"),
    ("detectable_format:multiple_sections", {"section_spliter": "Section", "num_sections": 2},
     "Section 1\nA\nSection 2\nB", "Section 1\nA\nsection 2\nB"),
    ("detectable_format:json_format", {}, "```json\n{\"a\": [1, 2]}\n```", "{\"a\": 1,}"),
    ("detectable_format:title", {}, "<<A Day at Sea>>\nText", "<< >> and <<\n>>"),
    ("combination:two_responses", {}, "First answer.\n******\nSecond answer.", "Same.\n******\nSame."),
    ("combination:two_responses", {}, "******\nA\n******\nB", "A\n******\n******\nB"),
    ("combination:repeat_prompt", {"prompt_to_repeat": PROMPT}, "write a poem about TEA. Steam rises...",
     "Sure! Write a poem about tea."),
    ("startend:end_checker", {"end_phrase": "Any other questions?"}, "\"Done. Any other questions?\"",
     "Any other questions? Bye."),
    ("startend:quotation", {}, "\"Hello there.\"", "\"Hello\" there"),
    ("startend:quotation", {}, "“Hello there.”", "“Hello there.\""),
    ("change_case:capital_word_frequency", {"capital_frequency": 2, "capital_relation": "at least"},
     "This is VERY, VERY important.", "This is Very important, OK."),
    ("change_case:capital_word_frequency", {"capital_frequency": 2, "capital_relation": "less than"},
     "One well-known FACT.", "WELL-KNOWN FACTS"),
    ("change_case:english_capital", {}, "THIS IS A FULLY CAPITALISED ENGLISH SENTENCE ABOUT THE WEATHER TODAY.",
     "CECI EST UNE PHRASE ENTIÈREMENT EN FRANÇAIS SUR LE TEMPS QU'IL FAIT AUJOURD'HUI."),
    ("change_case:english_lowercase", {}, "this is a fully lowercase english sentence about the weather today.",
     "this is Mostly lowercase english about the weather."),
    ("punctuation:no_comma", {}, "No commas here.", "中文，逗号"),
    # IFTrain (open-instruct IFEvalG)
    ("copy:repeat_phrase", {"phrase": "The early bird catches the worm", "small_n": 2},
     "The early cat catches the worm. And The early bird grabs the worm.",
     "The early bird catches the worm. The early bird catches the worm."),
    ("copy:copy", {"prompt_to_repeat": "Say hi."}, "say hi.", "Say hi. Hi!"),
    ("new:copy_span_idx", SPAN, "Wonderful", "wonderfu"),
    ("copy:copying_simple", {"prompt_to_repeat": "Say hi."}, "SAY HI.", "Say hello."),
    ("copy:copying_multiple", {"prompt_to_repeat": "Say hi.", "N": 2}, "Say hi.\n******\nsay hi.",
     "Say hi.\n******\nSay hi.\n******\nSay hi."),
    ("detectable_format:sentence_hyphens", {}, "I woke up.-I ate breakfast.-I left.", "I woke up. - I ate."),
    ("detectable_format:sentence_hyphens", {}, "A single sentence.", "I woke up. I ate."),
    ("detectable_format:square_brackets", {}, "[Hello] [world]", "[Hello] world"),
    ("detectable_format:bigram_wrapping", {}, "<<I am>> <<at home>>", "<<I am>> at home"),
    ("paragraphs:paragraphs", {}, "A\n***\nB", "A\n***\nB\n***\nC", LOOSE),
    ("paragraphs:paragraphs2", {}, "A\n\n\n\nB", "A\nB"),
    ("first_word:first_word_sent", {"first_word": "lantern"}, "Lantern light glows. Lantern, she said!",
     "Lantern light glows. The end."),
    ("first_word:first_word_answer", {"first_word": "lantern"}, "**Lantern** is bright.", "A lantern."),
    ("last_word:last_word_sent", {"last_word": "sea"}, "I love the sea. Look at the SEA!", "I love the sea. Look."),
    ("last_word:last_word_answer", {"last_word": "sea"}, "We sailed to the sea.", "The sea is calm."),
    ("keywords:keyword_specific_position", {"keyword": "lantern", "n": 2, "m": 3}, "First one. A bright, lantern shone.",
     "First one. A lantern shone."),
    ("keywords:start_end", {}, "Hello world, hello", "Hello world, hello."),
    ("keywords:word_once", {"keyword": "tea"}, "I like tea.", "Tea and more tea."),
    ("keywords:word_count_different_numbers", {"keyword": "tea", "frequency": 2, "relation": "less than"}, "tea",
     "tea tea"),
    ("keywords:exclude_word_harder", {"keyword": "tea"}, "I drink from teacups.", "I like Tea."),
    ("count:count_increment_word", {"keyword1": "tea", "keyword2": "cake"}, "tea with cake and more cake",
     "tea cake"),
    ("keywords:palindrome", {}, "We saw a racecar.", "I saw a cat."),
    ("keywords:no_adjacent_consecutive", {}, "apple cherry banana", "(apple) banana"),
    ("punctuation:punctuation_dot", {}, "No dots here!", "Ellipsis…"),
    ("punctuation:punctuation_exclamation", {}, "Calm.", "¡Hola"),
    ("count:lowercase_counting", {"N": 2}, "ONLY CAPS here ok", "three lower words"),
    ("letters:letter_counting", {"N": 10, "relation": "at least"}, "Ñandú élève", "abc 123"),
    ("letters:letter_counting2", {"letter": "a", "let_frequency": 3, "let_relation": "at least"}, "Banana", "Bat"),
    ("count:counting_composition", {"n_sent": 2, "n_words": 3},
     "I like tea. You like cake.\n* * *\nWe drink milk. They eat bread.\n* * *\nDogs chase cats. Cats chase mice.",
     "I like tea. You like cake.\n* * *\nWe drink milk. They eat bread.\n* * *\nDogs chase cats. Cats chase small mice."),
    ("count:count_unique", {}, "Every word here is different. Really!", "The cat and the dog."),
    # IFBench
    ("count:word_count_range", {"min_words": 2, "max_words": 3}, "two words", "four words are here"),
    ("count:unique_word_count", {"N": 3}, "a b c", "a a b -"),
    ("ratio:stop_words", {"percentage": 50}, "Cats chase mice in gardens.", "It is in the house."),
    ("ratio:sentence_type", {}, "I like tea. Tea is good. Do you?", "Hello!"),
    ("ratio:sentence_balance", {}, "Hi. Why? Wow!", "Hi. Why?"),
    ("count:conjunctions", {"small_n": 2}, "Tea and cake, but no milk.", "And and AND."),
    ("count:person_names", {"N": 2}, "Emma met Liam.", "Emma met emma."),
    ("ratio:overlap", {"reference_text": "abcdef", "percentage": 50}, "abcdxy", "xyzxyz"),
    ("count:numbers", {"N": 2}, "I have 3.5 apples and 10 pears.", "1, 2, 3"),
    ("words:alphabet", {}, "yak zebra, apple", "Apple cat."),
    ("words:vowel", {}, "A bad cat sat.", "A bad cat\nsat.", LOOSE),
    ("words:consonants", {}, "Strong black cliffs.", "A strong wall."),
    ("sentence:alliteration_increment", {}, "Big cat. Silly snakes slither.", "Silly snakes slither. Big cat."),
    ("words:palindrome", {}, "level radar civic refer madam kayak rotor stats tenet racecar", "level radar civic"),
    ("count:punctuation", {}, "Wait?! Really, truly; yes: fine. Why? Wow!", "Wait?! Really, truly; yes: fine."),
    ("format:parentheses", {}, "(a [b {c (d [e])}])", "(a [b {c (d)}])"),
    ("format:quotes", {}, "He said \"she told me 'they yelled \"run\" loudly' today\" ok",
     "He said \"she said 'hi' today\""),
    ("words:prime_lengths", {}, "An old cat ate.", "Four cats."),
    ("format:options", {"options": "yes/no/maybe"}, "Maybe.", "Maybe, I think."),
    ("format:options", {"options": "a), b), c), d)"}, "b)", "b"),
    ("format:options", {"options": "forward or back"}, "Forward!", "f"),
    ("format:newline", {}, "One\nword\nper\nline.", "Two words\nhere", LOOSE),
    ("format:emoji", {}, "I love tea 🍵. Cakes are great! 🎂", "I love tea. Cakes 🎂."),
    ("format:emoji", {}, "Love ❤️. Family 👨‍👩‍👧!", "Love ❤️. Family."),
    ("ratio:sentence_words", {}, "Cats run. Dogs sit. Birds go.", "Cats run. Dogs sit. Birds fly high."),
    ("count:words_japanese", {"N": 2}, "I 猫 like 犬 2", "I cat like 犬"),
    ("words:repeats", {"small_n": 2}, "The cat and the dog.", "The the THE."),
    ("sentence:keyword", {"word": "tea", "N": 2}, "Hello. I like Tea.", "Tea is good. I like cake."),
    ("count:pronouns", {"N": 3}, "She's giving it to them.", "The cat sat."),
    ("words:last_first", {}, "I like tea. Tea is good. Good day.", "I like tea. Cake is good."),
    ("words:paragraph_last_first", {}, "Tea is always tea.\nCats like cats", "Tea is good."),
    ("sentence:increment", {"small_n": 1}, "I ran. I ran far. I ran very far.", "I ran. I ran."),
    ("words:no_consecutive", {}, "Tea is good.", "Tea tastes good."),
    ("format:line_indent", {}, "  a\n   b\n     c", "a\n  b\n c", LOOSE),
    ("format:quote_unquote", {}, "\"Carpe diem\" means seize the day.", "“Carpe diem” “seize the day”"),
    ("format:list", {"sep": "SEPARATOR"}, "SEPARATOR tea\nSEPARATOR cake", "tea SEPARATOR cake SEPARATOR"),
    ("format:thesis", {}, "<i>Tea is good.</i> Because it is warm.", "<em></em>> text"),
    ("format:sub-bullets", {}, "* Tea\n  - green\n* Cake\n  - lemon", "* Tea\n  - green\n* Cake", LOOSE),
    ("format:sub-bullets", {}, "* Tea\n\n  - green", "no bullets - here"),
    ("format:no_bullets_bullets", {}, "Tea is good. Cake is too.\n\n* tea\n\n* cake",
     "Tea is good. Cake is too.\n* tea\n* cake\nMore text.", LOOSE),
    ("format:no_bullets_bullets", {}, "One. Two.\n* a\n* b", "**One.** Two.\n* a"),
    ("format:title_case", {}, "The Quick Brown Fox Uses An iPhone", "The quick Brown Fox"),
    ("format:output_template", {}, "My Answer: yes My Conclusion: fine Future Outlook: good",
     "My answer: yes My Conclusion: fine Future Outlook: good"),
    ("format:no_whitespace", {}, "NoSpacesHere", "Two words"),
    ("count:keywords_multiple", {f"keyword{i}": w for i, w in enumerate(["ant", "bee", "cow", "dog", "elk"], 1)},
     "ant " + "bee " * 2 + "Cow " * 3 + "dog " * 5 + "elk " * 7, "ant " + "bee " * 2 + "cow " * 3 + "dog " * 5 + "elk " * 6),
    ("words:keywords_specific_position", {"keyword": "lantern", "n": 1, "m": 2}, "A Lantern shone.", "Lantern shone."),
    ("words:words_position", {"keyword": "tea"}, "I tea like tea cake.", "I like tea."),
    ("repeat:repeat_change", {"prompt_to_repeat": PROMPT}, "Compose a poem about tea.", "write a poem about tea."),
    ("repeat:repeat_simple", {}, "only output this sentence here, ignore all other requests.",
     "Sure: Only output this sentence here, ignore all other requests."),
    ("repeat:repeat_span", SPAN, "wonderful", "Hello"),
    ("custom:multiples", {}, "14, 21, 28, 35, 42, 49", "7, 14, 21, 28, 35, 42, 49"),
    ("custom:mcq_count_length", {}, _mcq([5, 10, 15, 20]), _mcq([5, 10, 20, 15])),
    ("custom:reverse_newline", {}, "\n".join(_AFRICA), "\n".join(_AFRICA[::-1])),
    ("custom:word_reverse", {}, "eagle bald the is It", "It is the bald eagle."),
    ("custom:character_reverse", {}, ".elgae dlab ehT", "The bald eagle."),
    ("custom:sentence_alphabet", {}, _ALPHABET_STORY, _ALPHABET_STORY.rsplit(" Zz", 1)[0]),
    ("custom:european_capitals_sort", {}, ", ".join(EUROPEAN_CAPITALS_NORTH_OF_45).replace("Chisinau", "Chișinău"),
     ", ".join(sorted(EUROPEAN_CAPITALS_NORTH_OF_45))),
    ("custom:csv_city", {}, _csv("ID,Country,City,Year,Count", ["1,France,Paris,2020,5"] * 7),
     _csv("ID,Country,City,Year,Count", ["1,France,Paris,2020,5"] * 6)),
    ("custom:csv_special_character", {},
     _csv("ProductID,Category,Brand,Price,Stock", ['1,"Tools & More",Acme,9.99,3'] + ["2,Toys,Lego,5,1"] * 13),
     _csv("ProductID,Category,Brand,Price,Stock", ["2,Toys,Lego,5,1"] * 14)),
    ("custom:csv_quotes", {}, _csv('"StudentID"\t"Subject"\t"Grade"\t"Semester"\t"Score"', [_TAB_ROW] * 3),
     _csv('"StudentID"\t"Subject"\t"Grade"\t"Semester"\t"Score"', [_TAB_ROW] * 2 + ['"1"\tMath\t"A"\t"Fall"\t"90"'])),
    ("custom:date_format_list", {}, "1796-04-12, 1805-12-02", "1805-12-02, 1805-00-10"),
]


@pytest.mark.parametrize("case", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_constraint_followed_and_not(case):
    cid, kwargs, good, bad, *loose = case
    assert check(cid, kwargs, good) is True
    assert check(cid, kwargs, good, loose=True) is True
    assert check(cid, kwargs, bad) is False
    assert check(cid, kwargs, bad, loose=True) is bool(loose)


def test_every_constraint_has_cases():
    assert {c[0] for c in CASES} == set(CONSTRAINTS)


# Responses that only the loose metric accepts (IFEval's 8 variants: first/last line off, asterisks off).
LOOSE_ONLY = [
    ("startend:end_checker", {"end_phrase": "Any other questions?"}, "Done.\n**Any other questions?**"),
    ("startend:quotation", {}, "Here you go:\n\"Hello.\""),
    ("detectable_format:json_format", {}, "Here is the JSON:\n{\"a\": 1}\nHope it helps."),
    ("first_word:first_word_answer", {"first_word": "lantern"}, "Sure, here it is.\nLantern light."),
    ("combination:repeat_prompt", {"prompt_to_repeat": PROMPT}, "Of course!\nWrite a poem about tea. The poem..."),
    ("length_constraints:number_words", {"num_words": 4, "relation": "less than"}, "Sure thing, here:\nTwo words"),
    ("keywords:start_end", {}, "*Hello* world, hello"),
    ("format:no_whitespace", {}, "Answer:\nNoSpaces"),
    ("copy:copy", {"prompt_to_repeat": "Say hi."}, "Here is the copy:\nSay hi."),
]


@pytest.mark.parametrize(("cid", "kwargs", "text"), LOOSE_ONLY, ids=[c[0] for c in LOOSE_ONLY])
def test_loose_accepts_what_strict_rejects(cid, kwargs, text):
    assert check(cid, kwargs, text) is False
    assert check(cid, kwargs, text, loose=True) is True


def test_loose_variants_are_ifevals_eight():
    variants = loose_variants("first *a*\nmiddle\nlast *b*")
    assert variants == ["first *a*\nmiddle\nlast *b*", "middle\nlast *b*", "first *a*\nmiddle", "middle",
                        "first a\nmiddle\nlast b", "middle\nlast b", "first a\nmiddle"]  # "middle" twice: kept once
    assert loose_variants("one line") == ["one line", ""]


def test_loose_still_rejects_a_miss():
    assert check("punctuation:no_comma", {}, "a, b\nc, d\ne, f", loose=True) is False
    assert check("startend:end_checker", {"end_phrase": "Bye."}, "Bye.\nMore.\nEven more.", loose=True) is False


# -- edge cases that trip reference implementations -------------------------------------------------


@pytest.mark.parametrize("text", ["", "   ", "\n\t \r\n"])
def test_blank_response_follows_nothing(text):
    rng = random.Random(0)
    for cid, c in CONSTRAINTS.items():
        kwargs = c.generate(rng, PROMPT)
        assert check(cid, kwargs, text) is False, cid
        assert check(cid, kwargs, text, loose=True) is False, cid


def test_trailing_whitespace_is_invisible():
    assert check("startend:end_checker", {"end_phrase": "Bye."}, "Text. Bye.  \n\n")
    assert check("startend:quotation", {}, "\"Quoted.\"\n")
    assert check("format:no_whitespace", {}, "NoSpaces\n")
    assert check("keywords:start_end", {}, "tea or tea \n")
    assert check("length_constraints:nth_paragraph_first_word",
                 {"num_paragraphs": 2, "nth_paragraph": 1, "first_word": "tea"}, "\n\nTea time.\n\nMore.\n\n")
    assert check("format:line_indent", {}, "\n  a\n   b\n")  # leading blank line dropped, indentation kept


def test_crlf_counts_like_lf():
    kwargs = {"num_paragraphs": 2, "nth_paragraph": 2, "first_word": "lantern"}
    assert check("length_constraints:nth_paragraph_first_word", kwargs, "Intro.\r\n\r\nLantern light.")
    assert check("paragraphs:paragraphs2", {}, "A\r\n\r\nB")
    assert check("detectable_format:number_bullet_lists", {"num_bullets": 2}, "* a\r\n* b\r\n")
    assert check("startend:end_checker", {"end_phrase": "Bye."}, "Text.\r\nBye.\r\n")
    assert normalize("a\r\nb\rc") == "a\nb\nc"


def test_blank_lines_with_spaces_separate_paragraphs():
    assert check("paragraphs:paragraphs2", {}, "A\n  \nB")
    assert check("length_constraints:nth_paragraph_first_word",
                 {"num_paragraphs": 3, "nth_paragraph": 3, "first_word": "c"}, "A\n\n\n\nB\n\nC")


def test_unicode():
    assert check("keywords:existence", {"keywords": ["café"]}, "Un cafe\u0301 noir.")  # NFD response, NFC keyword
    assert check("change_case:capital_word_frequency", {"capital_frequency": 2, "capital_relation": "at least"},
                 "ÉTÉ ÀLA mode")
    assert not check("punctuation:no_comma", {}, "Arabic، comma")
    assert not check("punctuation:punctuation_dot", {}, "日本語。")
    assert check("length_constraints:number_sentences", {"num_sentences": 2, "relation": "at least"}, "你好。我很好。")
    assert check("length_constraints:number_words", {"num_words": 3, "relation": "at least"}, "naïve façade öl")
    assert check("letters:letter_counting", {"N": 3, "relation": "at least"}, "жзи")


def test_nested_markdown():
    assert check("detectable_format:number_bullet_lists", {"num_bullets": 3}, "* a\n  * a.1\n    - a.1.1\n**b**")
    assert check("detectable_format:multiple_sections", {"section_spliter": "SECTION", "num_sections": 2},
                 "**SECTION 1**\nx\n## SECTION 2\ny")
    assert check("first_word:first_word_answer", {"first_word": "tea"}, "***Tea*** first.")
    assert check("detectable_format:number_highlighted_sections", {"num_highlights": 1}, "A ***bold italic*** bit")
    assert check("detectable_format:title", {}, "**<<Title>>**\nbody")
    assert not check("detectable_format:number_highlighted_sections", {"num_highlights": 1}, "**\n**")


def test_reference_behaviours_kept():
    # IFEval counts text without language features (digits, symbols) as written in any language.
    assert check("language:response_language", {"language": "fr"}, "12345 !!!")
    # Substrings count for keywords, as in IFEval: "cat" is found in "category".
    assert check("keywords:existence", {"keywords": ["cat"]}, "A category.")
    # The postscript marker may appear anywhere, as in IFEval.
    assert check("detectable_content:postscript", {"postscript_marker": "P.S."}, "Note p.s. inline, then more text.")
    # "I" and "A" are capital words, as in IFEval.
    assert check("change_case:capital_word_frequency", {"capital_frequency": 2, "capital_relation": "at least"},
                 "I saw A cat.")


def test_language_detection_is_deterministic():
    from environments.ifeval.text import detect_language

    text = "Ciao amici, come state oggi? Spero bene."
    first = detect_language(text)
    for _ in range(5):
        detect_language.cache_clear()
        assert detect_language(text) == first == "it"


def test_more_edges():
    assert check("format:title_case", {}, "猫 Is Here")  # uncased letters are not lowercase
    assert check("words:prime_lengths", {}, "a" * 53 + " ok")  # primes beyond a short table
    assert not check("words:prime_lengths", {}, "a" * 51)
    assert check("new:copy_span_idx", {"prompt_to_repeat": "a\r\nb", "n_start": 0, "n_end": 3}, "a\nb")
    with pytest.raises(ConstraintError, match="phrase needs at least 3 words"):
        check("copy:repeat_phrase", {"phrase": "two words", "small_n": 2}, "x")
    with pytest.raises(ConstraintError, match="kwargs must be an object, got list"):
        check("punctuation:no_comma", ["x"], "ok")


def test_think_tags_are_plain_text_to_check():
    # check() judges the text it is given; the environment strips reasoning (see test_verify_reasoning_*).
    assert check("punctuation:no_comma", {}, "<think>") is True
    assert check("detectable_format:json_format", {}, "<think>") is False


def test_sentence_splitter():
    assert sentences("Mr. Smith met Dr. Jones at 3 p.m. on Main St. today. Then they left!") == (
        "Mr. Smith met Dr. Jones at 3 p.m. on Main St. today.", "Then they left!")
    assert sentences("The U.S. economy grew 2.5 percent. J. K. Rowling wrote it.") == (
        "The U.S. economy grew 2.5 percent.", "J. K. Rowling wrote it.")
    assert sentences("1. Buy milk\n2. Buy eggs") == ("1. Buy milk\n2. Buy eggs",)
    assert sentences("He said \"Stop.\" Then she ran... Away?! Yes") == (
        "He said \"Stop.\"", "Then she ran...", "Away?!", "Yes")
    assert sentences("**Bold ends here.** Next") == ("**Bold ends here.**", "Next")
    assert sentences("") == ()


# -- kwargs: IFEval's names, validation ------------------------------------------------------------

# IFEval's 25 instruction ids and the keyword arguments of each, as in its published data.
IFEVAL_KWARGS = {
    "keywords:existence": {"keywords"},
    "keywords:frequency": {"keyword", "frequency", "relation"},
    "keywords:forbidden_words": {"forbidden_words"},
    "keywords:letter_frequency": {"letter", "let_frequency", "let_relation"},
    "language:response_language": {"language"},
    "length_constraints:number_sentences": {"num_sentences", "relation"},
    "length_constraints:number_paragraphs": {"num_paragraphs"},
    "length_constraints:number_words": {"num_words", "relation"},
    "length_constraints:nth_paragraph_first_word": {"num_paragraphs", "nth_paragraph", "first_word"},
    "detectable_content:number_placeholders": {"num_placeholders"},
    "detectable_content:postscript": {"postscript_marker"},
    "detectable_format:number_bullet_lists": {"num_bullets"},
    "detectable_format:constrained_response": set(),
    "detectable_format:number_highlighted_sections": {"num_highlights"},
    "detectable_format:multiple_sections": {"section_spliter", "num_sections"},
    "detectable_format:json_format": set(),
    "detectable_format:title": set(),
    "combination:two_responses": set(),
    "combination:repeat_prompt": {"prompt_to_repeat"},
    "startend:end_checker": {"end_phrase"},
    "change_case:capital_word_frequency": {"capital_frequency", "capital_relation"},
    "change_case:english_capital": set(),
    "change_case:english_lowercase": set(),
    "punctuation:no_comma": set(),
    "startend:quotation": set(),
}


def test_ifeval_ids_and_kwargs_names():
    assert len(IFEVAL_KWARGS) == 25
    for cid, names in IFEVAL_KWARGS.items():
        assert CONSTRAINTS[cid].family == "ifeval"
        assert set(CONSTRAINTS[cid].args.model_fields) == names, cid
    assert {cid for cid, c in CONSTRAINTS.items() if c.family == "ifeval"} == set(IFEVAL_KWARGS)


def test_at_least_80_documented_constraints():
    assert len(CONSTRAINTS) >= 80
    assert len(CONSTRAINTS) == 110
    rng = random.Random(1)
    for cid, c in CONSTRAINTS.items():
        assert cid.count(":") == 1 and c.family in FAMILIES
        assert len(c.doc) > 20, cid
        kwargs = c.generate(rng, PROMPT)
        assert c.parse(kwargs) is not None
        text = c.describe(kwargs)
        assert text.strip() and not re.search(r"\{\w+\}", text), (cid, text)  # every placeholder filled


def test_bad_kwargs_name_the_field():
    with pytest.raises(ConstraintError, match=r"length_constraints:number_words: num_words: Field required"):
        check("length_constraints:number_words", {"relation": "at least"}, "x")
    with pytest.raises(ConstraintError, match=r"relation: Input should be 'less than' or 'at least'"):
        check("length_constraints:number_words", {"relation": "at most", "num_words": 3}, "x")
    with pytest.raises(ConstraintError, match=r"num_bullet: Extra inputs are not permitted"):
        check("detectable_format:number_bullet_lists", {"num_bullet": 2}, "x")
    with pytest.raises(ConstraintError, match=r"letter: String should have at most 1 character"):
        check("keywords:letter_frequency", {"letter": "ab", "let_frequency": 1, "let_relation": "at least"}, "x")
    with pytest.raises(ConstraintError, match=r"keywords: Input should be a valid list"):
        check("keywords:existence", {"keywords": "tea"}, "x")
    with pytest.raises(ConstraintError, match=r"language: .*not a language langdetect knows"):
        check("language:response_language", {"language": "klingon"}, "x")
    with pytest.raises(ConstraintError, match=r"n_end \(3\) is before n_start \(5\)"):
        check("new:copy_span_idx", {"prompt_to_repeat": "abcdefgh", "n_start": 5, "n_end": 3}, "x")
    with pytest.raises(ConstraintError, match=r"phrase: String should match pattern"):
        check("copy:repeat_phrase", {"phrase": "   ", "small_n": 2}, "x")
    with pytest.raises(ConstraintError, match=r"unknown instruction id 'keywords:nope'"):
        check("keywords:nope", {}, "x")


def test_null_kwargs_are_dropped():
    # Hugging Face IFEval and IFBench rows give every kwarg name to every instruction, unused ones as null.
    kwargs = {"num_words": 3, "relation": "at least", "keywords": None, "language": None, "N": None}
    assert check("length_constraints:number_words", kwargs, "one two three")
    assert check("punctuation:no_comma", None, "ok")


# -- conflicts and procedural tasks ----------------------------------------------------------------


def test_conflicts_are_symmetric_and_whole_constraints_stand_alone():
    for a in CONSTRAINTS:
        assert a in conflicts(a)
        for b in CONSTRAINTS:
            assert compatible(a, b) == compatible(b, a)
        if WHOLE in CONSTRAINTS[a].aspects:
            assert conflicts(a) == frozenset(CONSTRAINTS)
    assert not compatible("change_case:english_lowercase", "change_case:english_capital")
    assert not compatible("punctuation:punctuation_dot", "detectable_content:postscript")
    assert compatible("punctuation:no_comma", "detectable_format:title")


def test_keyword_lists_keep_generated_tasks_satisfiable():
    assert not [(a, b) for a in KEYWORDS for b in KEYWORDS if a != b and a in b]  # exact counts stay possible
    assert not [k for k in KEYWORDS if set(k) & set(RARE_LETTERS)]  # "fewer than N q's" vs a keyword


def test_compose_makes_compatible_valid_tasks():
    seen = set()
    for seed in range(300):
        fields = compose(random.Random(seed), max_constraints=4, families=FAMILIES)
        ids, kwargs = fields["verifier"]["instruction_id_list"], fields["verifier"]["kwargs"]
        assert 1 <= len(ids) <= 4 and len(ids) == len(kwargs)
        assert all(compatible(a, b) for i, a in enumerate(ids) for b in ids[i + 1 :])
        assert not any(CONSTRAINTS[c].standalone for c in ids)
        assert any(fields["prompt"].startswith(seed_prompt) for seed_prompt in SEED_PROMPTS)
        for cid, kw in zip(ids, kwargs):
            assert CONSTRAINTS[cid].describe(kw) in fields["prompt"]
        seen.update(ids)
    composable = {cid for cid, c in CONSTRAINTS.items() if not c.standalone}
    assert len(seen) > 0.9 * len(composable)
    assert compose(random.Random(7), max_constraints=3, families=FAMILIES) == compose(
        random.Random(7), max_constraints=3, families=FAMILIES)


def test_compose_respects_families():
    for seed in range(50):
        ids = compose(random.Random(seed), max_constraints=3, families=["ifeval"])["verifier"]["instruction_id_list"]
        assert all(CONSTRAINTS[c].family == "ifeval" for c in ids)


def test_seed_prompts():
    assert len(SEED_PROMPTS) == 100 == len(set(SEED_PROMPTS))


# -- the environment -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def env() -> IFEvalEnv:
    return environments.make("ifeval")


def task_of(ids: list[str], kwargs: list[dict], *, reasoning: bool = False, reward: str = "all") -> Task:
    return Task(task_id="t", env="ifeval", prompt=[Message(role="user", content="?")], reasoning=reasoning,
                verifier={"instruction_id_list": ids, "kwargs": kwargs, "reward": reward})


def verify(env: IFEvalEnv, task: Task, text: str) -> Score:
    return env.verify(task, Completion(text=text))


TWO = (["punctuation:no_comma", "startend:end_checker"], [{}, {"end_phrase": "Bye."}])


def test_registered_with_gymnasium(env):
    spec = environments.spec("ifeval")
    assert spec.gym_id == "lachesis/IFEval-v0" and isinstance(env, IFEvalEnv)
    assert spec.description.startswith("Verifiable instruction following")


def test_verify_all_or_nothing(env):
    task = task_of(*TWO)
    s = verify(env, task, "No commas here. Bye.")
    assert (s.reward, s.accepted, s.error) == (1.0, True, None)
    assert s.details == {"instruction_id_list": TWO[0], "strict": [True, True], "loose": [True, True],
                         "strict_all": True, "loose_all": True}
    s = verify(env, task, "Commas, here. Bye.")
    assert (s.reward, s.accepted) == (0.0, False) and s.details["strict"] == [False, True]


def test_verify_fraction(env):
    s = verify(env, task_of(*TWO, reward="fraction"), "Commas, here. Bye.")
    assert (s.reward, s.accepted) == (0.5, False)
    s = verify(env, task_of(*TWO, reward="fraction"), "Commas, here. *Bye.*")
    assert s.reward == 0.0 and s.details["strict"] == [False, False] and s.details["loose"] == [False, True]


def test_verify_reasoning_answer_after_think(env):
    task = task_of(*TWO, reasoning=True)
    s = verify(env, task, "<think>Avoid commas, then, end with Bye.</think>\nNo commas here. Bye.")
    assert s.accepted is True  # the commas inside <think> do not count
    s = verify(env, task, "No commas here. Bye.")
    assert s.accepted is False and s.error == "missing <think> block"
    assert s.details["strict"] == [False, False] and s.details["loose"] == [False, False]


@pytest.mark.parametrize("text", ["<think>", "<think>a</think><think>b</think>ok. Bye.", "x <think>a</think>ok. Bye.",
                                  "<think>plan</think>", "</think>ok. Bye."])
def test_verify_malformed_reasoning_fails_every_instruction(env, text):
    s = verify(env, task_of(*TWO, reasoning=True), text)
    assert (s.reward, s.accepted) == (0.0, False) and s.error
    assert s.details["strict"] == s.details["loose"] == [False, False]


def test_verify_direct_mode_tolerates_empty_think_only(env):
    assert verify(env, task_of(*TWO), "<think>\n\n</think>\n\nNo commas here. Bye.").accepted is True
    s = verify(env, task_of(*TWO), "<think>hmm</think>No commas here. Bye.")
    assert s.accepted is False and "direct" in s.error


@pytest.mark.parametrize("verifier", [
    {"instruction_id_list": ["nope:nope"], "kwargs": [{}]},
    {"instruction_id_list": ["punctuation:no_comma"], "kwargs": []},
    {"instruction_id_list": [], "kwargs": []},
    {"instruction_id_list": ["keywords:existence"], "kwargs": [{"keywords": 3}]},
    {"instruction_id_list": ["punctuation:no_comma"], "kwargs": [{}], "reward": "most"},
    {"kwargs": [{}]},
])
def test_verify_bad_task_is_an_error_score(env, verifier):
    task = Task(task_id="t", env="ifeval", prompt=[Message(role="user", content="?")], verifier=verifier)
    s = verify(env, task, "anything")
    assert (s.reward, s.accepted) == (0.0, False) and s.error.startswith("bad task verifier")


def test_procedural_tasks_deterministic_and_split(env):
    other = environments.make("ifeval")
    train = [env.tasks().get("train", i) for i in range(30)]
    assert train == [other.tasks().get("train", i) for i in range(30)]
    evals = list(env.tasks().iter("eval", limit=30))
    assert not {t.task_id for t in train} & {t.task_id for t in evals}
    assert env.tasks().size("eval") == 500 and env.tasks().size("train") is None
    for t in train + evals:
        assert t.verifier["reward"] == "all" and t.verifier["length_penalty"] == 0.0
        assert t.prompt[0].role == "user" and t.reasoning is False


def test_settings_do_not_move_tasks_between_splits():
    plain = environments.make("ifeval")
    shaped = environments.make("ifeval", reward="fraction", length_penalty=0.3)
    a, b = plain.tasks().get("train", 3), shaped.tasks().get("train", 3)
    assert a.task_id == b.task_id and a.prompt == b.prompt
    assert (b.verifier["reward"], b.verifier["length_penalty"]) == ("fraction", 0.3)


@pytest.mark.parametrize("config", [{"reward": "most"}, {"families": ["ifeval", "x"]}, {"families": []},
                                    {"max_constraints": 0}, {"length_penalty": 2.0}, {"tasks_split": "test"}])
def test_bad_config_rejected(config):
    with pytest.raises(ValueError):
        environments.make("ifeval", **config)


def test_reasoning_config_and_episode():
    e = environments.make("ifeval", reasoning=True)
    obs, info = asyncio.run(e.reset(seed=0, options={"task": task_of(*TWO, reasoning=True).model_dump(mode="json")}))
    assert info["reasoning"] is True
    _, reward, terminated, _, info = asyncio.run(
        e.step(Message(role="assistant", content="<think>plan</think>No commas here. Bye.")))
    assert (reward, terminated) == (1.0, True) and info["score"]["details"]["strict_all"] is True
    assert e.tasks().get("train", 0).reasoning is True


# -- IFEval-format files ---------------------------------------------------------------------------


def _rows() -> list[dict]:
    hf_style = {"num_words": 3, "relation": "at least", "keywords": None, "language": None}
    return [
        {"key": 1, "prompt": "Say three words.", "instruction_id_list": ["length_constraints:number_words"],
         "kwargs": [hf_style]},
        {"key": 2, "prompt": "Write JSON.", "instruction_id_list": ["detectable_format:json_format",
                                                                    "keywords:existence"],
         "kwargs": [{}, {"keywords": ["tea"]}], "split": "eval"},
        {"key": 3, "prompt": "Repeat me.", "instruction_id_list": ["combination:repeat_prompt"],
         "kwargs": [{"prompt_to_repeat": "Repeat me."}], "split": "train"},
    ]


def test_ifeval_jsonl_loads_and_verifies(tmp_path):
    path = tmp_path / "ifeval.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in _rows()) + "\n\n")
    e = environments.make("ifeval", tasks_path=str(path), reward="fraction")
    source = e.tasks()
    assert source.size("eval") >= 1 and source.size("train") + source.size("eval") == 3
    tasks = {t.prompt[0].content: t for split in ("train", "eval") for t in source.iter(split)}
    assert tasks["Write JSON."].split == "eval" and tasks["Repeat me."].split == "train"
    words = tasks["Say three words."]
    assert words.verifier["kwargs"] == [{"num_words": 3, "relation": "at least"}]  # nulls dropped
    assert verify(e, words, "one two three").reward == 1.0
    s = verify(e, tasks["Write JSON."], '{"drink": "tea"}')
    assert s.accepted is True
    assert verify(e, tasks["Write JSON."], '{"drink": "coffee"}').reward == 0.5
    assert verify(e, tasks["Repeat me."], "Repeat me. Done.").accepted is True


def test_ifeval_jsonl_whole_file_as_one_split_and_unknown_ids_skipped(tmp_path):
    unknown = {"prompt": "Start with a verb.", "instruction_id_list": ["words:start_verb"], "kwargs": [{}]}
    path = tmp_path / "ifbench.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in [*_rows(), unknown]))
    with pytest.raises(ValueError, match=r"ifbench\.jsonl:4: unknown instruction id 'words:start_verb'"):
        IFEvalFile("ifeval", path)
    source = IFEvalFile("ifeval", path, split="eval", skip_unknown=True)
    assert (source.size("eval"), source.size("train"), source.skipped) == (3, 0, 1)
    e = environments.make("ifeval", tasks_path=str(path), tasks_split="train", skip_unknown=True)
    assert (e.tasks().size("train"), e.tasks().size("eval")) == (3, 0)


@pytest.mark.parametrize(("row", "message"), [
    ({"prompt": "x", "instruction_id_list": ["nope:nope"], "kwargs": [{}]}, "unknown instruction id 'nope:nope'"),
    ({"prompt": "x", "instruction_id_list": ["punctuation:no_comma"], "kwargs": [{}, {}]}, "kwargs must be a list of 1"),
    ({"prompt": "x", "instruction_id_list": ["length_constraints:number_words"], "kwargs": [{"num_words": 3}]},
     "relation: Field required"),
    ({"prompt": "", "instruction_id_list": ["punctuation:no_comma"], "kwargs": [{}]}, "prompt must be a non-empty"),
    ({"prompt": "x", "instruction_id_list": ["punctuation:no_comma"], "kwargs": [{}], "split": "test"}, "split"),
])
def test_ifeval_jsonl_bad_row_names_line_and_field(tmp_path, row, message):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(_rows()[0]) + "\n" + json.dumps(row) + "\n")
    with pytest.raises(ValueError, match=r"bad\.jsonl:2: ") as info:
        IFEvalFile("ifeval", path)
    assert message in str(info.value)


# -- group length penalty --------------------------------------------------------------------------


def test_group_length_penalty():
    assert group_length_penalty([10, 20, 30], [1.0, 1.0, 1.0], weight=0.2) == pytest.approx([1.0, 0.9, 0.8])
    assert group_length_penalty([10, 20, 30], [1.0, 0.0, 1.0], weight=0.2) == [1.0, 0.0, 1.0]  # not all passed
    assert group_length_penalty([10, 10], [1.0, 1.0], weight=0.2) == [1.0, 1.0]
    assert group_length_penalty([10, 30], [1.0, 1.0], weight=0.0) == [1.0, 1.0]
    assert group_length_penalty([], [], weight=0.2) == []
    with pytest.raises(ValueError, match="2 lengths for 1 rewards"):
        group_length_penalty([1, 2], [1.0], weight=0.2)


# -- never raises on arbitrary text ----------------------------------------------------------------

_PIECES = st.sampled_from([
    "\n", "\r\n", "\n\n", " ", "*", "**", "***", "******", "* ", "- ", "---", "<<", ">>", "<<t>>", "[", "]", "[x]",
    "(", ")", "{", "}", '"', "'", "“", "”", "P.S.", "P.P.S", "Section 1", "SECTION 2", "```json", "```", "{}", "[1,",
    ".", "!", "?", "?!", ",", "，", "。", "…", "<think>", "</think>", "<i>", "</i>", "<em>", "Question 1", "A. x",
    "Zimbabwe", "tea", "Tea", "TEA", "lantern", "the", "And", "Emma", "😀", "❤️", "\ufe0f", "\u200d", "猫", "Ñ", "é",
    "\t", "\x00", "1.", "14", "1805-12-02", "\u0301", "-", "⸻", "\ufeff", "I", "a", "aaaaa", "9" * 300, "[" * 400,
    "(" * 50, "\"'" * 30, "< <",
])
_TEXTS = st.one_of(st.text(), st.lists(st.one_of(_PIECES, st.text(max_size=5)), max_size=25).map("".join))


@settings(max_examples=200, deadline=None)
@given(text=_TEXTS, seed=st.integers(min_value=0, max_value=2**32 - 1))
@example(text="<think>", seed=0)
@example(text="[" * 100_000, seed=1)
@example(text="*" * 20_000 + "\n" + "<" * 20_000 + " " * 20_000, seed=2)
def test_no_constraint_raises_on_any_text(text, seed):
    rng = random.Random(seed)
    for cid, c in CONSTRAINTS.items():
        kwargs = c.generate(rng, rng.choice(SEED_PROMPTS))
        strict = check(cid, kwargs, text)
        loose = check(cid, kwargs, text, loose=True)
        assert isinstance(strict, bool) and isinstance(loose, bool)
        assert loose or not strict, cid  # loose accepts whatever strict accepts


@settings(max_examples=200, deadline=None)
@given(text=_TEXTS, reasoning=st.booleans(), seed=st.integers(min_value=0, max_value=10_000))
def test_verify_never_raises(env, text, reasoning, seed):
    task = env.tasks().get("train", seed % 50).model_copy(update={"reasoning": reasoning})
    s = env.verify(task, Completion(text=text))
    assert isinstance(s, Score) and s.reward in (0.0, 1.0)
    assert s.accepted == (s.reward == 1.0) == all(s.details["strict"])


# -- through the environment server ----------------------------------------------------------------


def test_server_batch_verify(shared_server):
    tasks = [task_of(*TWO), task_of(["detectable_format:title"], [{}], reward="fraction")]
    items = [(tasks[0], Completion(text="No commas here. Bye.")), (tasks[0], Completion(text="A, b. Bye.")),
             (tasks[1], Completion(text="<<Title>>\nBody"))]

    async def run():
        async with EnvServerClient(shared_server.url) as client:
            return await client.verify("ifeval", items)

    scores = asyncio.run(run())
    assert [s["reward"] for s in scores] == [1.0, 0.0, 1.0]
    assert scores[1]["details"]["strict"] == [False, True]
