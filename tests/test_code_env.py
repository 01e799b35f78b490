"""The code environment: comparison rules, program extraction, the built-in problem set (every reference
solution judged in the real sandbox), verdicts and rewards, feedback episodes, LiveCodeBench/APPS/Lachesis
task files, and batch verification and sessions through a real server process."""

from __future__ import annotations

import asyncio
import base64
import datetime
import json
import pickle
import shutil
import zlib
from concurrent.futures import ThreadPoolExecutor

import gymnasium
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import environments
from env_server.client import EnvServerClient
from environments import Completion, Message, Task
from environments.code import CodeEnv, CodeFeedbackEnv, builtin_problems, get_sandbox, load_tasks, run_tests
from environments.code.compare import Compare, output_matches, value_matches
from environments.code.extract import code_blocks, extract_program
from environments.code.judge import CodeSpec, judge
from environments.code.sandbox import LANGUAGES

PY = LANGUAGES["python"]
A_PLUS_B = "a, b = map(int, input().split())\nprint(a + b)\n"
SUM_TESTS = [{"input": "1 2\n", "output": "3\n"}, {"input": "-4 4\n", "output": "0\n"},
             {"input": "5 6\n", "output": "11\n"}]


def answer(program: str, lang: str = "python") -> Completion:
    return Completion(text=f"I read both numbers and add them.\n\n```{lang}\n{program.rstrip()}\n```\n")


def problem_task(problem_id: str, env: str = "code") -> Task:
    return next(p.task(env) for p in builtin_problems() if p.id == problem_id)


def assistant(text: str) -> Message:
    return Message(role="assistant", content=text)


def verdicts(score) -> list[str]:
    return [v["verdict"] for v in score.details["verdicts"]]


# -- comparison rules -------------------------------------------------------------------------------------
def test_whitespace_is_forgiven_at_line_ends_and_between_tokens_only():
    rules = Compare()
    assert output_matches("1  2\t3   \r\n4\n\n\n", "1 2 3\n4", rules)
    assert not output_matches("1 2 3 4", "1 2 3\n4", rules)  # line structure counts
    assert not output_matches("\n1", "1", rules)  # a leading blank line is a line
    assert not output_matches("12", "1 2", rules)


def test_numbers_match_within_tolerance_unless_both_are_integers():
    rules = Compare(float_tol=1e-6)
    assert output_matches("0.3333333", "0.333333333", rules)
    assert output_matches("5", "5.000000", rules) and output_matches("1e3", "1000.0", rules)
    assert output_matches("1000000.5", "1000000.0000001", Compare(float_tol=1e-6))  # relative for large values
    assert not output_matches("0.334", "0.333", rules)
    assert not output_matches("007", "7", rules) and not output_matches("8", "7", rules)
    assert not output_matches("nan", "nan0", rules) and not output_matches("inf", "1e999", rules)
    assert not output_matches("2.0", "2.1", Compare(float_tol=0))


def test_unordered_outputs_compare_lines_as_a_multiset():
    rules = Compare(unordered=True)
    assert output_matches("b\na\nc\n", "a\nb\nc", rules)
    assert not output_matches("a\na\nb", "a\nb\nb", rules)
    assert not output_matches("b\na", "a\nb", Compare())


def test_return_values():
    rules = Compare()
    assert value_matches([1, [2.0000000001, "x"]], [1, [2, "x"]], rules)
    assert not value_matches(1, True, rules) and not value_matches(True, 1, rules)  # booleans are not numbers
    assert not value_matches(2, 3, rules) and not value_matches("2", 2, rules)
    assert value_matches({"a": 1, "b": [0.5]}, {"b": [0.5], "a": 1}, rules)
    assert not value_matches({"a": 1}, {"a": 1, "b": 2}, rules)
    assert value_matches([[1, 2], [0, 3]], [[0, 3], [1, 2]], Compare(unordered=True))
    assert not value_matches([[1, 2], [0, 3]], [[0, 3], [1, 2]], rules)
    assert value_matches(None, None, rules) and not value_matches(None, [], rules)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300), st.booleans(), st.floats(0, 1))
