"""The answer-format environment: every catalog format accepts its own reference rendering and refuses
hand-written near misses; edge cases (trailing whitespace, CRLF, Unicode, nested Markdown, empty and
<think>-only responses); content checking; the catalog as data; validators and verify never raise."""

from __future__ import annotations

import asyncio
import json
import random
import re
import tomllib
from pathlib import Path
from typing import Any, Callable

import orjson
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import environments
from environments import Completion, Message, Score, Task
from environments.answer_format import CATALOG, AnswerFormatEnv, CatalogError, Format, Spec, load_catalog, matches
from environments.answer_format.catalog import CATALOG_PATH
from environments.answer_format.content import GENERATORS
from environments.answer_format.validators import MAX_CHARS, RENDERERS, VALIDATORS

IDS = list(CATALOG)


@pytest.fixture(scope="module")
def env() -> AnswerFormatEnv:
    return environments.make("answer_format")


def sample(fmt: Format, seed: int = 0):
    content = fmt.generate(random.Random(f"{fmt.id}:{seed}"))
    return content, fmt.render(content.answer, content.spec)


def task_for(fmt: Format, content, *, reasoning: bool = False, **verifier: Any) -> Task:
    return Task(task_id="t", env="answer_format", prompt=[Message(role="user", content="?")], reasoning=reasoning,
                verifier={"format": fmt.id, "spec": content.spec.to_json(), "answer": content.answer, **verifier})


def task_of(format_id: str, answer: Any, spec: Spec = Spec(), **verifier: Any) -> Task:
    return Task(task_id="t", env="answer_format", prompt=[Message(role="user", content="?")],
                verifier={"format": format_id, "spec": spec.to_json(), "answer": answer, **verifier})


def verify(env: AnswerFormatEnv, task: Task, text: str) -> Score:
    return env.verify(task, Completion(text=text))


# -- the catalog is data ----------------------------------------------------------------------------------


def test_at_least_150_formats_each_with_a_unique_id():
    entries = tomllib.loads(CATALOG_PATH.read_text(encoding="utf-8"))["format"]
    ids = [e["id"] for e in entries]
    assert len(ids) >= 150
    assert len(set(ids)) == len(ids) == len(CATALOG)


def test_catalog_covers_every_required_kind_of_format():
    families = {f.family for f in CATALOG.values()}
    assert families >= {"latex", "json", "yaml", "toml", "xml", "csv", "markdown", "html", "config", "sexpr",
                        "datetime", "number", "currency", "unit", "choice", "quoted", "template", "marker", "tag",
                        "multi_part", "list", "code"}
    required = ["boxed", "json_record", "json_array", "json_record_required", "yaml_record", "toml_record", "xml_record",
                "csv_table", "tsv_table", "md_table", "md_numbered", "md_bullets_dash", "md_heading_answer",
                "md_blockquote", "python_assignment", "html_paragraph", "ini_record", "kv_colon", "sexpr_alist",
                "iso_date", "iso_datetime_utc", "iso_duration", "fraction_slash", "scientific_e", "decimal_2dp",
                "percentage", "usd", "unit_symbol", "mc_letter", "true_false", "yes_no", "double_quoted",
                "template_result_brackets", "answer_colon", "gsm8k_hashes", "parts_letter_lines", "answer_tag"]
    assert not [r for r in required if r not in CATALOG]
    assert {f.params.get("fence") for f in CATALOG.values()} >= {"json", "yaml", "toml", "xml", "csv", "python"}


def test_every_validator_and_generator_is_used_and_every_validator_renders():
    assert set(VALIDATORS) == set(RENDERERS)
    assert {f.validator for f in CATALOG.values()} == set(VALIDATORS)
    assert {ref.kind for f in CATALOG.values() for ref in f.content} == set(GENERATORS)


def test_catalog_summary_lists_every_format():
    text = AnswerFormatEnv.catalog_summary()
    assert text.startswith(f"{len(CATALOG)} answer formats in 22 families")
    listed = {line.split()[0] for line in text.splitlines() if line.startswith("  ")}
    assert listed == set(CATALOG)


def _catalog_with(tmp_path: Path, **changes: Any) -> Path:
    entry = {"id": "x_boxed", "family": "latex", "validator": "latex_command", "params": {"command": "boxed"},
             "content": ["integer"], "instruction": "Box it."}
    entry.update(changes)
    entry = {k: v for k, v in entry.items() if v is not None}
    lines = ["[[format]]"] + [f"{k} = {json.dumps(v)}" for k, v in entry.items() if k != "params"]
    if "params" in entry:
        lines += ["[format.params]"] + [f"{k} = {json.dumps(v)}" for k, v in entry["params"].items()]
    path = tmp_path / "catalog.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize(("changes", "message"), [
    ({"validator": "nope"}, "unknown validator"),
    ({"params": {"command": "boxed", "colour": "red"}}, "bad validator params"),
    ({"params": {}}, "bad validator params"),  # `command` is required
    ({"content": ["nope"]}, "unknown content"),
    ({"content": []}, "no content"),
    ({"content": ["person"]}, "cannot carry 'person' answers"),
    ({"instruction": "Use the keys {keys}."}, "does not give"),
    ({"id": "Bad-Id"}, "lower_snake_case"),
    ({"instruction": None}, "missing"),
    ({"colour": "red"}, "unknown fields"),
])
def test_broken_catalog_entries_are_refused(tmp_path, changes, message):
    with pytest.raises(CatalogError, match=message):
        load_catalog(_catalog_with(tmp_path, **changes))


def test_duplicate_ids_are_refused(tmp_path):
    path = _catalog_with(tmp_path)
    path.write_text(path.read_text() * 2)
    with pytest.raises(CatalogError, match="duplicate format id 'x_boxed'"):
        load_catalog(path)
    assert list(load_catalog(_catalog_with(tmp_path))) == ["x_boxed"]


# -- every format: its own reference rendering is accepted ----------------------------------------------------


def _check_wrong_answer_is_well_formed_but_rejected(env: AnswerFormatEnv, fmt: Format) -> None:
    content, _ = sample(fmt)
    for seed in range(1, 500):
        other, text = sample(fmt, seed)
        if other.spec == content.spec and not matches(content.answer, other.answer):
            break
    else:
        pytest.fail("no different answer with the same spec")
    score = verify(env, task_for(fmt, content), text)
    assert score.reward == 0.0 and not score.accepted and score.error is None
    assert score.details["reason"] == "the answer is well formatted but wrong"
    assert verify(env, task_for(fmt, content, format_reward=0.25), text).reward == 0.25
    assert verify(env, task_for(fmt, content, check_content=False), text).accepted


@pytest.mark.parametrize("format_id", IDS)
def test_reference_rendering_is_accepted_and_a_wrong_answer_is_not(env, format_id):
    fmt = CATALOG[format_id]
    for seed in range(4):
        content, text = sample(fmt, seed)
        check = fmt.check(text, content.spec)
        assert check.ok, (text, check.error)
        assert matches(content.answer, check.answer), (text, check.answer, content.answer)
        json.dumps(check.answer)  # a JSON value
        task = task_for(fmt, content)
        variants = [text, f"\n  {text}  \n\t\n", text.replace("\n", "\r\n"), f"<think>\n\n</think>\n\n{text}"]
        for variant in variants:
            score = verify(env, task, variant)
            assert score.accepted and score.reward == 1.0 and score.error is None, (variant, score)
        assert score.details == {"format": format_id, "extracted": check.answer, "expected": content.answer}
        thinking = task_for(fmt, content, reasoning=True)
        assert verify(env, thinking, f"<think>Let me work it out.</think>\n\n{text}").accepted
        assert verify(env, thinking, text).error == "missing <think> block"
    _check_wrong_answer_is_well_formed_but_rejected(env, fmt)


# -- every format: hand-written near misses are refused ---------------------------------------------------------
# Mutations of a format's own reference rendering, by validator kind. Each returns the broken response, or None
# where it does not apply to a format; every format must have at least one that applies.

Mutation = Callable[[str, Format, Any], "str | None"]


def _fenced(fmt: Format) -> bool:
    return bool(fmt.params.get("fence"))


def _drop_last(text: str, chars: str) -> str | None:
    i = max(text.rfind(c) for c in chars)
    return text[:i] + text[i + 1:] if i >= 0 else None


def _last_line(fn: Callable[[str], str]) -> Callable[[str, Format, Any], str]:
    def mutate(text: str, fmt: Format, content: Any) -> str:
        lines = text.split("\n")
        return "\n".join([*lines[:-1], fn(lines[-1])])
    return mutate


def _first_column(text: str, content: Any) -> str | None:
    names = content.spec.columns or ()
    return text.replace(names[0], names[0].upper() + "X", 1) if names else None


