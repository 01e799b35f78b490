"""The arithmetic environment: exact verification of \\boxed{} answers, and the async Env episode protocol."""

from __future__ import annotations

import asyncio
from fractions import Fraction

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from environments import EpisodeOver, Observation, make
from environments.arithmetic import ArithmeticEnv, boxed_answer, parse_number
from environments.types import Completion, Message, Score, Task

run = asyncio.run


@pytest.fixture(scope="module")
def env() -> ArithmeticEnv:
    return make("arithmetic")


@pytest.fixture(scope="module")
def renv() -> ArithmeticEnv:
    return make("arithmetic", reasoning=True)


@pytest.fixture(scope="module")
def tasks(env) -> list[Task]:
    return list(env.tasks().iter("train", limit=50)) + list(env.tasks().iter("eval", limit=50))


def task_with(answer: int | str, reasoning: bool = False) -> Task:
    return Task(task_id="t", env="arithmetic", prompt=[Message(role="user", content="?")],
                verifier={"answer": str(answer)}, reasoning=reasoning)


def verify(env: ArithmeticEnv, task: Task, text: str) -> Score:
    return env.verify(task, Completion(text=text))


# -- correct and wrong answers ----------------------------------------------------------------------


def test_tasks_look_right(tasks):
    for t in tasks:
        assert t.env == "arithmetic" and t.reasoning is False
        assert t.prompt[0].role == "user" and "\\boxed{}" in t.prompt[0].content
        assert int(t.verifier["answer"]) >= 1  # the story never goes to zero or negative


def test_own_answer_accepted(env, tasks):
    for t in tasks:
        s = verify(env, t, f"Let me compute. The answer is \\boxed{{{t.verifier['answer']}}}.")
        assert s.accepted is True and s.reward == 1.0 and s.error is None
        assert s.details == {"expected": t.verifier["answer"], "extracted": t.verifier["answer"]}


def test_wrong_answer_rejected(env, tasks):
    for t in tasks:
        wrong = int(t.verifier["answer"]) + 1
        s = verify(env, t, f"\\boxed{{{wrong}}}")
        assert s.accepted is False and s.reward == 0.0
        assert s.error is None  # well-formed, just wrong
        assert s.details["extracted"] == str(wrong)


@pytest.mark.parametrize(
    ("answer", "text"),
    [
        (1234, "\\boxed{1,234}"),
        (1234567, "\\boxed{1,234,567}"),
        (42, "\\boxed{$42$}"),
        (42, "\\boxed{42.0}"),
        (42, "\\boxed{42.}"),
        (42, "\\boxed{42.000}"),
        (42, "\\boxed{\\frac{84}{2}}"),
        (42, "\\boxed{\\dfrac{84}{2}}"),
        (42, "\\boxed{\\tfrac{126}{3}}"),
        (42, "\\boxed{84/2}"),
        (42, "\\boxed{ 42 }"),
        (42, "\\boxed{042}"),
        (1234, "\\boxed{1\\,234}"),
        (-7, "\\boxed{-7}"),
        (0, "\\boxed{0}"),
        (0, "\\boxed{-0}"),
    ],
)
def test_number_formatting_variants_accepted(env, answer, text):
    s = verify(env, task_with(answer), text)
    assert s.accepted is True and s.reward == 1.0, s


@pytest.mark.parametrize(
    ("answer", "text"),
    [
        (1234, "\\boxed{12,34}"),  # not a thousands separator
        (1234, "\\boxed{1,2345}"),
        (42, "\\boxed{42.5}"),
        (42, "\\boxed{\\frac{85}{2}}"),
        (42, "\\boxed{-42}"),
        (42, "\\boxed{4.2e1}"),  # exponents are not accepted
    ],
)
def test_near_misses_rejected(env, answer, text):
    s = verify(env, task_with(answer), text)
    assert s.accepted is False and s.reward == 0.0