def test_fuzz_an_output_matches_itself_with_any_trailing_whitespace(text, unordered, tol):
    rules = Compare(unordered=unordered, float_tol=tol)
    assert output_matches(text, text, rules)
    padded = "\n".join(line + " \t" for line in text.split("\n")) + "\n\n"
    assert output_matches(padded, text, rules) == output_matches(text, text, rules)


# -- extraction -------------------------------------------------------------------------------------------
def test_the_last_block_of_the_language_is_the_program():
    text = "First try:\n```python\nprint(1)\n```\nBetter:\n```py\nprint(2)\n```\nUsage:\n```bash\npython main.py\n```\n"
    assert extract_program(text, PY) == "print(2)\n"
    assert extract_program("```\nprint(3)\n```", PY) == "print(3)\n"  # untagged, when nothing is tagged
    assert extract_program("```python\nprint(4)\n```\n```\nplain\n```", PY) == "print(4)\n"
    assert extract_program("```cpp\nint main(){}\n```", PY) is None
    assert extract_program("```python\nprint(5)\n", PY) is None  # cut off: the fence never closes
    assert extract_program("````python\nx = '```'\n```\nprint(6)\n````", PY) == "x = '```'\n```\nprint(6)\n"
    assert extract_program("~~~python\nprint(7)\n~~~", PY) == "print(7)\n"
    assert extract_program("no code at all", PY) is None


def test_a_block_inside_the_reasoning_does_not_count():
    env = environments.make("code")
    task = problem_task("a-plus-b").model_copy(update={"reasoning": True})
    inside_only = Completion(text=f"<think>```python\n{A_PLUS_B}```</think>The answer is above.")
    assert env.verify(task, inside_only).error == "no ```python code block in the answer"
    both = Completion(text=f"<think>```python\nprint(0)\n```</think>\n```python\n{A_PLUS_B}```")
    assert env.verify(task, both).accepted
    assert env.verify(task, answer(A_PLUS_B)).error == "missing <think> block"


fence_free = st.text(alphabet=st.characters(blacklist_characters="`~\r"), max_size=200)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=400))
def test_fuzz_extraction_never_raises(text):
    for info, body in code_blocks(text):
        assert isinstance(info, str) and isinstance(body, str)
    extract_program(text, PY)


@settings(max_examples=200, deadline=None)
@given(before=fence_free, program=fence_free, after=fence_free)
def test_fuzz_a_fenced_program_comes_back_exactly(before, program, after):
    text = f"{before}\n```python\n{program}\n```\n{after}"
    assert extract_program(text, PY) == program + "\n"


# -- the built-in problem set -----------------------------------------------------------------------------
def test_the_builtin_set_has_at_least_50_problems_with_hidden_tests():
    problems = builtin_problems()
    assert len(problems) >= 50
    assert len({p.id for p in problems}) == len(problems)
    for p in problems:
        public = [t for t in p.tests if t.get("public")]
        assert public and len(public) < len(p.tests), p.id  # some hidden tests
        assert p.prompt().count("Example ") == len(public), p.id  # only the public ones are shown
    kinds = {bool(p.fn_name) for p in problems}
    assert kinds == {True, False}  # stdin/stdout and functional
    splits = {p.task("code").split for p in problems}
    assert splits == {"train", "eval"}


def test_every_reference_solution_passes_its_hidden_tests():
    sandbox = get_sandbox()

    def check(problem):
        return problem.id, judge(problem.solution, problem.spec().model_copy(update={"reward": "fraction"}), sandbox)

    with ThreadPoolExecutor(8) as pool:  # many problems in flight keep the sandbox pool full
        results = dict(pool.map(check, builtin_problems()))
    failed = {pid: [v for v in score.details["verdicts"] if v["verdict"] != "pass"]
              for pid, score in results.items() if not score.accepted}
    assert failed == {}