NEAR_MISSES: dict[str, list[Mutation]] = {
    "latex_command": [
        lambda t, f, c: _drop_last(t, "}"),  # never closed
        lambda t, f, c: f"{t} {t}",  # twice (for parts: twice as many)
        lambda t, f, c: t.replace("\\" + f.params["command"], "\\" + f.params["command"] + "x"),
        lambda t, f, c: t.replace("$", "") if f.params.get("math") == "inline" else None,
        lambda t, f, c: t.replace("\\[", "").replace("\\]", "") if f.params.get("math") == "display" else None,
        lambda t, f, c: t.replace("x = ", "y = ") if f.params.get("lhs") else None,
    ],
    "latex_math": [lambda t, f, c: t[:-1], lambda t, f, c: f"So {t}", lambda t, f, c: f"{t} {t}"],
    "latex_list": [lambda t, f, c: t.replace("\\end{", "\\finish{"), lambda t, f, c: t.replace("}\n", "}\nItems:\n", 1),
                   lambda t, f, c: f"Here:\n{t}", lambda t, f, c: t.replace("\\item", "\\itemize", 1)],
    "latex_matrix": [lambda t, f, c: t.replace(" & ", " \\\\ ", 1) if " & " in t else None,
                     lambda t, f, c: t.replace("\\end{", "\\finish{")],
    "latex_tabular": [lambda t, f, c: re.sub(r"\{l(l+)\}", r"{\1}", t, count=1), lambda t, f, c: _first_column(t, c),
                      lambda t, f, c: t.replace(" & ", " ", 1)],
    "json": [
        lambda t, f, c: t.replace('"', "'") if '"' in t else None,
        lambda t, f, c: _drop_last(t, "}]") if not f.params.get("literal") else None,
        lambda t, f, c: None if _fenced(f) else f"Here it is: {t}",
        lambda t, f, c: t.replace("```json", "```") if _fenced(f) else None,
        lambda t, f, c: "NaN" if f.params.get("literal") == "number" else None,
        lambda t, f, c: t.replace('"', "", 2) if f.params.get("literal") == "string" else None,
    ],
    "jsonl": [lambda t, f, c: t.replace("\n", "\n\n", 1), lambda t, f, c: "[" + t.replace("\n", ", ") + "]"],
    "yaml": [
        lambda t, f, c: t.replace(": ", "= ") if ": " in t else None,
        lambda t, f, c: None if _fenced(f) else f"Here it is:\n{t}",
        lambda t, f, c: t.replace("]", "") if f.params.get("flow") else None,
        lambda t, f, c: t.replace("---\n", "") if f.params.get("explicit_start") else None,
        lambda t, f, c: t.replace("\n- ", "\n-", 1) if "\n- " in t and ": " not in t else None,
    ],
    "toml": [lambda t, f, c: t.replace(" = ", ": ", 1),
             lambda t, f, c: None if _fenced(f) else f"{t}\n{t.splitlines()[0]}"],
    "xml": [
        lambda t, f, c: t.replace(f"<{f.params['root']}", f"<{f.params['root']}x").replace(
            f"</{f.params['root']}>", f"</{f.params['root']}x>"),
        lambda t, f, c: _drop_last(t, ">"),
        lambda t, f, c: t.replace(f"<{f.params['root']}", f"<!DOCTYPE x><{f.params['root']}", 1),
        lambda t, f, c: t.replace('<?xml version="1.0" encoding="UTF-8"?>\n', "") if f.params.get("declaration") else None,
    ],
    "csv": [
        lambda t, f, c: t.replace(f.params["pair_header"][0], "key", 1) if f.params.get("pair_header") else _first_column(t, c),
        lambda t, f, c: t.replace("\n", "\n\n", 2).replace("\n\n", "\n", 1 if _fenced(f) else 0),  # a blank line
        lambda t, f, c: t.replace("\n", f"{f.params.get('delimiter', ',')}extra\n", 2) if not _fenced(f) else None,
        lambda t, f, c: t.replace(f.params.get("delimiter", ","), " " + f.params.get("delimiter", ","), 1),
    ],
    "md_table": [lambda t, f, c: "\n".join(t.split("\n")[:1] + t.split("\n")[2:]),
                 lambda t, f, c: t.replace(" |\n", "\n", 1), lambda t, f, c: t + " x |",
                 lambda t, f, c: f"Here is the table:\n{t}"],
    "labeled_lines": [_last_line(lambda line: "  " + line), lambda t, f, c: f"Here:\n{t}",
                      _last_line(lambda line: line.split(" ", 1)[1] if line.count(" ") else "")],
    "kv_lines": [lambda t, f, c: t.replace(f.params["sep"], " " + f.params["sep"].strip() + " ", 1),
                 lambda t, f, c: t.rsplit("\n", 1)[0], lambda t, f, c: t.replace("\n", "\n\n", 1)],
    "query_string": [lambda t, f, c: t.rsplit("&", 1)[0], lambda t, f, c: f"?{t}", lambda t, f, c: t.replace("&", "& ", 1)],
    "logfmt": [lambda t, f, c: re.sub(r" (?=\w+=)", "  ", t, count=1), lambda t, f, c: t.rsplit(" ", 1)[0],
               lambda t, f, c: t.replace("=", ": ", 1)],
    "ini": [lambda t, f, c: t.split("\n", 1)[1], lambda t, f, c: t.replace("[", "[x", 1),
            lambda t, f, c: f"{t}\n{t.splitlines()[-1]}"],
    "sexpr": [lambda t, f, c: _drop_last(t, ")"), lambda t, f, c: t.replace(f"({f.params['head']} ", "(") if f.params.get("head") else None,
              lambda t, f, c: t[1:] if f.params.get("quote") else None,
              lambda t, f, c: t.replace(" :", " ") if f.params.get("style") == "plist" else None,
              lambda t, f, c: f"{t} {t}"],
    "html_element": [lambda t, f, c: t.replace(f"</{f.params['tag']}>", ""), lambda t, f, c: t + t,
                     lambda t, f, c: t.replace('"answer"', '"answers"') if f.params.get("attrs") else None,
                     lambda t, f, c: f"<!-- answer -->{t}"],
    "html_list": [lambda t, f, c: t.replace("<li>", "<p>", 1).replace("</li>", "</p>", 1),
                  lambda t, f, c: t.replace("</li>", "<ul><li>x</li></ul></li>", 1),
                  lambda t, f, c: t.replace("</li>", "", 1)],
    "html_table": [lambda t, f, c: t.replace("<th>", "<td>").replace("</th>", "</td>"),
                   lambda t, f, c: re.sub(r"<td>[^<]*</td></tr>\n</table>", "</tr>\n</table>", t),
                   lambda t, f, c: _first_column(t, c)],
    "html_dl": [lambda t, f, c: t.replace("<dt>", "<dd>", 1).replace("</dt>", "</dd>", 1),
                lambda t, f, c: re.sub(r"<dd>[^<]*</dd>\n</dl>", "\n</dl>", t)],
    "md_heading": [lambda t, f, c: t.replace("#", "", 1), lambda t, f, c: t.split("\n")[0],
                   lambda t, f, c: f"{t}\n\n{t}"],
    "md_sections": [lambda t, f, c: t.rsplit("\n\n###", 1)[0], lambda t, f, c: t.replace("Part 1", "Part 0")],
    "md_blockquote": [lambda t, f, c: t.replace("> ", "> > "), lambda t, f, c: f"{t}\n\nso\n\n{t}",
                      lambda t, f, c: t.replace("> ", "")],
    "md_inline": [lambda t, f, c: f"{f.params['delim'][0]}{t}{f.params['delim'][0]}",
                  lambda t, f, c: t.replace(f.params["delim"], f.params["delim"] + " ", 1),
                  lambda t, f, c: t[:-len(f.params["delim"])]],
    "marker": [lambda t, f, c: f"{f.params['marker']}x\n{t}", lambda t, f, c: f"{t}\nThat is all.",
               lambda t, f, c: t.replace(f.params["marker"], ""),
               lambda t, f, c: t[:-len(f.params["suffix"])] if f.params.get("suffix") else None],
    "wrapped": [lambda t, f, c: t.replace(f.params["right"], "") if f.params["left"] != f.params["right"] else t[:-len(f.params["right"])],
                lambda t, f, c: f"{t} {t}", lambda t, f, c: f"Answer: {t}" if f.params.get("only") else None],
    "tagged_sections": [lambda t, f, c: "\n".join(reversed(t.split("\n"))), lambda t, f, c: f"Sure!\n{t}",
                        lambda t, f, c: t.split("\n")[-1]],
    "regex": [lambda t, f, c: f"{t}\nDone.", lambda t, f, c: f"x{t}"],
    "delimited": [
        lambda t, f, c: (t[:-1] + f.params["sep"] + t[-1]) if f.params.get("brackets") else t + f.params["sep"].rstrip(),
        lambda t, f, c: t.replace(f.params["sep"], "\n") if f.params["sep"] != "\n" else t.replace("\n", "\n\n", 1),
        lambda t, f, c: t[1:-1] if f.params.get("brackets") else None,
        lambda t, f, c: t.replace(" and ", " ") if f.params.get("conjunction") else None,
    ],
    "enum": [lambda t, f, c: f"{t}.", lambda t, f, c: f"{t} {t}",
             lambda t, f, c: t.swapcase() if t.swapcase() != t else None],
    "fenced_text": [lambda t, f, c: t.replace("```text", "```python"), lambda t, f, c: _drop_last(t, "`")],
    "python": [lambda t, f, c: t.replace("[", "(", 1).replace("]", "", 1) if "[" in t else None,
               lambda t, f, c: t.replace(f"{f.params['name']} =", "value =") if f.params.get("name") else None,
               lambda t, f, c: t.replace("```python", "```") if _fenced(f) else f"Here: {t}"],
    "javascript": [lambda t, f, c: t.replace(";\n```", "\n```"), lambda t, f, c: t.replace("const ", "constant ")],
    "number": [lambda t, f, c: f"The answer is {t}", lambda t, f, c: f"{t}.", lambda t, f, c: f"{t} {t}"],
    "money": [lambda t, f, c: t.replace(f.params["symbol"], ""), lambda t, f, c: f"Total: {t}",
              lambda t, f, c: t + "0"],
    "quantity": [lambda t, f, c: t.replace(" ", "", 1) if f.params["style"] != "latex" else t.replace("\\,", " "),
                 lambda t, f, c: f"about {t}", lambda t, f, c: re.sub(r"[a-zA-Z]+(?=\W*$)", "parsecs", t)],
    "date": [lambda t, f, c: f"It is {t}", lambda t, f, c: f"{t}."],
    "time": [lambda t, f, c: f"At {t}", lambda t, f, c: t + ":00:00"],
    "datetime": [lambda t, f, c: f"{t} UTC", lambda t, f, c: t.replace("T", " ") if "T" in t else f"{t}.5"],
    "duration": [lambda t, f, c: f"about {t}", lambda t, f, c: t.replace("P", "") if t.startswith("P") else f"{t}:"],
}


