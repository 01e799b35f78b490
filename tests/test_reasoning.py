"""parse_reasoning: the strict hybrid-reasoning format shared by every environment."""

from __future__ import annotations

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from environments.reasoning import Parsed, parse_reasoning


def ok(text: str, required: bool) -> Parsed:
    p = parse_reasoning(text, required=required)
    assert p.error is None, p.error
    return p


def bad(text: str, required: bool, *fragments: str) -> Parsed:
    p = parse_reasoning(text, required=required)
    assert p.error is not None, f"{text!r} should be rejected"
    for f in fragments:
        assert f in p.error
    return p


# -- required (reasoning) mode ----------------------------------------------------------------------


def test_required_well_formed():
    p = ok("<think>let me add 2 and 2</think>The answer is 4.", True)
    assert p == Parsed("let me add 2 and 2", "The answer is 4.", None)


def test_required_strips_whitespace_and_allows_leading_whitespace():
    p = ok("  \n\t<think>\n  step one\n  step two\n</think>\n\n  answer  \n", True)
    assert p.reasoning == "step one\n  step two"
    assert p.answer == "answer"


def test_required_multiline_answer_kept_whole():
    p = ok("<think>r</think>line 1\nline 2", True)
    assert p.answer == "line 1\nline 2"


def test_required_missing_block():
    p = bad("The answer is 4.", True, "missing <think> block")
    assert p.reasoning is None
    assert p.answer == "The answer is 4."


def test_required_empty_text():
    bad("", True, "missing")
    bad("   \n ", True, "missing")


@pytest.mark.parametrize("text", ["<think>still thinking", "<think>thinking... answer 4", "answer <think>"])
def test_required_unclosed_block(text):
    p = bad(text, True, "exactly one", "<think>")
    assert p.reasoning is None and p.answer == ""


@pytest.mark.parametrize(
    "text",
    [
        "<think>a</think><think>b</think>answer",
        "<think>a</think>answer<think>b</think>",
        "<think>a</think>answer<think>",
        "<think>a</think>answer</think>",
        "<think><think>a</think></think>answer",
    ],
)
def test_required_two_blocks_or_extra_tags(text):
    bad(text, True, "expected exactly one <think>…</think> block")


def test_required_tags_listed_in_error():
    p = bad("<think>a</think><think>b</think>x", True)
    assert "['<think>', '</think>', '<think>', '</think>']" in p.error


def test_required_close_before_open():
    bad("</think>answer<think>", True, "exactly one")


@pytest.mark.parametrize("text", ["Sure! <think>r</think>answer", "x\n<think>r</think>answer", ".<think>r</think>a"])
def test_required_text_before_block(text):
    p = bad(text, True, "text before the <think> block")
    assert p.answer == ""


@pytest.mark.parametrize("text", ["<think></think>answer", "<think>   \n\t </think>answer"])
def test_required_empty_block(text):
    p = bad(text, True, "empty <think> block")
    assert p.answer == "answer"


@pytest.mark.parametrize("text", ["<think>reasoning</think>", "<think>reasoning</think>   \n\n", "  <think>r</think>\r\n"])
def test_required_answer_empty(text):
    p = bad(text, True, "no answer after the </think> block")
    assert p.reasoning


def test_required_only_tags():
    # both faults at once: the empty block is the one reported
    bad("<think></think>", True, "empty <think> block")


# -- direct (non-reasoning) mode --------------------------------------------------------------------


@pytest.mark.parametrize("text", ["The answer is 4.", "  4  ", "a < b and c > d", "<thinking>not a tag</thinking> 4",
                                  "<THINK>uppercase is not a tag</THINK>"])
def test_direct_no_tags_fine(text):
    p = ok(text, False)
    assert p.reasoning is None
    assert p.answer == text.strip()


def test_direct_empty_text_has_no_format_error():
    p = ok("", False)
    assert p.answer == ""


@pytest.mark.parametrize("text", ["<think>\n\n</think>\n\nThe answer is 4.", "<think></think>The answer is 4.",
                                  "\n <think> </think> The answer is 4."])
def test_direct_empty_leading_block_tolerated(text):
    p = ok(text, False)
    assert p.reasoning is None
    assert p.answer == "The answer is 4."