@pytest.mark.parametrize("raw", ["forty-two", "42 apples", "x", "", "\\frac{1}{0}", "1/0", "inf", "nan", "4 2 !", "--4"])
def test_non_numbers_are_error_scores(env, raw):
    s = verify(env, task_with(42), f"\\boxed{{{raw}}}")
    assert s.accepted is False and s.reward == 0.0
    assert s.error is not None and s.error.startswith("not a number")
    assert s.details["extracted"] == raw


@pytest.mark.parametrize("text", ["The answer is 42.", "42", "\\boxed 42", "\\boxed{42", "boxed{42}", ""])
def test_no_boxed_is_an_error_score(env, text):
    s = verify(env, task_with(42), text)
    assert s.accepted is False and s.reward == 0.0
    assert s.error == "no \\boxed{} answer"
    assert s.details == {"expected": "42"}


def test_nested_braces_in_boxed():
    assert boxed_answer("\\boxed{\\frac{84}{2}}") == "\\frac{84}{2}"
    assert boxed_answer("so \\boxed{{{42}}} done") == "{{42}}"
    assert boxed_answer("\\boxed{a{b}c}d}") == "a{b}c"
    assert boxed_answer("\\boxed{a{b}c") is None  # unbalanced
    assert boxed_answer("no box") is None


def test_last_boxed_wins(env):
    t = task_with(42)
    assert verify(env, t, "First \\boxed{41}, no wait, \\boxed{42}.").accepted is True
    s = verify(env, t, "First \\boxed{42}, no wait, \\boxed{41}.")
    assert s.accepted is False and s.details["extracted"] == "41"
    assert verify(env, t, "\\boxed{\\frac{1}{2}} then \\boxed{\\frac{84}{2}}").accepted is True


def test_parse_number_values():
    assert parse_number("1,234") == 1234
    assert parse_number("$-3/4$") == Fraction(-3, 4)
    assert parse_number("\\frac{-6}{4}") == Fraction(-3, 2)
    assert parse_number(".5") == Fraction(1, 2)
    assert parse_number("0.1") == Fraction(1, 10)  # exact, not a float
    assert parse_number("abc") is None
    assert parse_number("\\frac{1}{0}") is None


def test_parse_number_huge_numbers_do_not_raise(env):
    huge = "9" * 5000  # beyond Python's 4,300-digit int-string conversion limit
    for raw in (huge, f"\\frac{{{huge}}}{{1}}", f"\\frac{{1}}{{{huge}}}", f"0.{huge}", f"{huge}/7"):
        assert parse_number(raw) is None or isinstance(parse_number(raw), Fraction)
        s = verify(env, task_with(42), f"\\boxed{{{raw}}}")
        assert s.accepted is False and s.reward == 0.0


# -- reasoning tasks --------------------------------------------------------------------------------


def test_reasoning_tasks_flagged(renv):
    t = renv.tasks().get("train", 0)
    assert t.reasoning is True
    assert renv.tasks().get("eval", 0).reasoning is True


def test_reasoning_tasks_require_think_block(renv):
    t = renv.tasks().get("train", 0)
    answer = t.verifier["answer"]
    s = verify(renv, t, f"\\boxed{{{answer}}}")
    assert s.accepted is False and s.error == "missing <think> block"
    s = verify(renv, t, f"<think>Work it out step by step.</think>\nSo \\boxed{{{answer}}}")
    assert s.accepted is True and s.reward == 1.0
    s = verify(renv, t, f"<think></think>\\boxed{{{answer}}}")
    assert s.accepted is False and "empty" in s.error
    s = verify(renv, t, f"<think>a</think><think>b</think>\\boxed{{{answer}}}")
    assert s.accepted is False and "exactly one" in s.error


def test_reasoning_boxed_inside_think_does_not_count(renv):
    t = task_with(42, reasoning=True)
    s = verify(renv, t, "<think>maybe \\boxed{42}</think>I am not sure.")
    assert s.accepted is False and s.error == "no \\boxed{} answer"
    s = verify(renv, t, "<think>maybe \\boxed{42}</think>\\boxed{41}")
    assert s.accepted is False and s.details["extracted"] == "41"