def test_wrong_solutions_fail_their_problems():
    env = environments.make("code")
    wrong = {"a-plus-b": "print(3)", "two-sum": "def two_sum(nums, target):\n    return [0, 1]",
             "n-queens": "def n_queens(n):\n    return n", "permutations": "print(input())",
             "average": "n = int(input())\nprint(sum(map(int, input().split())) // n)"}
    for problem_id, program in wrong.items():
        score = env.verify(problem_task(problem_id), answer(program))
        assert not score.accepted and score.reward == 0.0 and "wrong_answer" in verdicts(score), problem_id


# -- run_tests: verdicts and rewards ----------------------------------------------------------------------
def test_stdio_verdicts():
    assert run_tests(A_PLUS_B, SUM_TESTS).accepted
    wrong = run_tests("print(3)", SUM_TESTS, reward="fraction")
    assert wrong.reward == pytest.approx(1 / 3) and verdicts(wrong) == ["pass", "wrong_answer", "wrong_answer"]
    assert wrong.details["verdicts"][1]["got"] == "3\n" and wrong.details["first_failure"] == 1
    crash = run_tests("raise ValueError('boom')", SUM_TESTS[:1])
    assert verdicts(crash) == ["runtime_error"] and "ValueError: boom" in crash.details["verdicts"][0]["stderr"]
    assert crash.details["verdicts"][0]["exit_code"] == 1
    syntax = run_tests("print(", SUM_TESTS[:1])
    assert verdicts(syntax) == ["runtime_error"] and "SyntaxError" in syntax.details["verdicts"][0]["stderr"]


def test_functional_verdicts():
    tests = [{"fn_name": "add", "args": [1, 2], "expected": 3},
             {"fn_name": "add", "args": [[1], [2]], "expected": [1, 2]}]
    assert run_tests("def add(a, b):\n    print('debugging output goes to stderr')\n    return a + b\n", tests).accepted
    leetcode = "class Solution:\n    def add(self, a: Any, b: Any) -> Any:\n        return a + b\n"  # Any: prelude
    assert run_tests(leetcode, tests).accepted
    missing = run_tests("def plus(a, b):\n    return a + b\n", tests[:1])
    assert verdicts(missing) == ["runtime_error"]
    assert "neither a function 'add'" in missing.details["verdicts"][0]["stderr"]
    tuples = run_tests("def add(a, b):\n    return tuple(a + b)\n", tests[1:])
    assert tuples.accepted  # compared after a JSON round trip
    main_block = "def add(a, b):\n    return a + b\nif __name__ == '__main__':\n    raise SystemExit(3)\n"
    assert run_tests(main_block, tests).accepted


def test_binary_reward_stops_at_the_first_failure():
    tests = [{"input": str(i), "output": "never"} for i in range(12)]
    score = run_tests("print(input())", tests)
    assert score.reward == 0.0 and not score.accepted
    assert verdicts(score).count("skipped") >= 6  # two pool threads: at most a few ran before the cancellation
    fraction = run_tests("print(input())", tests, reward="fraction")
    assert verdicts(fraction) == ["wrong_answer"] * 12


def test_bad_tests_and_settings_name_the_field():
    with pytest.raises(ValueError, match=r"tests\.0\.stdio\.output: Field required"):
        run_tests(A_PLUS_B, [{"input": "1 2"}])
    with pytest.raises(ValueError, match=r"tests\.0\.functional\.fn_name: String should match pattern"):
        run_tests(A_PLUS_B, [{"fn_name": "not a name", "args": [], "expected": 1}])
    with pytest.raises(ValueError, match="tests: List should have at least 1 item"):
        run_tests(A_PLUS_B, [])
    with pytest.raises(ValueError, match="timeout_s: Input should be greater than 0"):
        run_tests(A_PLUS_B, SUM_TESTS, timeout_s=0)
    with pytest.raises(ValueError, match="unknown language 'cobol'"):
        run_tests(A_PLUS_B, SUM_TESTS, language="cobol")
    with pytest.raises(ValueError, match="reward: Input should be 'binary' or 'fraction'"):
        environments.make("code", reward="most")
    with pytest.raises(ValueError, match="memory_mb: Input should be greater than or equal to 64"):
        environments.make("code", memory_mb=1)


