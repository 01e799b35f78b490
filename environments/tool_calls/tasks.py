"""Task generation: five kinds of tool-use task, each deterministic from a seed, and their reference solutions.

    single      one function offered, one call asked for
    parallel    two or three calls asked for in one message, to be made at once (in any order)
    distractor  one call asked for among four or five offered functions (BFCL's "multiple")
    no_call     functions offered, but the question needs none: answer directly (BFCL's "irrelevance")
    multi_turn  the environment runs the calls against the simulated world; the model chains or combines the
                results into a numeric final answer (several rounds of calls where one result feeds the next)

Verifier data: `{"kind", "calls"}` for the call kinds (BFCL's possible answer); `{"kind", "answer",
"tolerance"}` for no_call, plus `"world"` and `"reference"` (the reference rounds of calls) for multi_turn.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import Any

from ..types import Message, Task
from .hermes import Call, render_call, system_prompt
from .world import TOOLS, World, make_world

KINDS = ("single", "parallel", "distractor", "no_call", "multi_turn")
CALL_KINDS = ("single", "parallel", "distractor")
LOOKUPS = ["get_weather", "get_product", "list_events", "convert_currency"]  # what multi-turn questions need
ANSWER_INSTRUCTION = "End your reply with a line of the form `Answer: <number>`."

Generated = tuple[list[str], str, dict[str, Any]]  # offered tool names, the user's message, verifier data


def generate(rng: random.Random, kinds: Sequence[str]) -> dict[str, Any]:
    """One task's fields for ProceduralTasks: a system prompt offering the tools, the user's message, verifier."""
    kind = rng.choice(kinds)
    tool_names, question, verifier = _GENERATORS[kind](rng, make_world(rng))
    specs = [TOOLS[name].spec for name in tool_names]
    return {"prompt": [{"role": "system", "content": system_prompt(specs)}, {"role": "user", "content": question}],
            "tools": [spec.model_dump() for spec in specs], "verifier": {"kind": kind, **verifier}}


def reference_actions(task: Task) -> list[Message]:
    """The assistant messages of a correct episode: each round of calls, then the final answer where one is due."""
    verifier = task.verifier
    if verifier["kind"] in CALL_KINDS:
        rounds = [[_reference_call(expected) for expected in verifier["calls"]]]
    else:
        rounds = [[Call(c["name"], c["arguments"]) for c in calls] for calls in verifier.get("reference", [])]
    texts = ["\n".join(render_call(call) for call in calls) for calls in rounds]
    if "answer" in verifier:
        texts.append(f"Answer: {verifier['answer']}")
    think = "<think>\nThe request says what to do.\n</think>\n" if task.reasoning else ""
    return [Message(role="assistant", content=think + text) for text in texts]


def _reference_call(expected: dict[str, dict[str, list]]) -> Call:
    """The first accepted value of every argument; left out where that is "" (optional)."""
    ((name, accepted),) = expected.items()
    return Call(name, {arg: options[0] for arg, options in accepted.items() if options[0] != ""})


# -- the kinds ------------------------------------------------------------------------------------------


def _single(rng: random.Random, world: World) -> Generated:
    name = rng.choice(list(TOOLS))
    sentence, accepted = TOOLS[name].request(rng, world)
    return [name], sentence, {"calls": [{name: accepted}]}


def _parallel(rng: random.Random, world: World) -> Generated:
    pool = rng.sample(list(TOOLS), rng.randint(1, 3))  # one tool asked several times, or a few different ones
    count = rng.randint(2, 3)
    requests: dict[tuple, tuple[str, dict]] = {}
    while len(requests) < count:
        name = rng.choice(pool)
        sentence, accepted = TOOLS[name].request(rng, world)
        subject = TOOLS[name].spec.parameters["required"][0]  # city, product, date…: never asked twice
        requests.setdefault((name, str(accepted[subject])), (sentence, {name: accepted}))
    calls = [call for _, call in requests.values()]
    names = list(dict.fromkeys(name for call in calls for name in call))
    names += rng.sample([n for n in TOOLS if n not in names], rng.randint(0, 2))
    rng.shuffle(names)
    return names, " ".join(sentence for sentence, _ in requests.values()), {"calls": calls}


def _distractor(rng: random.Random, world: World) -> Generated:
    name = rng.choice(list(TOOLS))
    sentence, accepted = TOOLS[name].request(rng, world)
    names = [name, *rng.sample([n for n in TOOLS if n != name], rng.randint(3, 4))]
    rng.shuffle(names)
    return names, sentence, {"calls": [{name: accepted}]}


def _no_call(rng: random.Random, world: World) -> Generated:
    a, b = rng.randint(12, 99), rng.randint(2, 40)
    question, answer = rng.choice([(f"What is {a} plus {b}?", a + b), (f"What is {a} times {b}?", a * b),
                                   (f"How many minutes are in {b} hours?", b * 60),
                                   (f"How many days are in {b} weeks?", b * 7)])
    names = rng.sample(list(TOOLS), rng.randint(2, 4))
    return names, f"{question} {ANSWER_INSTRUCTION}", {"answer": answer, "tolerance": 0}


def _multi_turn(rng: random.Random, world: World) -> Generated:
    question, rounds, answer, tolerance = rng.choice(_SCENARIOS)(rng, world)
    names = LOOKUPS + rng.sample([n for n in TOOLS if n not in LOOKUPS], rng.randint(1, 2))
    rng.shuffle(names)
    reference = [[{"name": call.name, "arguments": call.arguments} for call in calls] for calls in rounds]
    return names, f"{question} {ANSWER_INSTRUCTION}", {"answer": answer, "tolerance": tolerance, "world": world,
                                                        "reference": reference}


_GENERATORS: dict[str, Callable[[random.Random, World], Generated]] = {
    "single": _single, "parallel": _parallel, "distractor": _distractor, "no_call": _no_call,
    "multi_turn": _multi_turn,
}


# -- multi-turn scenarios: (question, reference rounds of calls, answer, tolerance) ---------------------

Scenario = tuple[str, list[list[Call]], float, float]


def _price_abroad(rng: random.Random, world: World) -> Scenario:
    product = rng.choice(list(world["products"]))
    currency = rng.choice([code for code in world["rates"] if code != "USD"])
    lookup = Call("get_product", {"product": product})
    price = _result(world, lookup)["price_usd"]
    conversion = Call("convert_currency", {"amount": price, "from_currency": "USD", "to_currency": currency})
    question = f"How much does the {product} cost in {currency}?"
    return question, [[lookup], [conversion]], _result(world, conversion)["amount"], 0.01


def _temperature_spread(rng: random.Random, world: World) -> Scenario:
    cities = rng.sample(list(world["weather"]), rng.randint(2, 3))
    lookups = [Call("get_weather", {"city": city}) for city in cities]
    temperatures = [_result(world, call)["temperature"] for call in lookups]
    question = (f"What is the difference in degrees Celsius between the warmest and the coldest of "
                f"{_listing(cities)} right now?")
    return question, [lookups], max(temperatures) - min(temperatures), 0


def _meeting_minutes(rng: random.Random, world: World) -> Scenario:
    dates = sorted(rng.sample(list(world["calendar"]), rng.randint(1, 2)))
    lookups = [Call("list_events", {"date": date}) for date in dates]
    minutes = sum(event["minutes"] for call in lookups for event in _result(world, call)["events"])
    combined = " combined" if len(dates) > 1 else ""
    return f"How many minutes of meetings do I have on {_listing(dates)}{combined}?", [lookups], minutes, 0


def _total_stock(rng: random.Random, world: World) -> Scenario:
    products = rng.sample(list(world["products"]), rng.randint(2, 3))
    lookups = [Call("get_product", {"product": product}) for product in products]
    units = sum(_result(world, call)["in_stock"] for call in lookups)
    listing = _listing([f"the {p}" for p in products])
    return f"How many units of {listing} do we have in stock altogether?", [lookups], units, 0


def _meeting_weather(rng: random.Random, world: World) -> Scenario:
    date = rng.choice(list(world["calendar"]))
    event = rng.choice(world["calendar"][date])
    lookup, weather = Call("list_events", {"date": date}), Call("get_weather", {"city": event["city"]})
    question = (f'What is the temperature in degrees Celsius right now in the city where my "{event["title"]}" '
                f"meeting on {date} takes place?")
    return question, [[lookup], [weather]], _result(world, weather)["temperature"], 0


_SCENARIOS = [_price_abroad, _temperature_spread, _meeting_minutes, _total_stock, _meeting_weather]


def _result(world: World, call: Call) -> dict[str, Any]:
    return TOOLS[call.name].run(world, **call.arguments)


def _listing(items: list[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"