def test_direct_tasks_reject_reasoning_but_tolerate_empty_block(env):
    t = task_with(42)
    assert verify(env, t, "<think>\n\n</think>\n\n\\boxed{42}").accepted is True
    s = verify(env, t, "<think>42 it is</think>\\boxed{42}")
    assert s.accepted is False and "direct" in s.error


# -- verify never raises ----------------------------------------------------------------------------

_pieces = st.sampled_from(["\\boxed{", "}", "{", "<think>", "</think>", "\\frac{", "42", "1,234", "$", ".", "-", "/",
                           " ", "\n", "9" * 5000])
_texts = st.one_of(st.text(), st.lists(st.one_of(_pieces, st.text(max_size=4)), max_size=12).map("".join))


@settings(max_examples=200, deadline=None)
@given(text=_texts, reasoning=st.booleans())
@example(text="\\boxed{\\frac{" + "1" * 5000 + "}{2}}", reasoning=False)
@example(text="<think>x</think>\\boxed{", reasoning=True)
def test_verify_never_raises(env, text, reasoning):
    s = env.verify(task_with(42, reasoning=reasoning), Completion(text=text))
    assert isinstance(s, Score)
    assert s.reward in (0.0, 1.0)
    assert s.accepted == (s.reward == 1.0)
    if s.accepted:
        assert s.error is None


@settings(max_examples=200, deadline=None)
@given(n=st.integers(min_value=-(10**12), max_value=10**12))
def test_any_integer_round_trips(env, n):
    assert verify(env, task_with(n), f"\\boxed{{{n}}}").accepted
    assert verify(env, task_with(n), f"\\boxed{{{n:,}}}").accepted
    assert verify(env, task_with(n), f"\\boxed{{{n}.0}}").accepted
    assert not verify(env, task_with(n), f"\\boxed{{{n + 1}}}").accepted


# -- episode protocol (Env) -------------------------------------------------------------------------


def test_reset_and_step_single_turn():
    e = make("arithmetic")
    obs, info = run(e.reset(seed=1))
    assert isinstance(obs, Observation)
    assert info == {"task_id": e.task.task_id, "split": "train", "reasoning": False}
    assert obs.messages == e.task.prompt and obs.tools is None
    action = Message(role="assistant", content=f"\\boxed{{{e.task.verifier['answer']}}}")
    obs, reward, terminated, truncated, info = run(e.step(action))
    assert (reward, terminated, truncated) == (1.0, True, False)
    assert obs.messages[-1] == action and len(obs.messages) == 2
    assert info["score"] == {"reward": 1.0, "accepted": True, "details": {
        "expected": e.task.verifier["answer"], "extracted": e.task.verifier["answer"]}, "error": None, "retry": False}


def test_step_after_termination_raises():
    e = make("arithmetic")
    with pytest.raises(EpisodeOver):  # never reset
        run(e.step(Message(role="assistant", content="1")))
    run(e.reset(seed=0))
    run(e.step(Message(role="assistant", content="\\boxed{1}")))
    with pytest.raises(EpisodeOver, match="reset"):
        run(e.step(Message(role="assistant", content="\\boxed{1}")))
    run(e.reset(seed=0))  # a new episode can be played
    run(e.step(Message(role="assistant", content="\\boxed{1}")))


@pytest.mark.parametrize("role", ["user", "system", "tool"])
def test_step_with_non_assistant_role_raises(role):
    e = make("arithmetic")
    run(e.reset(seed=0))
    with pytest.raises(ValueError, match="assistant"):
        run(e.step(Message(role=role, content="\\boxed{1}")))
    assert e.done is False and len(e.messages) == 1  # the bad action changed nothing
    _, _, terminated, _, _ = run(e.step(Message(role="assistant", content="\\boxed{1}")))
    assert terminated