@pytest.mark.skipif(shutil.which("g++") is None, reason="no C++ compiler on this machine")
def test_a_compiled_language():
    program = "#include <iostream>\nint main() { long long a, b; std::cin >> a >> b; std::cout << a + b << '\\n'; }\n"
    assert run_tests(program, SUM_TESTS, language="cpp").accepted
    broken = run_tests("int main() { return x; }", SUM_TESTS, language="cpp")
    assert verdicts(broken) == ["compile_error"] * 3 and "not declared" in broken.details["verdicts"][0]["stderr"]


# -- the environments -------------------------------------------------------------------------------------
def test_registered_with_gymnasium_and_played_through_it():
    assert {"code", "code_feedback"} <= {s.name for s in environments.specs()}
    assert environments.spec("code_feedback").cls is CodeFeedbackEnv and environments.spec("code").cls is CodeEnv
    assert CodeFeedbackEnv.multi_turn and not CodeEnv.multi_turn  # rollouts play it through sessions
    env = gymnasium.make("lachesis/Code-v0")
    obs, info = env.reset(seed=0, options={"task": problem_task("a-plus-b").model_dump(mode="json")})
    assert "A plus B" in obs["messages"][0]["content"]
    _, reward, terminated, _, info = env.step({"role": "assistant", "content": answer(A_PLUS_B).text})
    assert reward == 1.0 and terminated and info["score"]["details"]["passed"] == 5


def test_config_reaches_every_task_verifier():
    env = environments.make("code", reward="fraction", timeout_s=2, reasoning=True)
    task = env.tasks().get("eval", 0)
    assert task.reasoning and task.verifier["reward"] == "fraction" and task.verifier["timeout_s"] == 2
    assert task.task_id == environments.make("code").tasks().get("eval", 0).task_id  # settings never change ids
    partly = "a, b = map(int, input().split())\nprint(a + b if a > 0 else 0)"
    score = CodeEnv("code").verify(problem_task("a-plus-b").model_copy(update={"verifier": {
        **problem_task("a-plus-b").verifier, "reward": "fraction"}}), answer(partly))
    assert score.reward == pytest.approx(4 / 5) and not score.accepted  # only -7 -8 comes out wrong


def test_a_malformed_verifier_is_a_score_not_an_exception():
    task = problem_task("a-plus-b").model_copy(update={"verifier": {"tests": "none"}})
    score = environments.make("code").verify(task, answer(A_PLUS_B))
    assert not score.accepted and score.error.startswith("malformed task verifier")


def test_a_sandbox_that_cannot_start_gives_no_verdict(monkeypatch):
    """bubblewrap failing to set up (a namespace limit, say) is not the program's fault: the score asks for a
    retry instead of failing the answer."""
    from environments.code.sandbox import SandboxFailed
    from evals.metrics import error_kind

    env = environments.make("code")

    def refuse(*args, **kwargs):
        raise SandboxFailed("bwrap: setting up uid map: Permission denied")

    monkeypatch.setattr(env.sandbox, "run", refuse)
    score = env.verify(problem_task("a-plus-b"), answer(A_PLUS_B))
    assert score.retry and not score.accepted and score.error.startswith("sandbox failed: bwrap")
    assert error_kind(score.error, score.details) == "sandbox"