def test_every_kind_has_near_misses():
    assert set(NEAR_MISSES) == set(VALIDATORS)


def _check_empty_and_think_only_responses_are_refused(env: AnswerFormatEnv, fmt: Format) -> None:
    content, good = sample(fmt)
    direct, thinking = task_for(fmt, content), task_for(fmt, content, reasoning=True)
    for text in ("", "   \n\t "):
        assert verify(env, direct, text).error == "empty answer"
        assert verify(env, thinking, text).error == "missing <think> block"
    for task in (direct, thinking):
        assert "exactly one <think>" in verify(env, task, "<think>").error
        assert "exactly one <think>" in verify(env, task, f"<think>{good}").error
    assert verify(env, thinking, "<think>I am thinking.</think>").error == "no answer after the </think> block"
    assert verify(env, direct, "<think>I am thinking.</think>").error == "reasoning block in direct (non-reasoning) mode"
    assert verify(env, thinking, "<think></think>" + good).error == "empty <think> block"
    assert "exactly one" in verify(env, thinking, f"<think>a</think><think>b</think>{good}").error


@pytest.mark.parametrize("format_id", IDS)
def test_near_misses_and_empty_responses_are_refused(env, format_id):
    fmt = CATALOG[format_id]
    applied = 0
    for seed in range(2):
        content, good = sample(fmt, seed)
        for mutate in NEAR_MISSES[fmt.validator]:
            bad = mutate(good, fmt, content)
            if bad is None or bad == good:
                continue
            applied += 1
            check = fmt.check(bad, content.spec)
            assert not check.ok, (good, bad, check.answer)
            score = verify(env, task_for(fmt, content), bad)
            assert score.reward == 0.0 and score.error == check.error == score.details["reason"]
    assert applied >= 2  # at least one near miss for each of two answers
    _check_empty_and_think_only_responses_are_refused(env, fmt)


# -- hand-written cases, by kind ---------------------------------------------------------------------------------

REC = Spec("record", keys=("name", "age"))
TAB = Spec("table", columns=("n", "square"))
LST = Spec("list")


def parts(n: int) -> Spec:
    return Spec("list", count=n)