def test_reset_with_index_and_split(env):
    e = make("arithmetic")
    _, info = run(e.reset(options={"index": 5}))
    assert info["task_id"] == env.tasks().get("train", 5).task_id
    _, info = run(e.reset(options={"split": "eval", "index": 3}))
    assert info["split"] == "eval" and info["task_id"] == env.tasks().get("eval", 3).task_id
    with pytest.raises(IndexError):
        run(e.reset(options={"split": "eval", "index": 500}))


def test_reset_eval_without_index_draws_within_eval(env):
    e = make("arithmetic", eval_size=4)
    eval_ids = {t.task_id for t in e.tasks().iter("eval")}
    for seed in range(10):
        _, info = run(e.reset(seed=seed, options={"split": "eval"}))
        assert info["split"] == "eval" and info["task_id"] in eval_ids


def test_reset_with_task():
    e = make("arithmetic")
    t = task_with(99)
    obs, info = run(e.reset(options={"task": t.model_dump(mode="json")}))
    assert info["task_id"] == "t" and e.task == t
    assert obs.messages[0].content == "?"
    _, reward, *_ = run(e.step(Message(role="assistant", content="\\boxed{99}")))
    assert reward == 1.0


def test_reset_with_reasoning_override():
    e = make("arithmetic")
    _, info = run(e.reset(options={"index": 0, "reasoning": True}))
    assert info["reasoning"] is True and e.task.reasoning is True
    answer = e.task.verifier["answer"]
    _, reward, _, _, info = run(e.step(Message(role="assistant", content=f"\\boxed{{{answer}}}")))
    assert reward == 0.0 and info["score"]["error"] == "missing <think> block"

    r = make("arithmetic", reasoning=True)
    _, info = run(r.reset(options={"index": 0, "reasoning": False}))
    assert info["reasoning"] is False
    answer = r.task.verifier["answer"]
    _, reward, *_ = run(r.step(Message(role="assistant", content=f"\\boxed{{{answer}}}")))
    assert reward == 1.0


@pytest.mark.parametrize("options", [{"index": -1}, {"split": "test"}, {"bogus": 1}, {"reasoning": "maybe"}])
def test_reset_rejects_bad_options(options):
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        run(make("arithmetic").reset(options=options))


def test_reset_seed_deterministic():
    def ids(seed):
        e = make("arithmetic")
        return [run(e.reset(seed=seed))[1]["task_id"]] + [run(e.reset())[1]["task_id"] for _ in range(4)]

    assert ids(7) == ids(7)
    assert ids(7) != ids(8)
    assert len(set(ids(7))) > 1  # the sequence after a seeded reset advances
    e1, e2 = make("arithmetic"), make("arithmetic")
    assert run(e1.reset(seed=3))[0] == run(e2.reset(seed=3))[0]


def test_observation_is_a_copy():
    e = make("arithmetic")
    obs, _ = run(e.reset(seed=0))
    obs.messages.append(Message(role="assistant", content="tamper"))
    assert len(e.messages) == 1
    assert len(e.task.prompt) == 1


def test_score_converts_verifier_exception():
    class BrokenEnv(ArithmeticEnv):
        def verify(self, task, completion):
            raise KeyError("answer")

    e = BrokenEnv("broken")
    s = e.score(task_with(1), Completion(text="\\boxed{1}"))
    assert s.reward == 0.0 and s.accepted is False
    assert s.error == "verifier error: KeyError: 'answer'"

    run(e.reset(seed=0))
    _, reward, terminated, _, info = run(e.step(Message(role="assistant", content="\\boxed{1}")))
    assert reward == 0.0 and terminated is True
    assert info["score"]["error"].startswith("verifier error: KeyError")


def test_score_passes_through_good_verdicts(env):
    assert env.score(task_with(5), Completion(text="\\boxed{5}")).accepted is True
    assert env.score(task_with(5), Completion(text="\\boxed{6}")).error is None