def test_the_verify_timeout_counts_from_when_a_worker_takes_the_chunk():
    """Two requests on one verify worker: the second queues behind the first. Its timeout (1.5 times one
    chunk's run) must not count the queueing, or it would time out with nothing wrong."""
    import time

    from env_server.envs import EnvService

    slow = "import time\ntime.sleep(0.3)\n" + A_PLUS_B
    items = [(problem_task("a-plus-b"), answer(slow))]

    async def flow():
        service = EnvService(verify_workers=1)
        try:
            await service.verify("code", items, timeout=120)  # starts the worker process
            start = time.perf_counter()
            [alone] = await service.verify("code", items, timeout=120)
            one_chunk = time.perf_counter() - start
            both = await asyncio.gather(*(service.verify("code", items, timeout=1.5 * one_chunk) for _ in range(2)))
            return alone, [s for scores in both for s in scores]
        finally:
            service.shutdown()

    alone, queued = asyncio.run(flow())
    assert alone.accepted and all(s.accepted and s.error is None for s in queued), [s.error for s in queued]


def test_judging_does_not_hold_up_the_event_loop():
    async def scenario() -> tuple[int, float]:
        env = environments.make("code")
        await env.reset(options={"task": problem_task("a-plus-b")})
        ticks = 0

        async def tick() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        ticker = asyncio.create_task(tick())
        slow = answer(f"import time\ntime.sleep(0.4)\n{A_PLUS_B}").text
        _, reward, *_ = await env.step(assistant(slow))
        ticker.cancel()
        return ticks, reward

    ticks, reward = asyncio.run(scenario())
    assert reward == 1.0 and ticks >= 20  # 5 tests of 0.4 s on two workers: the loop ran all along


def test_feedback_episode_shows_the_failing_test_and_allows_a_fix():
    async def scenario():
        env = environments.make("code_feedback", max_turns=3)
        task = next(t for t in env.tasks().iter("train") if t.task_id == "code_feedback-a-plus-b")
        assert task.verifier["max_turns"] == 3
        await env.reset(options={"task": task})
        obs, reward, terminated, truncated, info = await env.step(assistant(answer("print(3)").text))
        assert (reward, terminated, truncated, info["turns"]) == (0.0, False, False, 1)
        note = obs.messages[-1]
        assert note.role == "user" and "failed test 2 of 5: wrong answer" in note.content
        assert "-5 5" in note.content and "Your output:\n```\n3\n```" in note.content
        obs, reward, terminated, _, info = await env.step(assistant("I forgot the code."))
        assert not terminated and "no ```python code block" in obs.messages[-1].content
        obs, reward, terminated, _, info = await env.step(assistant(answer(A_PLUS_B).text))
        assert (reward, terminated, info["turns"]) == (1.0, True, 3)

        quick = task.model_copy(update={"verifier": {**task.verifier, "timeout_s": 1}})
        await env.reset(options={"task": quick})
        for turn in range(3):
            obs, reward, terminated, _, info = await env.step(assistant(answer("while True: pass").text))
        assert terminated and reward == 0.0 and info["score"]["details"]["verdicts"][0]["verdict"] == "timeout"
        assert "The limit is 1 s per test." in obs.messages[-2].content

    asyncio.run(scenario())


# -- task files ---------------------------------------------------------------------------------------------
def packed(cases: list[dict]) -> str:
    """LiveCodeBench's compressed private tests: base64 of zlib of a pickled JSON string."""
    return base64.b64encode(zlib.compress(pickle.dumps(json.dumps(cases)))).decode()


def write_jsonl(path, rows) -> str:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return str(path)


