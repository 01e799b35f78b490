"""Content generators: small questions with a known answer, drawn from a seeded RNG.

A generator returns the question, the reference answer as a JSON value (exact numbers as ints or decimal
strings such as "3.25" or "5/6"; dates, times and date-times in ISO 8601; durations in seconds) and the
`Spec` that formats need to check a response (shape, keys, columns, part count, option labels). Questions
are easy on purpose: this environment teaches output formats, so a wrong verdict should come from the
format or a slip, not from the difficulty of the question.
"""

from __future__ import annotations

import calendar
import datetime as dt
import random
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from math import gcd
from typing import Any

from .validators.shape import Spec
from .validators.values import MONTHS, UNITS, canonical


@dataclass(frozen=True)
class Content:
    question: str
    answer: Any
    spec: Spec


Generator = Callable[..., Content]  # (rng, **kwargs from the catalog) -> Content
GENERATORS: dict[str, Generator] = {}


def generator(name: str) -> Callable[[Generator], Generator]:
    def register(fn: Generator) -> Generator:
        GENERATORS[name] = fn
        return fn

    return register


COUNTRIES = [("France", "Paris"), ("Japan", "Tokyo"), ("Kenya", "Nairobi"), ("Canada", "Ottawa"), ("Peru", "Lima"),
             ("Egypt", "Cairo"), ("Norway", "Oslo"), ("Australia", "Canberra"), ("Germany", "Berlin"),
             ("Italy", "Rome"), ("Spain", "Madrid"), ("Portugal", "Lisbon"), ("Greece", "Athens"),
             ("Thailand", "Bangkok"), ("Vietnam", "Hanoi"), ("Argentina", "Buenos Aires"), ("Chile", "Santiago"),
             ("Ghana", "Accra"), ("Poland", "Warsaw"), ("Ireland", "Dublin"), ("Finland", "Helsinki"),
             ("Sweden", "Stockholm"), ("Austria", "Vienna"), ("Hungary", "Budapest"), ("Cuba", "Havana"),
             ("South Korea", "Seoul"), ("Turkey", "Ankara"), ("India", "New Delhi"), ("China", "Beijing")]
ELEMENTS = [("hydrogen", "H"), ("helium", "He"), ("carbon", "C"), ("nitrogen", "N"), ("oxygen", "O"),
            ("sodium", "Na"), ("magnesium", "Mg"), ("silicon", "Si"), ("chlorine", "Cl"), ("potassium", "K"),
            ("calcium", "Ca"), ("iron", "Fe"), ("copper", "Cu"), ("zinc", "Zn"), ("silver", "Ag"), ("tin", "Sn"),
            ("gold", "Au"), ("mercury", "Hg"), ("lead", "Pb"), ("neon", "Ne"), ("argon", "Ar")]
# never YAML 1.1 booleans or nulls (yes, no, on, off, null): a bare `no` in YAML reads as false
WORDS = ["apple", "river", "stone", "garden", "window", "planet", "forest", "candle", "bridge", "mirror", "pencil",
         "rocket", "castle", "island", "ladder", "marble", "orange", "violin", "tunnel", "zebra", "anchor", "basket",
         "cactus", "dragon", "engine", "falcon", "glacier", "hammer", "jacket", "kettle", "lemon", "magnet", "needle",
         "parrot", "quartz", "saddle", "tiger", "umbrella", "velvet", "walnut", "yogurt", "meadow", "comet"]
FIRST_NAMES = ["Ana", "Ben", "Chen", "Dara", "Emeka", "Fatima", "Goran", "Hana", "Ivan", "Jun", "Kofi", "Lena",
               "Maya", "Omar", "Priya", "Rosa", "Sven", "Tariq", "Yuki", "Zoë", "José", "Søren"]
SURNAMES = ["Okafor", "Silva", "Novak", "Tanaka", "Haddad", "Larsen", "Moreau", "Kowalski", "Mensah", "Park",
            "Rossi", "Müller", "Núñez"]
CITIES = ["Oslo", "Lima", "Nairobi", "Kyoto", "Zürich", "Kraków", "São Paulo", "Reykjavík", "Lagos", "Hanoi",
          "Porto", "Dublin", "Seville", "Montreal", "Auckland"]