# (format id, spec, response, the extracted answer or None when the response must be refused)
CASES: list[tuple[str, Spec, str, Any]] = [
    # LaTeX
    ("boxed", Spec(), "Adding them: \\boxed{\\frac{5}{6}}.", "5/6"),
    ("boxed", Spec(), "\\boxed{\\text{Paris}}", "Paris"),
    ("boxed", Spec(), "\\boxed {42}", "42"),
    ("boxed", Spec(), "\\boxed{1\\,234}", "1234"),
    ("boxed", Spec(), "\\boxed{}", None),
    ("boxed", Spec(), "\\boxed{41} then \\boxed{42}", None),
    ("boxed", Spec(), "\\boxed{\\boxed{42}}", None),
    ("boxed", Spec(), "\\boxedanswer{42}", None),
    ("boxed", Spec(), "\\fbox{42}", None),
    ("boxed_assignment", Spec(), "\\boxed{x=-3}", "-3"),
    ("boxed_assignment", Spec(), "\\boxed{-3}", None),
    ("boxed_inline_math", Spec(), "so $ \\boxed{7} $", "7"),
    ("boxed_inline_math", Spec(), "so \\boxed{7}", None),
    ("boxed_parts", parts(2), "\\boxed{3} and \\boxed{Lima}", ["3", "Lima"]),
    ("boxed_parts", parts(2), "\\boxed{3}", None),
    ("latex_inline_math", Spec(), "$\\dfrac{1}{2}$", "1/2"),
    ("latex_inline_math", Spec(), "$1$ and $2$", None),
    ("latex_double_dollar", Spec(), "$42$", None),
    ("latex_equation_env", Spec(), "\\begin{equation} x = 4 \\end{equation}", "x = 4"),
    ("latex_itemize", LST, "\\begin{itemize}\n\\item a\n\\item \\textbf{b}\n\\end{itemize}", ["a", "b"]),
    ("latex_itemize", LST, "\\begin{itemize}\n\\item a\n\\item\n\\end{itemize}", None),
    ("latex_itemize", LST, "\\begin{itemize}\n\\item a\\begin{itemize}\\item b\\end{itemize}\n\\end{itemize}", None),
    ("latex_pmatrix", LST, "$\\begin{pmatrix} 1 & 2 & 3 \\end{pmatrix}$", ["1", "2", "3"]),
    ("latex_pmatrix", LST, "\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}", None),
    ("latex_tabular", TAB, "\\begin{tabular}{|c|c|}\n\\toprule\nn & square \\\\\n\\midrule\n2 & 4 \\\\\n\\bottomrule\n"
                           "\\end{tabular}", [{"n": "2", "square": "4"}]),
    ("latex_tabular", TAB, "\\begin{tabular}{cc}\nn & square \\\\\n2 & 4 & 8 \\\\\n\\end{tabular}", None),
    # JSON
    ("json_answer", Spec(), '{"answer": 42}', 42),
    ("json_answer", Spec(), '{"answer": "42", "note": "x"}', None),
    ("json_answer", Spec(), '{"answer": 1, "answer": 2}', None),
    ("json_answer", Spec(), '{"answer": NaN}', None),
    ("json_answer", Spec(), '{"answer": Infinity}', None),
    ("json_answer", Spec(), '{"answer": 1e999}', None),
    ("json_answer", Spec(), '{"answer": null}', None),
    ("json_answer", Spec(), '{"answer": ""}', None),
    ("json_answer", Spec(), '{"answer": [1]}', None),
    ("json_answer", Spec(), '{"answer": "\\ud800"}', None),
    ("json_answer", Spec(), "```json\n{\"answer\": 42}\n```", None),
    ("json_answer", Spec(), '{"answer": 123456789012345678901234567890}', "123456789012345678901234567890"),
    ("json_nested", Spec(), '{"result": {"value": "Oslo"}}', "Oslo"),
    ("json_nested", Spec(), '{"result": "Oslo"}', None),
    ("json_reasoning_answer", Spec(), '{"reasoning": "7 × 6", "answer": 42}', 42),
    ("json_reasoning_answer", Spec(), '{"reasoning": "", "answer": 42}', None),
    ("json_reasoning_answer", Spec(), '{"answer": 42}', None),
    ("json_confidence", Spec(), '{"answer": 42, "confidence": 1}', 42),
    ("json_confidence", Spec(), '{"answer": 42, "confidence": 1.5}', None),
    ("json_confidence", Spec(), '{"answer": 42, "confidence": true}', None),
    ("json_fenced_answer", Spec(), 'Sure.\n```json\n{"answer": 42}\n```\nDone.', 42),
    ("json_fenced_answer", Spec(), '```json\n{"answer": 42}\n```\n```json\n{"answer": 43}\n```', None),
    ("json_fenced_answer", Spec(), '```JSON\n{"answer": 42}\n```', None),
    ("json_fenced_answer", Spec(), '```json {"answer": 42}```', None),
    ("json_record", REC, '{"age": 30, "name": "Ana"}', {"name": "Ana", "age": 30}),
    ("json_record", REC, '{"name": "Ana"}', None),
    ("json_record", REC, '{"name": "Ana", "age": 30, "city": "Lima"}', None),
    ("json_record", REC, '{"name": "Ana", "age": {"years": 30}}', None),
    ("json_record_required", REC, '{"name": "Ana", "age": 30, "city": "Lima"}', {"name": "Ana", "age": 30}),
    ("json_record_single_line", REC, '{"name": "Ana",\n "age": 30}', None),
    ("json_key_value_pairs", REC, '[{"key": "name", "value": "Ana"}, {"key": "age", "value": 30}]', {"name": "Ana", "age": 30}),
    ("json_key_value_pairs", REC, '[{"key": "name", "value": "Ana"}, {"key": "name", "value": "Bo"}]', None),
    ("json_array", LST, '["a", "b"]', ["a", "b"]),
    ("json_array", LST, "[]", None),
    ("json_array", LST, '["a", ["b"]]', None),
    ("json_table", TAB, '[{"n": 2, "square": 4}]', [{"n": 2, "square": 4}]),
    ("json_table", TAB, '[{"n": 2, "square": 4}, {"n": 3}]', None),
    ("jsonl", TAB, '{"n": 2, "square": 4}\n{"n": 3, "square": 9}', [{"n": 2, "square": 4}, {"n": 3, "square": 9}]),
    ("jsonl", TAB, '{"n": 2, "square": 4}\n\n{"n": 3, "square": 9}', None),
    ("jsonl", TAB, '[{"n": 2, "square": 4}]', None),
    ("json_string", Spec(), '"Paris"', "Paris"),
    ("json_string", Spec(), "42", None),
    ("json_string", Spec(), "Paris", None),
    ("json_number", Spec(), "-3.5", -3.5),
    ("json_number", Spec(), '"3.5"', None),
    ("json_number", Spec(), "true", None),
    # YAML
    ("yaml_answer", Spec(), "answer: Buenos Aires", "Buenos Aires"),
    ("yaml_answer", Spec(), "answer: 2024-03-06", "2024-03-06"),  # a YAML date, as ISO text
    ("yaml_answer", Spec(), "answer: 1\n---\nanswer: 2", None),
    ("yaml_answer", Spec(), "answer: !!binary aGVsbG8=", None),
    ("yaml_answer", Spec(), "answer: !!python/object:os.system ls", None),
    ("yaml_answer", Spec(), "answer: .nan", None),
    ("yaml_record", REC, "name: Zoë\nage: 30", {"name": "Zoë", "age": 30}),
    ("yaml_record", REC, "name: Ana\nage: 30\nname: Bo", None),  # PyYAML would keep the last
    ("yaml_record", REC, "name: Ana\nage: 30\n'name': Bo", None),
    ("yaml_record", REC, "base: &b {name: Ana, age: 3}\nname: *b\nage: 3", None),
    ("yaml_list", LST, "- a\n- b", ["a", "b"]),
    ("yaml_list", LST, "- a\n- [b]", None),
    ("yaml_list", LST, "- a\n  - b", ["a - b"]),  # a plain scalar continued on the next line
    ("yaml_flow_list", LST, "- a\n- b", None),
    ("yaml_list", LST, "[a, b]", None),
    ("yaml_document_start", REC, "---\nname: Ana\nage: 3", {"name": "Ana", "age": 3}),
    ("yaml_document_start", REC, "name: Ana\nage: 3", None),
    # TOML
    ("toml_answer", Spec(), 'answer = "Paris"', "Paris"),
    ("toml_answer", Spec(), "answer = 2024-03-06", "2024-03-06"),
    ("toml_answer", Spec(), "answer = Paris", None),
    ("toml_answer", Spec(), "answer = nan", None),
    ("toml_section", REC, '[result]\nname = "Ana"\nage = 3', {"name": "Ana", "age": 3}),
    ("toml_section", REC, 'name = "Ana"\nage = 3', None),
    ("toml_array_of_tables", TAB, "[[row]]\nn = 2\nsquare = 4\n\n[[row]]\nn = 3\nsquare = 9",
     [{"n": 2, "square": 4}, {"n": 3, "square": 9}]),
    # XML
    ("xml_answer", Spec(), "<answer>São Paulo</answer>", "São Paulo"),
    ("xml_answer", Spec(), "<answer>R&amp;D</answer>", "R&D"),
    ("xml_answer", Spec(), "<answer>42</answer><answer>43</answer>", None),
    ("xml_answer", Spec(), "<answer><b>42</b></answer>", None),
    ("xml_answer", Spec(), '<answer unit="m">42</answer>', None),
    ("xml_answer", Spec(), "<Answer>42</Answer>", None),
    ("xml_answer", Spec(), '<!DOCTYPE a [<!ENTITY b "c">]><answer>&b;</answer>', None),
    ("xml_answer", Spec(), "<answer>&undefined;</answer>", None),
    ("xml_declaration", Spec(), '<?xml version="1.0" encoding="UTF-8"?>\n<answer>42</answer>', "42"),
    ("xml_declaration", Spec(), "<answer>42</answer>", None),
    ("xml_record", REC, "<record>\n<age>3</age>\n<name>Ana</name>\n</record>", {"name": "Ana", "age": "3"}),
    ("xml_record", REC, "<record>x<name>Ana</name><age>3</age></record>", None),
    ("xml_record", REC, "<record><name>Ana</name><name>Bo</name><age>3</age></record>", None),
    ("xml_attributes", REC, "<record name='Ana' age='3'/>", {"name": "Ana", "age": "3"}),
    ("xml_attributes", REC, "<record name='Ana' age='3'>x</record>", None),
    ("xml_list", LST, "<items><item>a</item><item>b</item></items>", ["a", "b"]),
    ("xml_list", LST, "<items><item>a</item><entry>b</entry></items>", None),
    # CSV / TSV
    ("csv_table", TAB, 'n,square\n2,4\n"3",9\n', [{"n": "2", "square": "4"}, {"n": "3", "square": "9"}]),
    ("csv_table", TAB, "n, square\n2, 4", None),  # a space is part of the field
    ("csv_table", TAB, "n,square\n2, 4", None),
    ("csv_table", TAB, 'n,square\n2,"4', None),
    ("csv_table", TAB, "n,square", None),
    ("csv_table", TAB, "square,n\n4,2", None),
    ("tsv_table", TAB, "n\tsquare\n2\t4", [{"n": "2", "square": "4"}]),
    ("tsv_table", TAB, "n,square\n2,4", None),
    ("csv_record", REC, 'field,value\nname,"Okafor, Ana"\nage,3', {"name": "Okafor, Ana", "age": "3"}),
    ("csv_record", REC, "field,value\nname,Ana\nname,Bo\nage,3", None),
    ("csv_no_header", TAB, "2,4\n3,9", [{"n": "2", "square": "4"}, {"n": "3", "square": "9"}]),
    # Markdown
    ("md_table", TAB, "|n|square|\n|:-:|--:|\n|2|4|", [{"n": "2", "square": "4"}]),
    ("md_table", TAB, "| n | square |\n| --- | --- |\n| a \\| b | 4 |", [{"n": "a | b", "square": "4"}]),
    ("md_table", TAB, "| n | square |\n| --- |\n| 2 | 4 |", None),
    ("md_table", TAB, "| n | square |\n| --- | --- |\n| 2 | 4 |\n\n| 3 | 9 |", None),
    ("md_table_record", REC, "| Field | Value |\n| --- | --- |\n| name | Ana |\n| age | 3 |", {"name": "Ana", "age": "3"}),
    ("md_bullets_dash", LST, "- a\n\n- b", ["a", "b"]),
    ("md_bullets_dash", LST, "- a\n  - nested\n- b", None),
    ("md_bullets_dash", LST, "* a\n* b", None),
    ("md_bullets_dash", LST, "- a\n* b", None),
    ("md_bullets_dash", LST, "-a", None),
    ("md_bullets_dash", LST, "- **a**\n- b", ["**a**", "b"]),  # inline markup is kept: the content check decides
    ("md_numbered", LST, "1. a\n2. b", ["a", "b"]),
    ("md_numbered", LST, "1. a\n3. b", None),
    ("md_numbered", LST, "1. a\n1. b", None),
    ("md_task_list", LST, "- [x] a\n- [ ] b", None),
    ("md_heading_answer", Spec(), "Working…\n\n## Answer\n\n42\n", "42"),
    ("md_heading_answer", Spec(), "## Answer\n\n42\n\n### Why\n\nBecause.", "42"),
    ("md_heading_answer", Spec(), "## Answer:\n\n42", None),
    ("md_heading_answer", Spec(), "### Answer\n\n42", None),
    ("md_heading_answer", Spec(), "## Answer\n\n### 42", None),
    ("md_sections", parts(2), "### Part 1\n\n3\n\n### Part 2\n\nLima", ["3", "Lima"]),
    ("md_sections", parts(2), "### Part 2\n\nLima\n\n### Part 1\n\n3", None),
    ("md_blockquote", Spec(), "My answer:\n\n> 42\n\nThanks.", "42"),
    ("md_blockquote", Spec(), "> 4\n> 2", "4 2"),
    ("md_blockquote", Spec(), "> > 42", None),
    ("md_bold", Spec(), "It is **42**.", "42"),
    ("md_bold", Spec(), "It is ***42***.", None),
    ("md_bold", Spec(), "**It** is **42**.", None),
    ("md_bold", Spec(), "It is ** 42**.", None),
    ("md_italic", Spec(), "It is *42*.", "42"),
    ("md_italic", Spec(), "It is **42**.", None),
    ("md_inline_code", Spec(), "Use `42`.", "42"),
    ("md_inline_code", Spec(), "```\n42\n```", None),
    ("md_text_fence", Spec(), "```text\nParis\n```", "Paris"),
    ("md_text_fence", Spec(), "```text\n\n```", None),
    # HTML
    ("html_paragraph", Spec(), "<div><p>The <em>answer</em></p></div>", "The answer"),
    ("html_paragraph", Spec(), "<P>42</P>", "42"),
    ("html_paragraph", Spec(), "<p>4 &lt; 5</p>", "4 < 5"),
    ("html_paragraph", Spec(), "<p>42<br>rest</p>", "42 rest"),
    ("html_paragraph", Spec(), "<p>42", None),
    ("html_paragraph", Spec(), "<p><b>42</p></b>", None),
    ("html_paragraph", Spec(), "<p>42</p></div>", None),
    ("html_paragraph", Spec(), "<p></p>", None),
    ("html_span_answer", Spec(), '<span class="big answer">42</span>', "42"),
    ("html_span_answer", Spec(), "<span>42</span>", None),
    ("html_ul", LST, "<ul>\n<li>a</li>\n<li>b</li>\n</ul>", ["a", "b"]),
    ("html_ul", LST, "<ol><li>a</li></ol>", None),
    ("html_ul", LST, "<ul>x<li>a</li></ul>", None),
    ("html_table", TAB, "<table><thead><tr><th>n</th><th>square</th></tr></thead><tbody><tr><td>2</td><td>4</td>"
                        "</tr></tbody></table>", [{"n": "2", "square": "4"}]),
    ("html_table", TAB, "<table><tr><td>n</td><td>square</td></tr><tr><td>2</td><td>4</td></tr></table>", None),
    ("html_table", TAB, "<table><tr><th>n</th><th>square</th></tr><tr><td>2</td></tr></table>", None),
    ("html_table", TAB, "<table><tr><th>n</th><th>square</th></tr></table>", None),
    ("html_dl", REC, "<dl><dt>name</dt><dd>Ana</dd><dt>age</dt><dd>3</dd></dl>", {"name": "Ana", "age": "3"}),
    ("html_dl", REC, "<dl><dt>name</dt><dt>age</dt><dd>3</dd></dl>", None),
    # configuration
    ("ini_record", REC, "[record]\nname = Ana\nage: 3", {"name": "Ana", "age": "3"}),
    ("ini_record", REC, "name = Ana\n[record]\nage = 3", None),
    ("ini_record", REC, "[record]\nname = Ana\nage = 3\n[other]\nx = 1", None),
    ("ini_record", REC, "[DEFAULT]\nname = Ana\n[record]\nage = 3", None),
    ("ini_record", REC, "[record]\nname = Ana\nName = Bo\nage = 3", None),
    ("ini_answer", Spec(), "[result]\nanswer = %(x)s", "%(x)s"),  # no interpolation
    ("ini_answer", Spec(), '[result]\nanswer = "Lima"', None),
    ("kv_colon", REC, "name: Ana\nage: 3", {"name": "Ana", "age": "3"}),
    ("kv_colon", REC, "name: Ana\nage: 3\nage: 4", None),
    ("kv_colon", REC, "name: Ana\nage:3", None),
    ("kv_colon", REC, "Name: Ana\nage: 3", None),
    ("kv_colon", REC, "name:  Ana\nage: 3", None),
    ("kv_equals", REC, "name=Ana Silva\nage=3", {"name": "Ana Silva", "age": "3"}),
    ("env_file", REC, 'NAME="Ana Silva"\nAGE=3', {"name": "Ana Silva", "age": "3"}),
    ("env_file", REC, "NAME=Ana Silva\nAGE=3", None),
    ("env_file", REC, "name=Ana\nage=3", None),
    ("query_string", REC, "name=Ana+Silva&age=3", {"name": "Ana Silva", "age": "3"}),
    ("query_string", REC, "name=Ana%20Silva&age=3", {"name": "Ana Silva", "age": "3"}),
    ("query_string", REC, "name=Ana&age", None),
    ("query_string", REC, "name=Ana&age=3&age=4", None),
    ("logfmt", REC, 'name="Ana \\"A\\" Silva" age=3', {"name": 'Ana "A" Silva', "age": "3"}),
    ("logfmt", REC, "name=Ana  age=3", None),
    ("logfmt", REC, 'name="Ana age=3', None),
    # S-expressions
    ("sexpr_answer", Spec(), '(answer "Buenos Aires")', "Buenos Aires"),
    ("sexpr_answer", Spec(), "( answer 42 )", "42"),
    ("sexpr_answer", Spec(), "(answer Paris)", None),
    ("sexpr_list", LST, '(list 1 -2 "a b")', ["1", "-2", "a b"]),
    ("sexpr_list", LST, "(list 1 two)", None),
    ("sexpr_answer", Spec(), '("answer" 42)', None),
    ("sexpr_answer", Spec(), "(answer 41 42)", None),
    ("sexpr_answer", Spec(), "(answer (42))", None),
    ("sexpr_answer", Spec(), "(answer 42))", None),
    ("sexpr_answer", Spec(), "(answer 42) (answer 43)", None),
    ("sexpr_alist", REC, '((name "Ana") (age 3))', {"name": "Ana", "age": "3"}),
    ("sexpr_alist", REC, '((name . "Ana") (age 3))', None),
    ("sexpr_alist", REC, '(("name" "Ana") (age 3))', None),
    ("sexpr_plist", REC, '(:name "Ana" :age 3)', {"name": "Ana", "age": "3"}),
    ("sexpr_plist", REC, '(:name "Ana" :age)', None),
    ("sexpr_quoted_list", LST, "'(1 2 3)", ["1", "2", "3"]),
    # dates and times
    ("iso_date", Spec(), "2024-02-29", "2024-02-29"),
    ("iso_date", Spec(), "2023-02-29", None),
    ("iso_date", Spec(), "2024-2-9", None),
    ("iso_date", Spec(), "２０２４-02-29", None),
    ("date_us", Spec(), "02/29/2024", "2024-02-29"),
    ("date_us", Spec(), "29/02/2024", None),
    ("date_eu", Spec(), "29/02/2024", "2024-02-29"),
    ("date_long_us", Spec(), "February 29, 2024", "2024-02-29"),
    ("date_long_us", Spec(), "February 09, 2024", None),
    ("date_long_us", Spec(), "february 9, 2024", None),
    ("date_long_eu", Spec(), "9 February 2024", "2024-02-09"),
    ("iso_week_date", Spec(), "2024-W10-3", "2024-03-06"),
    ("iso_week_date", Spec(), "2024-W54-1", None),
    ("iso_ordinal_date", Spec(), "2024-366", "2024-12-31"),
    ("iso_ordinal_date", Spec(), "2023-366", None),
    ("iso_ordinal_date", Spec(), "2023-000", None),
    ("iso_time", Spec(), "23:59:59", "23:59:59"),
    ("iso_time", Spec(), "24:00:00", None),
    ("time_hhmm", Spec(), "09:05", "09:05:00"),
    ("time_hhmm", Spec(), "9:05", None),
    ("time_12h", Spec(), "12:05 AM", "00:05:00"),
    ("time_12h", Spec(), "12:05 PM", "12:05:00"),
    ("time_12h", Spec(), "0:05 AM", None),
    ("time_12h", Spec(), "9:05 pm", None),
    ("iso_datetime_utc", Spec(), "2024-03-06T23:15:00Z", "2024-03-06T23:15:00+00:00"),
    ("iso_datetime_utc", Spec(), "2024-03-06T23:15:00+00:00", None),
    ("iso_datetime_utc", Spec(), "2024-03-06 23:15:00Z", None),
    ("iso_datetime_offset", Spec(), "2024-03-06T23:15:00+05:30", "2024-03-06T23:15:00+05:30"),
    ("iso_datetime_offset", Spec(), "2024-03-06T23:15:00Z", None),
    ("iso_datetime_offset", Spec(), "2024-03-06T23:15:00+25:00", None),
    ("unix_timestamp", Spec(), "1709766900", "2024-03-06T23:15:00+00:00"),
    ("unix_timestamp", Spec(), "1709766900.0", None),
    ("rfc2822_datetime", Spec(), "Wed, 06 Mar 2024 23:15:00 +0000", "2024-03-06T23:15:00+00:00"),
    ("rfc2822_datetime", Spec(), "Thu, 06 Mar 2024 23:15:00 +0000", None),  # 6 March 2024 was a Wednesday
    ("iso_duration", Spec(), "P2DT4H35M", 189300),
    ("iso_duration", Spec(), "PT90M", 5400),
    ("iso_duration", Spec(), "P", None),
    ("iso_duration", Spec(), "PT", None),
    ("iso_duration", Spec(), "P4H", None),
    ("duration_hms", Spec(), "52:35:00", 189300),
    ("duration_hms", Spec(), "52:75:00", None),
    ("duration_human", Spec(), "2d 4h 35m", 189300),
    ("duration_human", Spec(), "4h35m", None),
    ("duration_human", Spec(), "35m 4h", None),
    ("weekday_name", Spec(), "Wednesday", "Wednesday"),
    ("weekday_name", Spec(), "wednesday", None),
    # numbers
    ("integer_plain", Spec(), "-42", "-42"),
    ("integer_plain", Spec(), "042", None),
    ("integer_plain", Spec(), "+42", None),
    ("integer_plain", Spec(), "1,234", None),
    ("integer_plain", Spec(), "4２", None),
    ("integer_signed", Spec(), "+7", "7"),
    ("integer_signed", Spec(), "7", None),
    ("integer_thousands", Spec(), "1,234,567", "1234567"),
    ("integer_thousands", Spec(), "1234", None),
    ("integer_thousands", Spec(), "12,34", None),
    ("integer_words", Spec(), "three hundred forty-two", "342"),
    ("integer_words", Spec(), "twelve thousand five", "12005"),
    ("integer_words", Spec(), "three hundred and forty-two", None),
    ("integer_words", Spec(), "forty two", None),
    ("integer_words", Spec(), "Forty-two", None),
    ("integer_words", Spec(), "one one", None),
    ("roman_numeral", Spec(), "MCMXCIV", "1994"),
    ("roman_numeral", Spec(), "IIII", None),
    ("roman_numeral", Spec(), "IC", None),
    ("roman_numeral", Spec(), "mcmxciv", None),
    ("hexadecimal", Spec(), "0x2A", "42"),
    ("hexadecimal", Spec(), "0x02a", None),
    ("hexadecimal", Spec(), "2a", None),
    ("binary", Spec(), "0b101010", "42"),
    ("binary", Spec(), "0b102", None),
    ("octal", Spec(), "0o52", "42"),
    ("fraction_slash", Spec(), "-5/6", "-5/6"),
    ("fraction_slash", Spec(), "10/12", None),
    ("fraction_slash", Spec(), "5/1", None),
    ("fraction_slash", Spec(), "5 / 6", None),
    ("fraction_latex", Spec(), "\\frac{5}{6}", "5/6"),
    ("fraction_latex", Spec(), "$\\frac{5}{6}$", None),
    ("mixed_number", Spec(), "2 1/3", "7/3"),
    ("mixed_number", Spec(), "2/3", "2/3"),
    ("mixed_number", Spec(), "7/3", None),
    ("mixed_number", Spec(), "2 4/3", None),
    ("decimal_2dp", Spec(), "13.50", "13.5"),
    ("decimal_2dp", Spec(), "13.5", None),
    ("decimal_2dp", Spec(), ".50", None),
    ("decimal_comma", Spec(), "13,50", "13.5"),
    ("decimal_comma", Spec(), "13.50", None),
    ("scientific_e", Spec(), "2.7e7", "27000000"),
    ("scientific_e", Spec(), "3.5e-4", "0.00035"),
    ("scientific_e", Spec(), "27e6", None),
    ("scientific_e", Spec(), "2.7E7", None),
    ("scientific_e", Spec(), "2.7e9999", None),
    ("scientific_latex", Spec(), "2.7 \\times 10^{7}", "27000000"),
    ("scientific_latex", Spec(), "2.7 \\times 10^7", None),
    ("scientific_unicode", Spec(), "3.5 × 10⁻⁴", "0.00035"),
    ("scientific_unicode", Spec(), "3.5 x 10⁻⁴", None),
    ("percentage", Spec(), "12.5%", "12.5"),
    ("percentage", Spec(), "12.5 %", None),
    ("percentage", Spec(), "0.125", None),
    ("percentage_1dp", Spec(), "25.0%", "25"),
    ("percentage_1dp", Spec(), "25%", None),
    ("ratio", Spec(), "3:4", "3:4"),
    ("ratio", Spec(), "6:8", None),
    # currency and units
    ("usd", Spec(), "$1,234.50", "1234.5"),
    ("usd", Spec(), "$1234.50", None),
    ("usd", Spec(), "$1,234.5", None),
    ("usd", Spec(), "USD 1,234.50", None),
    ("usd", Spec(), "-$5.00", None),
    ("eur_suffix", Spec(), "1.234,50 €", "1234.5"),
    ("eur_suffix", Spec(), "1,234.50 €", None),
    ("jpy", Spec(), "¥12,300", "12300"),
    ("jpy", Spec(), "¥12,300.00", None),
    ("currency_code", Spec(), "1,234.50 USD", "1234.5"),
    ("unit_symbol", Spec("record", keys=("value", "unit")), "3500 m", {"value": "3500", "unit": "m"}),
    ("unit_symbol", Spec("record", keys=("value", "unit")), "3500 meters", None),
    ("unit_symbol", Spec("record", keys=("value", "unit")), "3500m", None),
    ("unit_name", Spec("record", keys=("value", "unit")), "1 metre", {"value": "1", "unit": "m"}),
    ("unit_name", Spec("record", keys=("value", "unit")), "1 meters", None),
    ("unit_name", Spec("record", keys=("value", "unit")), "2.5 liter", None),
    ("unit_latex", Spec("record", keys=("value", "unit")), "2.5\\,\\mathrm{mL}", {"value": "2.5", "unit": "mL"}),
    ("unit_brackets", Spec("record", keys=("value", "unit")), "2.5 [kg]", {"value": "2.5", "unit": "kg"}),
    # choices
    ("mc_letter", Spec(labels=("A", "B", "C", "D")), "C", "C"),
    ("mc_letter", Spec(labels=("A", "B", "C", "D")), "E", None),
    ("mc_letter", Spec(labels=("A", "B", "C", "D")), "(C)", None),
    ("mc_letter", Spec(labels=("A", "B", "C", "D")), "C) 42", None),
    ("mc_letter", Spec(), "C", None),  # a task without options
    ("mc_letter_paren", Spec(labels=("A", "B", "C", "D")), "(C)", "C"),
    ("mc_multi_select", LST, "A, C", ["A", "C"]),
    ("mc_multi_select", LST, "A,,C", None),
    ("true_false", Spec(), "False", False),
    ("true_false", Spec(), "false", None),
    ("true_false", Spec(), "No", None),
    ("yes_no_lower", Spec(), "yes", True),
    ("binary_flag", Spec(), "0", False),
    ("sign_label", Spec(), "zero", "zero"),
    ("sign_label", Spec(), "neutral", None),
    # quoted strings
    ("double_quoted", Spec(), '"New Delhi"', "New Delhi"),
    ("double_quoted", Spec(), '"New Delhi".', None),
    ("double_quoted", Spec(), '"say "hi""', None),
    ("single_quoted", Spec(), "'Oslo'", "Oslo"),
    ("curly_double_quoted", Spec(), "“Oslo”", "Oslo"),
    ("curly_double_quoted", Spec(), "”Oslo“", None),
    ("guillemets", Spec(), "«Zürich»", "Zürich"),
    ("corner_brackets", Spec(), "「東京」", "東京"),
    ("corner_brackets", Spec(), "「東京", None),
    ("triple_quoted", Spec(), '"""Oslo"""', "Oslo"),
    ("triple_quoted", Spec(), '"Oslo"', None),
    # templates, markers, tags
    ("template_double_brackets", Spec(), "Work.\n[[42]]", "42"),
    ("template_double_brackets", Spec(), "[[42]]\nWork.", None),
    ("template_double_brackets", Spec(), "[[4[2]]", None),
    ("template_confidence", Spec(), "Answer: Lima (confidence: 100%)", "Lima"),
    ("template_confidence", Spec(), "Answer: Lima (confidence: 101%)", None),
    ("template_confidence", Spec(), "Answer: Lima", None),
    ("template_check_mark", Spec(), "✅ Lima", "Lima"),
    ("template_check_mark", Spec(), "✔ Lima", None),
    ("answer_colon", Spec(), "7 × 6 = 42.\nAnswer: 42", "42"),
    ("answer_colon", Spec(), "Answer: 42\n", "42"),
    ("answer_colon", Spec(), "Answer: 41\nAnswer: 42", None),
    ("answer_colon", Spec(), "Answer:42", None),
    ("answer_colon", Spec(), "answer: 42", None),
    ("answer_colon", Spec(), "Answer: ", None),
    ("answer_colon", Spec(), "Final Answer: 42", None),
    ("gsm8k_hashes", Spec(), "3 + 4 = 7\n#### 7", "7"),
    ("gsm8k_hashes", Spec(), "#### Step 1\n3 + 4 = 7\n#### 7", None),
    ("the_answer_is", Spec(), "The answer is Paris.", "Paris"),
    ("the_answer_is", Spec(), "The answer is Paris", None),
    ("minerva", Spec(), "Final Answer: The final answer is $\\frac{5}{6}$. I hope it is correct.", "5/6"),
    ("minerva", Spec(), "Final Answer: The final answer is $\\frac{5}{6}$.", None),
    ("answer_tag", Spec(), "Thinking aloud… <answer> 42 </answer> done", "42"),
    ("answer_tag", Spec(), "</answer>42<answer>", None),
    ("answer_tag", Spec(), "<answer></answer>", None),
    ("answer_tag", Spec(), "<Answer>42</Answer>", None),
    ("answer_tag", Spec(), "<answer>42</answer> or <answer>43</answer>", None),
    ("answer_tag_only", Spec(), "So: <answer>42</answer>", None),
    ("reasoning_answer_tags", Spec(), "<reasoning>7 × 6</reasoning>\n<answer>42</answer>", "42"),
    ("reasoning_answer_tags", Spec(), "<reasoning></reasoning><answer>42</answer>", None),
    ("reasoning_answer_tags", Spec(), "<reasoning>a<answer>41</answer></reasoning><answer>42</answer>", None),
    ("bbcode_answer", Spec(), "[answer]42[/answer]", "42"),
    # multi-part answers and lists
    ("parts_letter_lines", parts(3), "(a) 7\n(b) Lima\n(c) 2.5", ["7", "Lima", "2.5"]),
    ("parts_letter_lines", parts(3), "(a) 7\n(b) Lima", None),
    ("parts_letter_lines", parts(2), "(a) 7\n(c) Lima", None),
    ("parts_letter_lines", parts(2), "(a) 7\n(b) Lima\nDone.", None),
    ("parts_part_lines", parts(2), "Part 1: 7\nPart 2: Lima", ["7", "Lima"]),
    ("parts_semicolon", parts(2), "7; Lima", ["7", "Lima"]),
    ("parts_semicolon", parts(2), "7; Lima; 3", None),
    ("parts_tuple", parts(2), "(7, Lima)", ["7", "Lima"]),
    ("parts_tuple", parts(2), "7, Lima", None),
    ("list_comma", LST, "apple,river , stone", ["apple", "river", "stone"]),
    ("list_comma", LST, "apple, river,", None),
    ("list_comma", LST, "apple\nriver", None),
    ("list_lines", LST, "apple\nriver", ["apple", "river"]),
    ("list_lines", LST, "- apple\n- river", None),
    ("list_lines", LST, "1. apple\n2. river", None),
    ("list_series", LST, "apple, river, and stone", ["apple", "river", "stone"]),
    ("list_series", LST, "apple and river", ["apple", "river"]),
    ("list_series", LST, "apple", ["apple"]),
    ("list_series", LST, "apple, river and stone", None),
    ("list_series", LST, "apple, river", None),
    ("list_bracketed", LST, "[1, 2, 3]", ["1", "2", "3"]),
    ("list_python", LST, "['a', 'b']", ["a", "b"]),
    ("list_python", LST, "('a', 'b')", ["a", "b"]),
    ("list_python", LST, "{'a', 'b'}", None),
    ("list_python", LST, "[__import__('os').system('ls')]", None),
    ("list_python", LST, "[1 + 1j]", None),
    # code
    ("python_assignment", Spec(), "```python\nanswer = 'Lima'\n```", "Lima"),
    ("python_assignment", Spec(), "```python\nanswer = 40 + 2\n```", None),
    ("python_assignment", Spec(), "```python\nanswer = 42\nprint(answer)\n```", None),
    ("python_assignment", Spec(), "```python\nanswer = b'42'\n```", None),
    ("python_assignment", Spec(), "```python\nanswer: int = 42\n```", None),
    ("python_dict", REC, "```python\nresult = {'name': 'Ana', 'age': 3}\n```", {"name": "Ana", "age": 3}),
    ("javascript_const", Spec(), "```javascript\nlet answer = \"Lima\";\n```", "Lima"),
    ("javascript_const", Spec(), "```javascript\nconst answer = 'Lima';\n```", None),
    ("javascript_object", REC, "```javascript\nconst result = {name: \"Ana\", age: 3};\n```", None),
]