LCB_ROWS = [
    {"question_title": "Add them", "question_content": "Read two integers and print their sum.", "platform": "atcoder",
     "question_id": "abc000_a", "contest_id": "abc000", "contest_date": "2024-01-01T00:00:00", "starter_code": "",
     "difficulty": "easy", "metadata": "{}",
     "public_test_cases": json.dumps([{"input": "1 2\n", "output": "3\n", "testtype": "stdin"}]),
     "private_test_cases": packed([{"input": "5 7\n", "output": "12\n", "testtype": "stdin"},
                                   {"input": "-1 1\n", "output": "0\n", "testtype": "stdin"}])},
    {"question_title": "Longest run", "question_content": "Return the length of the longest run of equal values.",
     "platform": "leetcode", "question_id": "9001", "contest_id": "weekly-1", "contest_date": "2024-01-02T00:00:00",
     "starter_code": "class Solution:\n    def longestRun(self, nums: List[int], k: int) -> int:\n        ",
     "difficulty": "medium", "metadata": json.dumps({"func_name": "longestRun"}),
     "public_test_cases": json.dumps([{"input": "[1, 1, 2]\n0", "output": "2", "testtype": "functional"}]),
     "private_test_cases": json.dumps([{"input": "[5]\n3", "output": "1", "testtype": "functional"},
                                       {"input": "[2, 2, 2, 1, 1]\n1", "output": "3", "testtype": "functional"}])},
]
LONGEST_RUN = """
class Solution:
    def longestRun(self, nums: List[int], k: int) -> int:
        best = run = 1
        for a, b in zip(nums, nums[1:]):
            run = run + 1 if a == b else 1
            best = max(best, run)
        return best
"""


def test_livecodebench_files(tmp_path):
    path = write_jsonl(tmp_path / "lcb.jsonl", LCB_ROWS)
    env = environments.make("code", problems=path)
    tasks = load_tasks("code", path)
    assert [t.task_id for t in tasks] == ["code-lcb-abc000_a", "code-lcb-9001"]
    add, run = tasks
    assert len(add.verifier["tests"]) == 3 and "1 2" in add.prompt[0].content and "5 7" not in add.prompt[0].content
    assert run.verifier["tests"][2] == {"fn_name": "longestRun", "args": [[2, 2, 2, 1, 1], 1], "expected": 3}
    assert "def longestRun" in run.prompt[0].content
    assert "`longestRun([1, 1, 2], 0)` returns `2`" in run.prompt[0].content
    assert env.verify(add, answer(A_PLUS_B)).accepted and env.verify(run, answer(LONGEST_RUN)).accepted
    assert not env.verify(run, answer("class Solution:\n    def longestRun(self, nums, k):\n        return 2")).accepted
    assert env.tasks().size("train") + env.tasks().size("eval") == 2


def test_a_task_file_cannot_unpickle_objects(tmp_path):
    evil = base64.b64encode(zlib.compress(pickle.dumps(datetime.date(2024, 1, 1)))).decode()
    path = write_jsonl(tmp_path / "lcb.jsonl", [{**LCB_ROWS[0], "private_test_cases": evil}])
    with pytest.raises(ValueError, match=r"row 0 \(livecodebench\): refusing to unpickle datetime.date"):
        load_tasks("code", path)


def test_apps_files(tmp_path):
    rows = [
        {"problem_id": 7, "question": "Add two integers.", "solutions": json.dumps([A_PLUS_B]), "starter_code": "",
         "difficulty": "introductory", "url": "https://example.org/7",
         "input_output": json.dumps({"inputs": ["1 2\n", ["40", "2"]], "outputs": ["3\n", ["42"]]})},
        {"problem_id": 8, "question": "Return the larger value.", "solutions": "[]",
         "starter_code": "def bigger(a, b):\n",
         "difficulty": "interview", "url": "https://example.org/8",
         "input_output": json.dumps({"fn_name": "bigger", "inputs": [[1, 2], [5, -5]], "outputs": [[2], [5]]})},
    ]
    tasks = load_tasks("code", write_jsonl(tmp_path / "apps.jsonl", rows))
    assert [t.task_id for t in tasks] == ["code-apps-7", "code-apps-8"]
    assert tasks[0].verifier["tests"][1] == {"input": "40\n2\n", "output": "42\n"}
    assert tasks[1].verifier["tests"][0] == {"fn_name": "bigger", "args": [1, 2], "expected": 2}
    env = environments.make("code")
    assert env.verify(tasks[0], answer("import sys\nprint(sum(map(int, sys.stdin.read().split())))")).accepted
    assert env.verify(tasks[1], answer("def bigger(a, b):\n    return max(a, b)")).accepted