OCCUPATIONS = ["engineer", "teacher", "nurse", "pilot", "chef", "architect", "librarian", "farmer", "photographer",
               "dentist", "carpenter", "pharmacist"]
GOODS = ["notebook", "stapler", "lamp", "mug", "backpack", "charger", "scarf", "kettle", "tripod", "blender"]
# (from unit, to unit, factor): conversions with exact results
CONVERSIONS = [("km", "m", 1000), ("m", "cm", 100), ("cm", "mm", 10), ("m", "mm", 1000), ("kg", "g", 1000),
               ("g", "mg", 1000), ("L", "mL", 1000), ("h", "min", 60), ("min", "s", 60)]


def _decimal(value: Decimal | Fraction) -> str:
    return canonical(Fraction(value))


def _long_date(d: dt.date) -> str:
    return f"{MONTHS[d.month - 1]} {d.day}, {d.year}"


def _is_prime(n: int) -> bool:
    return n > 1 and all(n % p for p in range(2, int(n**0.5) + 1))


# -- numbers -----------------------------------------------------------------------------------------------


@generator("integer")
def integer(rng: random.Random, *, large: bool = False, positive: bool = False) -> Content:
    """Whole-number arithmetic and counting, answers below 4,000 (Roman numerals reach 3,999); `large`
    gives answers of at least 1,000, `positive` no negatives or zero."""
    if large:
        a, b = rng.randint(120, 9999), rng.randint(12, 999)
        return Content(f"What is {a} × {b}?", a * b, Spec())
    form = rng.choice(["sum", "difference", "product", "letters", "digits", "weeks", "remainder"])
    if form == "sum":
        a, b = rng.randint(10, 999), rng.randint(10, 999)
        return Content(f"What is {a} + {b}?", a + b, Spec())
    if form == "difference":
        a, b = rng.randint(10, 500), rng.randint(10, 500)
        if positive and a <= b:
            a, b = b + 1, a
        return Content(f"What is {a} minus {b}?", a - b, Spec())
    if form == "product":
        a, b = rng.randint(2, 60), rng.randint(2, 60)
        return Content(f"What is {a} × {b}?", a * b, Spec())
    if form == "letters":
        word = rng.choice(WORDS)
        return Content(f"How many letters are in the word '{word}'?", len(word), Spec())
    if form == "digits":
        n = rng.randint(1000, 999_999)
        return Content(f"What is the sum of the digits of {n}?", sum(map(int, str(n))), Spec())
    if form == "weeks":
        n = rng.randint(2, 60)
        return Content(f"How many days are there in {n} weeks?", 7 * n, Spec())
    a, b = rng.randint(50, 999), rng.randint(3, 19)
    if a % b == 0:
        a += 1
    return Content(f"What is the remainder when {a} is divided by {b}?", a % b, Spec())


@generator("decimal")
def decimal(rng: random.Random) -> Content:
    """Sums, differences and products whose exact answer has at most two decimal places."""
    a, b = Decimal(rng.randint(101, 9999)) / 100, Decimal(rng.randint(101, 9999)) / 100
    form = rng.choice(["sum", "difference", "times", "half"])
    if form == "sum":
        return Content(f"What is {a} + {b}?", _decimal(a + b), Spec())
    if form == "difference":
        a, b = max(a, b), min(a, b)
        return Content(f"What is {a} − {b}?", _decimal(a - b), Spec())
    if form == "times":
        n = rng.randint(2, 12)
        return Content(f"What is {a} × {n}?", _decimal(a * n), Spec())
    c = Decimal(rng.randint(11, 999)) / 10
    return Content(f"What is half of {c}?", _decimal(c / 2), Spec())


@generator("fraction")
def fraction(rng: random.Random) -> Content:
    """Fraction arithmetic whose exact answer is not a whole number (answer "p/q", in lowest terms)."""
    while True:
        a, b = Fraction(rng.randint(1, 9), rng.randint(2, 9)), Fraction(rng.randint(1, 9), rng.randint(2, 9))
        op = rng.choice(["+", "×", "simplify"])
        if op == "simplify":
            k, value = rng.randint(2, 9), a
            question = f"Simplify the fraction {value.numerator * k}/{value.denominator * k}."
        else:
            value = a + b if op == "+" else a * b
            question = f"What is {a} {op} {b}? Give the exact value."
        if value.denominator > 1:
            return Content(question, str(value), Spec())