@pytest.mark.parametrize("format_id", sorted({c[0] for c in CASES}))
def test_hand_written_cases(format_id):
    for _, spec, text, expected in (c for c in CASES if c[0] == format_id):
        check = CATALOG[format_id].check(text, spec)
        if expected is None:
            assert not check.ok and check.error, (text, check)
        else:
            assert check.ok and check.answer == expected, (text, check)


def test_hand_written_cases_cover_every_kind():
    assert {CATALOG[c[0]].validator for c in CASES} == set(VALIDATORS)
    assert {CATALOG[c[0]].validator for c in CASES if c[3] is None} == set(VALIDATORS)  # a refusal for each


# -- edge cases through the environment ----------------------------------------------------------------------------


def test_crlf_and_trailing_whitespace(env):
    table = task_of("csv_table", [{"n": 2, "square": 4}, {"n": 3, "square": 9}], TAB)
    assert verify(env, table, "n,square\r\n2,4\r\n3,9\r\n").accepted
    assert verify(env, table, "n,square\r2,4\r3,9").accepted  # old Mac line ends
    assert verify(env, table, "n,square  \n2,4\n3,9").error  # a trailing space inside the header is a field
    bullets = task_of("md_bullets_dash", ["a", "b"], LST)
    assert verify(env, bullets, "- a   \r\n- b\t\r\n\r\n").accepted
    assert verify(env, task_of("yaml_record", {"name": "Ana", "age": 3}, REC), "name: Ana\r\nage: 3\r\n").accepted
    assert verify(env, task_of("answer_colon", 42), "Work.\r\nAnswer: 42   \r\n").accepted
    assert verify(env, task_of("iso_date", "2024-03-06"), "2024-03-06\n\n").accepted