def test_direct_empty_block_without_answer():
    bad("<think>\n\n</think>\n", False, "no answer")


def test_direct_non_empty_reasoning_rejected():
    p = bad("<think>I should add</think>4", False, "reasoning block in direct (non-reasoning) mode")
    assert p.reasoning == "I should add"
    assert p.answer == "4"


@pytest.mark.parametrize("text", ["4</think>", "</think>4", "The answer</think> is 4"])
def test_direct_stray_close_tag_rejected(text):
    bad(text, False, "exactly one", "</think>")


@pytest.mark.parametrize("text", ["<think>4", "4 <think>", "<think></think><think></think>4"])
def test_direct_stray_or_extra_open_tags_rejected(text):
    bad(text, False, "exactly one")


def test_direct_text_before_empty_block_rejected():
    bad("4 <think></think> 4", False, "text before")


# -- line endings and Unicode -----------------------------------------------------------------------


def test_crlf_line_endings():
    p = ok("\r\n<think>\r\nfirst\r\nsecond\r\n</think>\r\n\r\nanswer\r\n", True)
    assert p.reasoning == "first\r\nsecond"
    assert p.answer == "answer"
    p = ok("<think>\r\n\r\n</think>\r\n42\r\n", False)
    assert p.answer == "42"
    bad("<think>\r\n\r\n</think>\r\n\r\n", True, "empty")


def test_unicode_content():
    p = ok("<think>思考：二加二等于四 🤔</think>答案是 4 ✅", True)
    assert p.reasoning == "思考：二加二等于四 🤔"
    assert p.answer == "答案是 4 ✅"
    assert ok("Ответ: ４２", False).answer == "Ответ: ４２"


def test_unicode_whitespace_counts_as_whitespace():
    # ideographic space and no-break space are whitespace to str.strip: still an empty block / leading space
    bad("<think>\u3000\u00a0</think>answer", True, "empty")
    assert ok("\u3000<think>r</think>\u00a0answer\u2003", True).answer == "answer"
    # a zero-width space is not whitespace: text before the block
    bad("\u200b<think>r</think>answer", True, "text before")


def test_parsed_is_frozen():
    p = parse_reasoning("x", required=False)
    with pytest.raises(AttributeError):
        p.answer = "y"  # type: ignore[misc]


# -- properties -------------------------------------------------------------------------------------

# text with a high chance of containing the tags, in any arrangement
_pieces = st.sampled_from(["<think>", "</think>", "<think", "think>", "</", " ", "\n", "\r\n", "\t", "a", "42", "é", "思"])
_texts = st.one_of(st.text(), st.lists(st.one_of(_pieces, st.text(max_size=5)), max_size=12).map("".join))


@settings(max_examples=200, deadline=None)
@given(text=_texts)
@example(text="<think>r</think>a")
@example(text="<think></think>")
@example(text="")
def test_never_raises_and_invariants(text):
    for required in (True, False):
        p = parse_reasoning(text, required=required)
        assert isinstance(p, Parsed)
        assert isinstance(p.answer, str)
        assert p.answer == p.answer.strip()
        if p.error is None:
            # a well-formed answer never contains a think tag
            assert "<think>" not in p.answer and "</think>" not in p.answer
        if required and p.error is None:
            assert p.reasoning  # non-empty
            assert p.answer  # non-empty
            assert p.reasoning == p.reasoning.strip()
        if not required and p.error is None:
            assert p.reasoning is None


@settings(max_examples=200, deadline=None)
@given(
    reasoning=st.text().filter(lambda s: s.strip() and "think>" not in s),
    answer=st.text().filter(lambda s: s.strip() and "think>" not in s),
    lead=st.sampled_from(["", " ", "\n", "\r\n", "\t \n"]),
)
def test_well_formed_required_round_trip(reasoning, answer, lead):
    p = parse_reasoning(f"{lead}<think>{reasoning}</think>{answer}", required=True)
    assert p.error is None
    assert p.reasoning == reasoning.strip()
    assert p.answer == answer.strip()
    # and the same text is wrong in direct mode, because it has reasoning
    assert parse_reasoning(f"{lead}<think>{reasoning}</think>{answer}", required=False).error is not None