@generator("large")
def large(rng: random.Random) -> Content:
    """Products of round numbers (millions and up) and divisions by powers of ten (tiny results)."""
    if rng.random() < 0.6:
        a, b = rng.randint(11, 99) * 10 ** rng.randint(2, 5), rng.randint(2, 9) * 10 ** rng.randint(2, 5)
        return Content(f"What is {a:,} × {b:,}?", a * b, Spec())
    a, k = rng.randint(11, 99), rng.randint(4, 7)
    return Content(f"What is {a} divided by {10**k:,}?", _decimal(Fraction(a, 10**k)), Spec())


@generator("percent")
def percent(rng: random.Random) -> Content:
    """What percentage one number is of another; the answer is in percent (12.5 for 12.5 %)."""
    p = Fraction(rng.choice([5, 10, 15, 20, 25, 30, 40, 45, 50, 60, 75, 80, 90, 125, 150])) / rng.choice([1, 2])
    whole = rng.choice([40, 80, 120, 200, 240, 400, 480, 800])
    part = whole * p / 100
    return Content(f"What percentage of {whole} is {canonical(part)}?", _decimal(p), Spec())


@generator("money")
def money(rng: random.Random, *, currency: str = "dollars", whole: bool = False) -> Content:
    """A total price; `whole` keeps every amount whole (currencies without minor units, such as yen)."""
    count = rng.randint(2, 250)
    price = Fraction(rng.randint(100, 5000)) if whole else Fraction(rng.randint(50, 9999), 100)
    item = rng.choice(GOODS)
    return Content(f"One {item} costs {canonical(price) if whole else f'{float(price):.2f}'} {currency}. "
                   f"How much do {count} of them cost in total, in {currency}?", canonical(price * count), Spec())


@generator("ratio")
def ratio(rng: random.Random) -> Content:
    a, b = rng.randint(1, 12), rng.randint(1, 12)
    while gcd(a, b) != 1 or a == b:
        a, b = rng.randint(1, 12), rng.randint(1, 12)
    k = rng.randint(2, 12)
    return Content(f"Simplify the ratio {a * k}:{b * k}.", f"{a}:{b}", Spec())


@generator("equation")
def equation(rng: random.Random) -> Content:
    """A linear equation a·x + b = c with a whole-number solution."""
    x, a, b = rng.choice([n for n in range(-20, 21) if n]), rng.randint(2, 9), rng.randint(-30, 30)
    left = f"{a}x {'+' if b >= 0 else '−'} {abs(b)}" if b else f"{a}x"
    return Content(f"Solve for x: {left} = {a * x + b}.", x, Spec())


# -- words, flags, choices -----------------------------------------------------------------------------------


@generator("word")
def word(rng: random.Random) -> Content:
    """A one- or two-word fact or word puzzle."""
    form = rng.choice(["capital", "symbol", "reverse", "first", "longest"])
    if form == "capital":
        country, capital = rng.choice(COUNTRIES)
        return Content(f"What is the capital of {country}?", capital, Spec())
    if form == "symbol":
        element, symbol = rng.choice(ELEMENTS)
        return Content(f"What is the chemical symbol of {element}?", symbol, Spec())
    if form == "reverse":
        w = rng.choice(WORDS)
        return Content(f"Write the word '{w}' backwards.", w[::-1], Spec())
    words = rng.sample(WORDS, 4)
    if form == "first":
        return Content(f"Which of these words comes first in alphabetical order: {', '.join(words)}?",
                       min(words), Spec())
    while sorted(map(len, words))[-1] == sorted(map(len, words))[-2]:
        words = rng.sample(WORDS, 4)
    return Content(f"Which of these words is the longest: {', '.join(words)}?", max(words, key=len), Spec())