def test_unicode_answers(env):
    assert verify(env, task_of("corner_brackets", "東京"), "「東京」").accepted
    assert verify(env, task_of("json_answer", "Zürich"), '{"answer": "Zu\\u0308rich"}').accepted  # NFKC composes
    assert verify(env, task_of("json_answer", "Zürich"), '{"answer": "ZÜRICH"}').accepted  # case folded
    assert not verify(env, task_of("json_answer", "Zürich"), '{"answer": "Zurich"}').accepted
    assert verify(env, task_of("json_answer", 42), '{"answer": "４２"}').accepted  # full-width digits, as content
    assert verify(env, task_of("integer_plain", 42), "４２").error  # but not in a digits-only notation
    assert verify(env, task_of("template_check_mark", "Lima"), "Voilà.\n✅ Lima").accepted
    assert verify(env, task_of("csv_record", {"name": "Søren Núñez", "age": 3}, REC),
                  "field,value\nname,Søren Núñez\nage,3").accepted


def test_nested_markdown(env):
    items = task_of("md_numbered", ["a", "b"], LST)
    assert verify(env, items, "1. a\n2. b").accepted
    assert "must start with" in verify(env, items, "1. a\n   - detail\n2. b").error
    assert not verify(env, items, "1. **a**\n2. b").accepted  # well formed, but the item is "**a**"
    assert verify(env, items, "1. **a**\n2. b").error is None
    heading = task_of("md_heading_answer", 42)
    assert verify(env, heading, "## Work\n\n### Step\n\n6 × 7\n\n## Answer\n\n42\n\n### Check\n\nok").accepted
    assert not verify(env, task_of("md_bold", 42), "## **Answer**\n\n**42**").accepted  # two bold spans
    quote = task_of("md_blockquote", 42)
    assert verify(env, quote, "> 42").accepted
    assert verify(env, quote, "> > 42").error == "nested block quotes are not allowed"
    assert not verify(env, task_of("html_ul", ["a"], LST), "<ul><li>a<ol><li>b</li></ol></li></ul>").accepted