def test_lachesis_files_and_bad_rows(tmp_path):
    spec = CodeSpec(tests=SUM_TESTS, timeout_s=2).model_dump(mode="json")
    rows = [{"task_id": "sum-1", "split": "eval", "prompt": "Add two numbers.", "verifier": json.dumps(spec)}]
    [task] = load_tasks("code", write_jsonl(tmp_path / "own.jsonl", rows))
    assert (task.task_id, task.split, task.verifier["timeout_s"]) == ("sum-1", "eval", 2.0)
    bad = write_jsonl(tmp_path / "bad.jsonl", [{**rows[0], "verifier": json.dumps({**spec, "reward": "most"})}])
    with pytest.raises(ValueError, match=r"bad.jsonl, row 0 \(lachesis\).*reward"):
        load_tasks("code", bad)
    other = write_jsonl(tmp_path / "other.jsonl", [{"text": "hello"}])
    with pytest.raises(ValueError, match="not a LiveCodeBench, APPS or Lachesis code file"):
        load_tasks("code", other)


# -- through a real server process --------------------------------------------------------------------------
def test_batch_verify_through_the_server(shared_server):
    tasks = [problem_task(pid) for pid in ("a-plus-b", "two-sum", "count-primes")]
    tasks = [t.model_copy(update={"verifier": {**t.verifier, "timeout_s": 1}}) for t in tasks]
    solutions = {p.id: p.solution for p in builtin_problems()}
    port = int(shared_server.url.rsplit(":", 1)[1].strip("/"))
    reach_server = f"import socket\ntry:\n    socket.create_connection(('127.0.0.1', {port}), timeout=1)\n" \
                   f"    print('CONNECTED')\nexcept OSError as exc:\n    print('blocked', exc)"
    items, expected = [], []
    for task in tasks:
        right = answer(solutions[task.task_id.removeprefix("code-")]).text
        for text, ok in ((right, True), (answer("print(0)").text, False), ("no code here", False),
                         (answer("while True: pass").text, False), (answer(reach_server).text, False)):
            items.append((task, Completion(text=text)))
            expected.append(ok)

    async def scenario():
        async with EnvServerClient(shared_server.url) as client:
            return await client.verify("code", items)

    scores = asyncio.run(scenario())
    assert [s["accepted"] for s in scores] == expected
    assert scores[2]["error"] == "no ```python code block in the answer"
    assert scores[3]["details"]["verdicts"][0]["verdict"] == "timeout"
    assert scores[4]["details"]["verdicts"][0]["got"].startswith("blocked")  # the server's own port is out of reach


def test_feedback_session_through_the_server(shared_server):
    task = problem_task("a-plus-b", env="code_feedback").model_copy(update={"verifier": {
        **problem_task("a-plus-b").verifier, "max_turns": 2}})

    async def scenario():
        async with EnvServerClient(shared_server.url) as client:
            session = await client.reset("code_feedback", options={"task": task.model_dump(mode="json")})
            first = await client.step(session["session_id"], assistant(answer("print(3)").text))
            second = await client.step(session["session_id"], assistant(answer(A_PLUS_B).text))
            await client.close_session(session["session_id"])
            return first, second

    first, second = asyncio.run(scenario())
    assert not first["terminated"] and "failed test 2 of 5" in first["observation"]["messages"][-1]["content"]
    assert second["terminated"] and second["reward"] == 1.0