@generator("phrase")
def phrase(rng: random.Random) -> Content:
    """A short phrase built from given words."""
    words = rng.sample(WORDS, rng.randint(2, 4))
    form = rng.choice(["join", "reverse", "capitalise"])
    if form == "join":
        return Content(f"Join the words {', '.join(words)} in this order, separated by single spaces.",
                       " ".join(words), Spec())
    if form == "reverse":
        return Content(f"Write the words of the phrase '{' '.join(words)}' in reverse order.",
                       " ".join(reversed(words)), Spec())
    return Content(f"Write the phrase '{' '.join(words)}' with the first letter of every word capitalised.",
                   " ".join(w.capitalize() for w in words), Spec())


@generator("boolean")
def boolean(rng: random.Random) -> Content:
    form = rng.choice(["prime", "leap", "divisible", "greater"])
    if form == "prime":
        n = rng.randint(20, 200)
        return Content(f"Is {n} a prime number?", _is_prime(n), Spec())
    if form == "leap":
        year = rng.randint(1800, 2400)
        return Content(f"Is {year} a leap year in the Gregorian calendar?", calendar.isleap(year), Spec())
    if form == "divisible":
        n, k = rng.randint(100, 999), rng.randint(3, 9)
        return Content(f"Is {n} divisible by {k}?", n % k == 0, Spec())
    a, b, c = rng.randint(2, 30), rng.randint(2, 30), rng.randint(20, 600)
    return Content(f"Is {a} × {b} greater than {c}?", a * b > c, Spec())


@generator("choice")
def choice(rng: random.Random, *, labels: str = "ABCD") -> Content:
    """Multiple choice with one right option; the answer is its label."""
    a, b = rng.randint(3, 30), rng.randint(3, 30)
    right = a * b
    options = {right}
    while len(options) < len(labels):
        options.add(right + rng.choice([-11, -10, -2, -1, 1, 2, 9, 10, 11, a, -a, b, -b]))
    shuffled = rng.sample(sorted(options), len(options))
    listing = "\n".join(f"{label}) {option}" for label, option in zip(labels, shuffled))
    return Content(f"What is {a} × {b}?\n{listing}", labels[shuffled.index(right)], Spec(labels=tuple(labels)))


@generator("multi_choice")
def multi_choice(rng: random.Random, *, labels: str = "ABCDE") -> Content:
    """Select every right option; the answer is their labels in alphabetical order."""
    while True:
        numbers = rng.sample(range(10, 100), len(labels))
        right = [label for label, n in zip(labels, numbers) if _is_prime(n)]
        if 0 < len(right) < len(labels):
            break
    listing = "\n".join(f"{label}) {n}" for label, n in zip(labels, numbers))
    return Content(f"Which of these numbers are prime? Select all that apply.\n{listing}", right, Spec("list"))


@generator("parity")
def parity(rng: random.Random) -> Content:
    a, b = rng.randint(10, 99), rng.randint(10, 99)
    return Content(f"Is {a} × {b} odd or even?", "even" if a * b % 2 == 0 else "odd", Spec())


@generator("sign")
def sign(rng: random.Random) -> Content:
    a = rng.randint(-60, 60)
    b = a if rng.random() < 0.2 else rng.randint(-60, 60)
    value = a - b
    return Content(f"Is {a} − ({b}) negative, zero or positive?",
                   "zero" if value == 0 else "negative" if value < 0 else "positive", Spec())


@generator("comparison")
def comparison(rng: random.Random) -> Content:
    a, b = rng.randint(3, 25), rng.randint(3, 25)
    c = a * b + rng.choice([-7, -1, 0, 0, 1, 7])
    verdict = "greater" if a * b > c else "less" if a * b < c else "equal"
    return Content(f"Compare {a} × {b} with {c}: is the product greater than, less than, or equal to {c}?",
                   verdict, Spec())


# -- dates and times ----------------------------------------------------------------------------------------


def _date(rng: random.Random) -> dt.date:
    return dt.date(2000, 1, 1) + dt.timedelta(days=rng.randint(0, 365 * 30))


@generator("date")
def date(rng: random.Random) -> Content:
    start, days = _date(rng), rng.randint(1, 400)
    if rng.random() < 0.5:
        return Content(f"What is the date {days} days after {_long_date(start)}?",
                       (start + dt.timedelta(days=days)).isoformat(), Spec())
    return Content(f"What was the date {days} days before {_long_date(start)}?",
                   (start - dt.timedelta(days=days)).isoformat(), Spec())