def test_answer_inside_the_think_block_does_not_count(env):
    task = task_of("boxed", 42).model_copy(update={"reasoning": True})
    assert verify(env, task, "<think>maybe \\boxed{42}</think>I am not sure.").error == "no \\boxed{…}"
    assert verify(env, task, "<think>maybe \\boxed{41}</think>\\boxed{42}").accepted


def test_long_answers_are_refused_before_parsing(env):
    task = task_of("json_array", ["a"], LST)
    text = "[" + ", ".join(['"a"'] * (MAX_CHARS // 4)) + "]"
    assert len(text) > MAX_CHARS and "at most" in verify(env, task, text).error


def test_yaml_alias_bombs_and_deep_nesting_are_refused(env):
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 9)}]\n" for i in range(8))
    assert "aliases" in verify(env, task_of("yaml_record", {"a": "x"}, Spec("record", keys=("a",))), bomb).error
    assert "nested" in verify(env, task_of("yaml_answer", 1), "[" * 30000).error  # libyaml would crash
    assert "nested" in verify(env, task_of("yaml_answer", 1), "- " * 20000 + "x").error
    assert "JSON" in verify(env, task_of("json_answer", 1), "[" * 30000).error
    assert "Python" in verify(env, task_of("list_python", ["a"], LST), "[" * 30000).error
    assert "deeply" in verify(env, task_of("html_paragraph", 1), "<div>" * 100).error