@generator("weekday")
def weekday(rng: random.Random) -> Content:
    day = _date(rng)
    return Content(f"What day of the week was {_long_date(day)}?", day.strftime("%A"), Spec())


@generator("time")
def time(rng: random.Random, *, seconds: bool = False) -> Content:
    """A time of day some minutes (and seconds) after another; the answer is HH:MM:SS."""
    start = dt.datetime(2000, 1, 1, rng.randint(0, 23), rng.randint(0, 59), rng.randint(0, 59) if seconds else 0)
    minutes, secs = rng.randint(5, 600), rng.randint(1, 59) if seconds else 0
    end = start + dt.timedelta(minutes=minutes, seconds=secs)
    later = f"{minutes} minutes and {secs} seconds" if seconds else f"{minutes} minutes"
    fmt = "%H:%M:%S" if seconds else "%H:%M"
    return Content(f"What time of day is it {later} after {start.strftime(fmt)} (24-hour clock)?",
                   end.time().isoformat(), Spec())


_OFFSETS = ["+05:30", "-03:00", "+09:00", "+01:00", "-07:00", "+10:00"]


@generator("datetime")
def datetime(rng: random.Random, *, offset: bool = False) -> Content:
    """When something ends, given its start and length; in UTC, or (`offset`) in a local UTC offset."""
    zone = dt.timezone.utc
    if offset:
        text = rng.choice(_OFFSETS)
        hours, minutes = map(int, text[1:].split(":"))
        zone = dt.timezone(dt.timedelta(hours=hours, minutes=minutes) * (1 if text[0] == "+" else -1))
    start = dt.datetime.combine(_date(rng), dt.time(rng.randint(0, 23), rng.randint(0, 59)), zone)
    hours, minutes = rng.randint(1, 30), rng.randint(1, 59)
    end = start + dt.timedelta(hours=hours, minutes=minutes)
    when = start.strftime("%Y-%m-%d %H:%M")
    if offset:
        return Content(f"A train leaves at {when} local time (UTC{start.strftime('%z')[:3]}:{start.strftime('%z')[3:]}) "
                       f"and the trip takes {hours} hours {minutes} minutes. When does it arrive, in the same "
                       f"local time?", end.isoformat(), Spec())
    return Content(f"A backup started at {when} UTC and ran for {hours} hours {minutes} minutes. At what date and "
                   f"time (UTC) did it finish?", end.isoformat(), Spec())


@generator("duration")
def duration(rng: random.Random) -> Content:
    """How long from one moment to another; the answer is in seconds."""
    start = dt.datetime(2024, 3, 4, rng.randint(0, 23), rng.randint(0, 59))
    end = start + dt.timedelta(days=rng.choice([0, 0, 1, 2]), hours=rng.randint(0, 23), minutes=rng.randint(1, 59))
    return Content(f"How long is it from {start:%H:%M} on March {start.day} to {end:%H:%M} on March {end.day}?",
                   int((end - start).total_seconds()), Spec())


# -- lists and multi-part questions -------------------------------------------------------------------------


@generator("items")
def items(rng: random.Random, *, numbers: bool = False) -> Content:
    """A short list: sorted words, primes in a range, multiples, sorted numbers (`numbers`: no words)."""
    form = rng.choice(["primes", "multiples", "sorted"] + ([] if numbers else ["words", "words"]))
    if form == "words":
        words = rng.sample(WORDS, rng.randint(3, 6))
        return Content(f"Sort these words alphabetically: {', '.join(words)}.", sorted(words), Spec("list"))
    if form == "primes":
        low = rng.randint(10, 80)
        primes = [n for n in range(low, low + 25) if _is_prime(n)]
        return Content(f"List the prime numbers between {low} and {low + 24}, in increasing order.", primes, Spec("list"))
    if form == "multiples":
        k, n = rng.randint(3, 19), rng.randint(3, 6)
        return Content(f"List the first {n} positive multiples of {k}, in increasing order.",
                       [k * i for i in range(1, n + 1)], Spec("list"))
    values = rng.sample(range(-50, 200), rng.randint(4, 7))
    return Content(f"Sort these numbers from smallest to largest: {', '.join(map(str, values))}.", sorted(values),
                   Spec("list"))


_PART_FORMS = ["integer", "word", "decimal"]


@generator("parts")
def parts(rng: random.Random, *, labels: str = "letters") -> Content:
    """Two to four small questions answered together, in order; labelled (a), (b)… or 1., 2., …"""
    questions = [GENERATORS[rng.choice(_PART_FORMS)](rng) for _ in range(rng.randint(2, 4))]
    tags = [f"({chr(97 + i)})" if labels == "letters" else f"{i + 1}." for i in range(len(questions))]
    listing = "\n".join(f"{tag} {q.question}" for tag, q in zip(tags, questions))
    return Content(f"Answer each part.\n{listing}", [q.answer for q in questions], Spec("list", count=len(questions)))


# -- records and tables --------------------------------------------------------------------------------------


def _person(rng: random.Random) -> dict[str, Any]:
    return {"name": f"{rng.choice(FIRST_NAMES)} {rng.choice(SURNAMES)}", "age": rng.randint(19, 88),
            "city": rng.choice(CITIES), "occupation": rng.choice(OCCUPATIONS)}


@generator("person")
def person(rng: random.Random) -> Content:
    p = _person(rng)
    keys = ["name", *rng.sample(["age", "city", "occupation"], rng.randint(2, 3))]
    text = f"{p['name']} is a {p['age']}-year-old {p['occupation']} who lives in {p['city']}."
    return Content(f"Read the sentence and extract the fields {', '.join(keys)}: \"{text}\"",
                   {k: p[k] for k in keys}, Spec("record", keys=tuple(keys)))


_STATS = {"minimum": min, "maximum": max, "sum": sum, "count": len, "range": lambda v: max(v) - min(v)}


@generator("stats")
def stats(rng: random.Random) -> Content:
    values = [rng.randint(-20, 99) for _ in range(rng.randint(4, 8))]
    keys = sorted(rng.sample(list(_STATS), 3), key=list(_STATS).index)
    return Content(f"For the numbers {', '.join(map(str, values))}, give the {', '.join(keys)}.",
                   {k: _STATS[k](values) for k in keys}, Spec("record", keys=tuple(keys)))


@generator("quantity")
def quantity(rng: random.Random) -> Content:
    """A unit conversion; the answer is {"value": …, "unit": symbol}."""
    source, target, factor = rng.choice(CONVERSIONS)
    value = Fraction(rng.randint(1, 999), 10)
    return Content(f"Convert {canonical(value)} {UNITS[source][1]} to {UNITS[target][1]}.",
                   {"value": canonical(value * factor), "unit": target}, Spec("record", keys=("value", "unit")))


@generator("powers")
def powers(rng: random.Random) -> Content:
    ns = sorted(rng.sample(range(2, 21), rng.randint(3, 5)))
    return Content(f"Make a table with one row for each of the numbers {', '.join(map(str, ns))}: the number (n), "
                   f"its square and its cube.", [{"n": n, "square": n * n, "cube": n**3} for n in ns],
                   Spec("table", columns=("n", "square", "cube")))


@generator("people")
def people(rng: random.Random) -> Content:
    group = [_person(rng) for _ in range(rng.randint(2, 4))]
    while len({p["name"] for p in group}) < len(group):
        group = [_person(rng) for _ in range(len(group))]
    text = " ".join(f"{p['name']} ({p['age']}) lives in {p['city']}." for p in group)
    return Content(f"Make a table of these people with their name, age and city, in the order given: {text}",
                   [{k: p[k] for k in ("name", "age", "city")} for p in group],
                   Spec("table", columns=("name", "age", "city")))


@generator("inventory")
def inventory(rng: random.Random) -> Content:
    goods = rng.sample(GOODS, rng.randint(2, 4))
    rows = []
    for item in goods:
        quantity_, price = rng.randint(1, 20), Fraction(rng.randint(99, 9999), 100)
        rows.append({"item": item, "quantity": quantity_, "price": canonical(price),
                     "total": canonical(price * quantity_)})
    listing = "; ".join(f"{r['quantity']} × {r['item']} at {float(Fraction(r['price'])):.2f} each" for r in rows)
    return Content(f"Make a table with the item, quantity, unit price and line total of each purchase, in the order "
                   f"given: {listing}.", rows, Spec("table", columns=("item", "quantity", "price", "total")))