# -- the content comparison --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("expected", "got", "same"), [
    (42, "42", True), (42, 42.0, True), (42, "42.000", True), (42, "1,234", False), (1234, "1,234", True),
    ("0.1", 0.1, True), ("5/6", "10/12", True), ("5/6", 0.8333, False), ("27000000", "2.7e7", True),
    (42, "+42", True), (42, "42 apples", False), (42, True, False), (1, True, False), (True, "yes", True),
    (False, "False", True), (True, 1, False), (True, "1", False), ("Paris", "paris.", True),
    ("Paris", " PARIS ", True), ("New Delhi", "New  Delhi", True), ("Paris", "Pariss", False),
    ("Wednesday", "wednesday", True), ("3:4", "3:4", True), ("3:4", "6:8", False), ("2024-03-06", "2024-03-06", True),
    (["a", "b"], ["a", "b"], True), (["a", "b"], ["b", "a"], False), (["a"], "a", False),
    ({"n": 2}, {"n": "2"}, True), ({"n": 2}, {"n": 2, "m": 3}, False), ({"n": 2}, {"m": 2}, False),
    ([{"n": 2}], [{"n": "2.0"}], True), ("Paris", None, False), ("Paris", {"a": 1}, False),
])
def test_matches(expected, got, same):
    assert matches(expected, got) is same


# -- the environment --------------------------------------------------------------------------------------------


def test_tasks_are_deterministic_and_splits_do_not_overlap(env):
    source = env.tasks()
    assert source.get("train", 7) == environments.make("answer_format").tasks().get("train", 7)
    train = {source.get("train", i).task_id for i in range(150)}
    evals = {t.task_id for t in source.iter("eval", limit=150)}
    assert not train & evals and len(train) == 150 and source.size("eval") == 500 and source.size("train") is None


def test_generated_tasks_look_right_and_their_reference_answers_pass(env):
    families = set()
    for i in range(1000):  # every family has at least 4 of the 225 formats: all turn up in 1,000 draws
        task = env.tasks().get("train", i)
        fmt = CATALOG[task.verifier["format"]]
        spec = Spec.from_json(task.verifier["spec"])
        families.add(fmt.family)
        assert task.reasoning is False and task.prompt[0].content.endswith(fmt.instruction_for(spec))
        assert task.verifier["params"] == fmt.params
        assert "{keys}" not in task.prompt[0].content and "{columns}" not in task.prompt[0].content
        assert verify(env, task, fmt.render(task.verifier["answer"], spec)).accepted
    assert families == {f.family for f in CATALOG.values()}


def test_config_restricts_formats_and_sets_reasoning():
    only = environments.make("answer_format", formats=["boxed", "usd"])
    assert {only.tasks().get("train", i).verifier["format"] for i in range(40)} == {"boxed", "usd"}
    json_only = environments.make("answer_format", families=["json"], reasoning=True)
    tasks = [json_only.tasks().get("train", i) for i in range(20)]
    assert all(CATALOG[t.verifier["format"]].family == "json" and t.reasoning for t in tasks)
    mixed = environments.make("answer_format", reasoning=0.5)
    assert {mixed.tasks().get("train", i).reasoning for i in range(40)} == {True, False}
    for bad in ({"formats": ["nope"]}, {"families": ["nope"]}, {"formats": ["boxed"], "families": ["json"]},
                {"reasoning": 1.5}, {"format_reward": 1.0}):
        with pytest.raises(ValueError):
            environments.make("answer_format", **bad)


def test_check_content_and_format_reward_travel_with_the_task():
    lenient = environments.make("answer_format", check_content=False, format_reward=0.2, formats=["json_answer"])
    task = lenient.tasks().get("train", 0)
    assert task.verifier["check_content"] is False and task.verifier["format_reward"] == 0.2
    default = environments.make("answer_format")  # the server's instance: the task decides
    assert verify(default, task, '{"answer": "surely wrong"}').accepted


def test_a_task_without_a_reference_answer_checks_the_format_only(env):
    task = task_of("iso_date", None)
    task = task.model_copy(update={"verifier": {"format": "iso_date"}})
    assert verify(env, task, "1999-12-31").accepted
    assert verify(env, task, "31/12/1999").error


@pytest.mark.parametrize(("verifier", "message"), [
    ({"format": "nope"}, "unknown format"),
    ({}, "unknown format"),
    ({"format": ["boxed"]}, "unknown format"),
    ({"format": "csv_table", "spec": {"shape": "table"}}, "needs its columns"),
    ({"format": "csv_table", "spec": {"shape": "scalar"}}, "cannot carry a scalar"),
    ({"format": "boxed", "spec": {"shape": "cube"}}, "unknown shape"),
    ({"format": "boxed", "spec": {"shape": "list", "count": 0}}, "positive integer"),
    ({"format": "boxed", "spec": "scalar"}, "spec must be an object"),
    ({"format": "boxed", "check_content": "yes"}, "check_content"),
    ({"format": "boxed", "format_reward": 2}, "format_reward"),
    ({"format": "boxed", "params": {"command": "fbox"}}, "differ from the catalog"),
])
def test_bad_tasks_are_error_scores(env, verifier, message):
    task = Task(task_id="t", env="answer_format", prompt=[Message(role="user", content="?")], verifier=verifier)
    score = verify(env, task, "\\boxed{1}")
    assert score.reward == 0.0 and not score.accepted and score.error.startswith("bad task") and message in score.error


def test_tasks_from_a_file(tmp_path):
    rows = [{"prompt": "Capital of Peru? Reply in <answer> tags.", "verifier": {"format": "answer_tag", "answer": "Lima"}},
            {"prompt": "3 + 4?", "verifier": json.dumps({"format": "integer_words", "answer": 7}), "split": "eval"}]
    path = tmp_path / "tasks.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows))
    file_env = environments.make("answer_format", tasks_path=str(path))
    task = file_env.tasks().get("eval", 0)
    assert verify(file_env, task, "seven").accepted and not verify(file_env, task, "7").accepted


def test_episode_through_reset_and_step():
    e = environments.make("answer_format", formats=["md_table"])
    obs, info = asyncio.run(e.reset(seed=3))
    task = e.task
    text = CATALOG["md_table"].render(task.verifier["answer"], Spec.from_json(task.verifier["spec"]))
    _, reward, terminated, _, info = asyncio.run(e.step(Message(role="assistant", content=text)))
    assert reward == 1.0 and terminated and info["score"]["details"]["format"] == "md_table"


def test_registered_with_gymnasium():
    spec = environments.spec("answer_format")
    assert spec.gym_id == "lachesis/AnswerFormat-v0" and spec.cls is AnswerFormatEnv
    assert "output format" in spec.description


# -- never raise ---------------------------------------------------------------------------------------------------

_PIECES = ["\\boxed{", "}", "{", "<answer>", "</answer>", "```", "```json\n", "\n", "\r\n", "|", "---", "- ", "1. ",
           ": ", "=", '"', "'", "<", ">", "</", "(", ")", "[", "]", "&", ";", ",", "<!DOCTYPE a>", "&a;", "*", "**",
           "`", "## ", "$", "\\[", "\\frac{", "e", "0", "9" * 30, "%", "€", "✅", "\t", "\x00", "<![CDATA[", "<?xml ",
           "!!binary ", "&x ", "*x", "\\item ", "\\\\", "0x", "twenty", "T", "Z", "+05:30", "P", "Answer: ", "#### ",
           "[[", "(:a 1)", "'(", "\\ud800", "\ud800", "é", "NaN", "1e999", "[" * 70, "<think>", "</think>", "、"]
SAMPLES = {fid: sample(fmt) for fid, fmt in CATALOG.items()}  # a reference task and response per format
_texts = st.one_of(st.text(max_size=300), st.lists(st.one_of(st.sampled_from(_PIECES), st.text(max_size=5)),
                                                   max_size=25).map("".join))


@settings(max_examples=200, deadline=None)
@given(text=_texts)
@example(text="[" * 5000)
@example(text="<think>" * 3)
def test_validators_never_raise_on_arbitrary_text(text):
    for fid, fmt in CATALOG.items():
        content, _ = SAMPLES[fid]
        check = fmt.check(text, content.spec)
        assert check.ok == (check.error is None)
        if check.ok:
            orjson.dumps(check.answer)  # the server's serialiser: refuses big integers and lone surrogates


@settings(max_examples=200, deadline=None)
@given(format_id=st.sampled_from(IDS), edits=st.lists(st.tuples(st.floats(0, 1), st.integers(0, 6), st.sampled_from(
    _PIECES + [""])), min_size=1, max_size=4), reasoning=st.booleans())
def test_verify_never_raises_on_damaged_reference_responses(env, format_id, edits, reasoning):
    fmt = CATALOG[format_id]
    content, text = SAMPLES[format_id]
    for where, cut, piece in edits:  # cut a few characters at a point and insert a piece there
        i = int(where * len(text))
        text = text[:i] + piece + text[i + cut:]
    score = env.verify(task_for(fmt, content, reasoning=reasoning), Completion(text=text))
    assert isinstance(score, Score) and score.reward in (0.0, 1.0) and score.accepted == (score.reward == 1.0)
    assert (score.error is None) or not score.accepted
    orjson.dumps(score.model_dump(mode="json"))
