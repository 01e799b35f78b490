"""Value kinds, where the whole response is one value in a precise notation: numbers (integers, thousands
separators, fixed decimals, fractions, scientific, percentages, bases, Roman numerals, words), money,
quantities with units, and ISO 8601 (and other) dates, times, date-times and durations.

Each notation is strict (one spelling of a value, no surrounding text) and yields a canonical answer:
numbers as exact decimal strings ("3.5", or "5/6" when the decimal would not end), percentages in percent,
dates as YYYY-MM-DD, times as HH:MM:SS, date-times as ISO 8601 with their offset, durations in seconds.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from collections.abc import Callable
from decimal import Decimal
from fractions import Fraction
from functools import lru_cache
from math import gcd
from typing import Any

from . import kind, renders
from .shape import Invalid, Spec, conform

MAX_NUMBER_CHARS = 80  # longer "numbers" are refused before any conversion (int() is quadratic in length)


def canonical(value: Fraction) -> str:
    """An exact value as a decimal string ("-3.25", "42") when it terminates, else "p/q"."""
    if value.denominator == 1:
        return str(value.numerator)
    rest, twos, fives = value.denominator, 0, 0
    while rest % 2 == 0:
        rest, twos = rest // 2, twos + 1
    while rest % 5 == 0:
        rest, fives = rest // 5, fives + 1
    if rest != 1:
        return f"{value.numerator}/{value.denominator}"
    places = max(twos, fives)
    digits = str(abs(value.numerator) * 10**places // value.denominator).rjust(places + 1, "0")
    return ("-" if value < 0 else "") + digits[:-places] + "." + digits[-places:]


def exact(answer: Any) -> Fraction:
    """A reference number (int, or a string "3.25" / "5/6") as an exact Fraction."""
    return Fraction(str(answer))


def _decimal_text(value: Fraction, places: int) -> str:
    return f"{Decimal(value.numerator) / Decimal(value.denominator):.{places}f}"


# -- number notations: (pattern, reader, writer) -------------------------------------------------------------

_INT = r"(?:0|[1-9]\d*)"


def _re(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.ASCII)  # \d is 0-9 only: "４２" or "٤٢" are not numbers in these notations
_SUPERSCRIPTS = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹⁻", "0123456789-")
_TO_SUPERSCRIPT = str.maketrans("0123456789-", "⁰¹²³⁴⁵⁶⁷⁸⁹⁻")


def _reduced_fraction(sign: str, num: str, den: str) -> Fraction:
    n, d = int(num), int(den)
    if d < 2:
        raise Invalid("the denominator must be at least 2")
    if gcd(n, d) != 1:
        raise Invalid(f"{num}/{den} is not in lowest terms")
    return Fraction(-n if sign else n, d)


def _mixed(match: re.Match[str]) -> Fraction:
    sign, whole, num, den = match.groups()
    if int(num) >= int(den):
        raise Invalid("the fraction part of a mixed number must be proper (numerator < denominator)")
    part = _reduced_fraction("", num, den)
    value = int(whole) + part if whole else part
    return -value if sign else value


def _write_mixed(value: Fraction) -> str:
    whole, part = divmod(abs(value), 1)
    text = f"{whole} {part.numerator}/{part.denominator}" if whole else f"{part.numerator}/{part.denominator}"
    return ("-" if value < 0 else "") + text if part else ("-" if value < 0 else "") + str(whole)


def _mantissa_exponent(value: Fraction) -> tuple[str, int]:
    sign, digits, exponent = Decimal(canonical(value)).normalize().as_tuple()
    text = "".join(map(str, digits))
    mantissa = text[0] + ("." + text[1:] if len(text) > 1 else "")
    return ("-" if sign else "") + mantissa, len(digits) + exponent - 1


def _scientific(mantissa: str, exponent: str) -> Fraction:
    if abs(int(exponent)) > 400:
        raise Invalid("the exponent is out of range")
    return Fraction(mantissa) * Fraction(10) ** int(exponent)


_ROMAN = [(1000, "M"), (900, "CM"), (500, "D"), (400, "CD"), (100, "C"), (90, "XC"), (50, "L"), (40, "XL"),
          (10, "X"), (9, "IX"), (5, "V"), (4, "IV"), (1, "I")]


def to_roman(n: int) -> str:
    out = []
    for value, letters in _ROMAN:
        count, n = divmod(n, value)
        out.append(letters * count)
    return "".join(out)


def _from_roman(text: str) -> Fraction:
    values = {"I": 1, "V": 5, "X": 10, "L": 50, "C": 100, "D": 500, "M": 1000}
    total = sum(-values[a] if values[a] < values[b] else values[a] for a, b in zip(text, text[1:] + "I"))
    if not 1 <= total <= 3999 or to_roman(total) != text:
        raise Invalid(f"{text!r} is not a standard Roman numeral (1–3999)")
    return Fraction(total)


_ONES = "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen " \
        "seventeen eighteen nineteen".split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
_SCALES = [(10**9, "billion"), (10**6, "million"), (1000, "thousand")]


def to_words(n: int) -> str:
    """English words for 0 ≤ n < 10**12: "one hundred twenty-three thousand four hundred five"."""
    if n < 20:
        return _ONES[n]
    if n < 100:
        return _TENS[n // 10] + (f"-{_ONES[n % 10]}" if n % 10 else "")
    if n < 1000:
        return f"{_ONES[n // 100]} hundred" + (f" {to_words(n % 100)}" if n % 100 else "")
    for scale, name in _SCALES:
        if n >= scale:
            return f"{to_words(n // scale)} {name}" + (f" {to_words(n % scale)}" if n % scale else "")
    raise AssertionError(n)


def _from_words(text: str) -> Fraction:
    small = {w: i for i, w in enumerate(_ONES)} | {w: 10 * i for i, w in enumerate(_TENS) if w != "_"}
    scales = {name: scale for scale, name in _SCALES}
    total = current = 0
    for word in re.split(r"[ -]", text):
        if word in small:
            current += small[word]
        elif word == "hundred":
            current *= 100
        elif word in scales:
            total, current = total + current * scales[word], 0
        else:
            raise Invalid(f"{word!r} is not a number word")
    value = total + current
    if value >= 10**12 or to_words(value) != text:
        raise Invalid(f"write the number as {to_words(value)!r}" if value < 10**12 else "the number is too large")
    return Fraction(value)


def _ratio(match: re.Match[str]) -> str:
    a, b = int(match[1]), int(match[2])
    if gcd(a, b) != 1:
        raise Invalid(f"{a}:{b} is not in lowest terms")
    return f"{a}:{b}"


# notation → (pattern, reader of the match → Fraction (or text), writer of the reference answer → text)
Notation = tuple[str, Callable[[re.Match[str]], Any], Callable[[Any, int], str]]
NOTATIONS: dict[str, Notation] = {
    "integer": (rf"-?{_INT}", lambda m: Fraction(m[0]), lambda a, p: str(exact(a))),
    "signed": (r"[+-][1-9]\d*|0", lambda m: Fraction(m[0]), lambda a, p: f"{int(a):+d}" if int(a) else "0"),
    "thousands": (r"-?(?:0|[1-9]\d{0,2}(?:,\d{3})*)", lambda m: Fraction(m[0].replace(",", "")),
                  lambda a, p: f"{int(a):,}"),
    "decimal": (rf"-?{_INT}\.\d+", lambda m: Fraction(m[0]), lambda a, p: _decimal_text(exact(a), p)),
    "decimal_comma": (rf"-?{_INT},\d+", lambda m: Fraction(m[0].replace(",", ".")),
                      lambda a, p: _decimal_text(exact(a), p).replace(".", ",")),
    "fraction": (r"(-?)([1-9]\d*)/([1-9]\d*)", lambda m: _reduced_fraction(*m.groups()),
                 lambda a, p: str(exact(a))),
    "latex_frac": (r"(-?)\\frac\{([1-9]\d*)\}\{([1-9]\d*)\}", lambda m: _reduced_fraction(*m.groups()),
                   lambda a, p: f"{'-' if exact(a) < 0 else ''}\\frac{{{abs(exact(a).numerator)}}}{{{exact(a).denominator}}}"),
    "mixed": (r"(-?)(?:([1-9]\d*) )?([1-9]\d*)/([1-9]\d*)", _mixed, lambda a, p: _write_mixed(exact(a))),
    "scientific_e": (r"(-?[1-9](?:\.\d+)?)e(-?(?:0|[1-9]\d{0,2}))", lambda m: _scientific(m[1], m[2]),
                     lambda a, p: "{}e{}".format(*_mantissa_exponent(exact(a)))),
    "scientific_latex": (r"(-?[1-9](?:\.\d+)?) ?\\times ?10\^\{(-?(?:0|[1-9]\d{0,2}))\}",
                         lambda m: _scientific(m[1], m[2]),
                         lambda a, p: "{} \\times 10^{{{}}}".format(*_mantissa_exponent(exact(a)))),
    "scientific_unicode": (r"(-?[1-9](?:\.\d+)?) × 10(⁻?(?:⁰|[¹²³⁴⁵⁶⁷⁸⁹][⁰¹²³⁴⁵⁶⁷⁸⁹]{0,2}))",
                           lambda m: _scientific(m[1], m[2].translate(_SUPERSCRIPTS)),
                           lambda a, p: (lambda m, e: f"{m} × 10{str(e).translate(_TO_SUPERSCRIPT)}")(
                               *_mantissa_exponent(exact(a)))),
    "percent": (rf"(-?{_INT}(?:\.\d+)?)%", lambda m: Fraction(m[1]), lambda a, p: f"{canonical(exact(a))}%"),
    "percent_fixed": (rf"(-?{_INT}\.\d+)%", lambda m: Fraction(m[1]), lambda a, p: f"{_decimal_text(exact(a), p)}%"),
    "hex": (r"0x(?:0|[1-9a-fA-F][0-9a-fA-F]*)", lambda m: Fraction(int(m[0], 16)), lambda a, p: hex(int(a))),
    "binary": (r"0b(?:0|1[01]*)", lambda m: Fraction(int(m[0], 2)), lambda a, p: bin(int(a))),
    "octal": (r"0o(?:0|[1-7][0-7]*)", lambda m: Fraction(int(m[0], 8)), lambda a, p: oct(int(a))),
    "roman": (r"[MDCLXVI]+", lambda m: _from_roman(m[0]), lambda a, p: to_roman(int(a))),
    "words": (r"[a-z]+(?:[ -][a-z]+)*", lambda m: _from_words(m[0]), lambda a, p: to_words(int(a))),
    "ratio": (r"([1-9]\d*):([1-9]\d*)", _ratio, lambda a, p: str(a)),
}
_COMPILED = {name: _re(pattern) for name, (pattern, _, _) in NOTATIONS.items()}


@kind("number", shapes={"scalar"})
def number(text: str, spec: Spec, *, notation: str, places: int = 0) -> str:
    """The whole response is one number in `notation`; `places` fixes the digits after the decimal point."""
    if len(text) > MAX_NUMBER_CHARS and notation != "words":
        raise Invalid(f"too long to be a number ({len(text)} characters)")
    match = _COMPILED[notation].fullmatch(text)
    if match is None:
        raise Invalid(f"not a number in {notation.replace('_', ' ')} notation: {text[:40]!r}")
    if places and notation in ("decimal", "decimal_comma", "percent_fixed"):
        decimals = len(re.split(r"[.,]", match[0].rstrip("%"))[-1])
        if decimals != places:
            raise Invalid(f"write exactly {places} digits after the decimal point, not {decimals}")
    value = NOTATIONS[notation][1](match)
    return value if isinstance(value, str) else canonical(value)


@renders("number")
def render_number(answer: Any, spec: Spec, *, notation: str, places: int = 0) -> str:
    return NOTATIONS[notation][2](answer, places)


# -- money and quantities ----------------------------------------------------------------------------------


@lru_cache(maxsize=None)
def _money_pattern(symbol: str, suffix: bool, decimals: int, group: str, point: str, space: bool) -> re.Pattern[str]:
    amount = rf"(?:0|[1-9]\d{{0,2}}(?:{re.escape(group)}\d{{3}})*)" + (rf"{re.escape(point)}\d{{{decimals}}}" if decimals else "")
    gap = " " if space else ""
    return _re(rf"({amount}){gap}{re.escape(symbol)}" if suffix else rf"{re.escape(symbol)}{gap}({amount})")


@kind("money", shapes={"scalar"})
def money(text: str, spec: Spec, *, symbol: str, suffix: bool = False, decimals: int = 2, group: str = ",",
          point: str = ".", space: bool = False) -> str:
    """An amount such as $1,234.50, 1.234,50 €, ¥1,235 or 1,234.50 USD: the symbol (or ISO code) before
    or after, thousands always grouped, exactly `decimals` digits after the point."""
    if len(text) > MAX_NUMBER_CHARS:
        raise Invalid(f"too long to be an amount ({len(text)} characters)")
    match = _money_pattern(symbol, suffix, decimals, group, point, space).fullmatch(text)
    if match is None:
        example = render_money("1234.5", spec, symbol=symbol, suffix=suffix, decimals=decimals, group=group,
                               point=point, space=space)
        raise Invalid(f"write the amount like {example}; got {text[:40]!r}")
    return canonical(Fraction(match[1].replace(group, "").replace(point, ".")))


@renders("money")
def render_money(answer: Any, spec: Spec, *, symbol: str, suffix: bool = False, decimals: int = 2, group: str = ",",
                 point: str = ".", space: bool = False) -> str:
    amount = f"{Decimal(str(answer)):,.{decimals}f}".translate(str.maketrans({",": group, ".": point}))
    gap = " " if space else ""
    return f"{amount}{gap}{symbol}" if suffix else f"{symbol}{gap}{amount}"


# symbol → names (singular, plural, then other accepted spellings)
UNITS: dict[str, tuple[str, ...]] = {
    "mm": ("millimeter", "millimeters", "millimetre", "millimetres"),
    "cm": ("centimeter", "centimeters", "centimetre", "centimetres"),
    "m": ("meter", "meters", "metre", "metres"),
    "km": ("kilometer", "kilometers", "kilometre", "kilometres"),
    "mg": ("milligram", "milligrams"),
    "g": ("gram", "grams"),
    "kg": ("kilogram", "kilograms"),
    "mL": ("milliliter", "milliliters", "millilitre", "millilitres"),
    "L": ("liter", "liters", "litre", "litres"),
    "s": ("second", "seconds"),
    "min": ("minute", "minutes"),
    "h": ("hour", "hours"),
}
_UNIT_OF_NAME = {name: (symbol, i % 2 == 0) for symbol, names in UNITS.items() for i, name in enumerate(names)}
_NUMBER = rf"-?{_INT}(?:\.\d+)?"
_QUANTITY = {
    "symbol": _re(rf"({_NUMBER}) (\S+)"),
    "name": _re(rf"({_NUMBER}) ([a-z]+)"),
    "latex": _re(rf"({_NUMBER})\\,\\mathrm\{{([^{{}}]+)\}}"),
    "brackets": _re(rf"({_NUMBER}) \[([^\[\]]+)\]"),
}


@kind("quantity", shapes={"record"})
def quantity(text: str, spec: Spec, *, style: str) -> Any:
    """A number and a unit: `3500 m`, `3500 meters` (singular only for exactly 1), `3500\\,\\mathrm{m}`,
    `3500 [m]`. The answer is {"value": …, "unit": symbol}."""
    match = _QUANTITY[style].fullmatch(text) if len(text) <= MAX_NUMBER_CHARS else None
    if match is None:
        raise Invalid(f"write a number, then the unit{' name' if style == 'name' else ''} as instructed; "
                      f"got {text[:40]!r}")
    value, unit = Fraction(match[1]), match[2]
    if style == "name":
        if unit not in _UNIT_OF_NAME:
            raise Invalid(f"unknown unit name {unit!r}")
        unit, singular = _UNIT_OF_NAME[unit]
        if singular != (value == 1):
            raise Invalid(f"use the {'singular' if value == 1 else 'plural'} unit name with {match[1]}")
    elif unit not in UNITS:
        raise Invalid(f"unknown unit symbol {unit!r} (known: {', '.join(UNITS)})")
    return conform({"value": canonical(value), "unit": unit}, spec)


@renders("quantity")
def render_quantity(answer: Any, spec: Spec, *, style: str) -> str:
    value, unit = str(answer["value"]), answer["unit"]
    if style == "name":
        return f"{value} {UNITS[unit][0 if exact(value) == 1 else 1]}"
    return {"symbol": f"{value} {unit}", "latex": f"{value}\\,\\mathrm{{{unit}}}", "brackets": f"{value} [{unit}]"}[style]


# -- dates, times, date-times, durations ---------------------------------------------------------------------

MONTHS = "January February March April May June July August September October November December".split()
_MONTH = "|".join(MONTHS)
_DAY = r"[1-9]|[12]\d|3[01]"
_DATES: dict[str, tuple[re.Pattern[str], Callable[[re.Match[str]], dt.date], Callable[[dt.date], str]]] = {
    "iso": (_re(r"(\d{4})-(\d{2})-(\d{2})"), lambda m: dt.date(int(m[1]), int(m[2]), int(m[3])),
            lambda d: d.isoformat()),
    "us": (_re(r"(\d{2})/(\d{2})/(\d{4})"), lambda m: dt.date(int(m[3]), int(m[1]), int(m[2])),
           lambda d: d.strftime("%m/%d/%Y")),
    "eu": (_re(r"(\d{2})/(\d{2})/(\d{4})"), lambda m: dt.date(int(m[3]), int(m[2]), int(m[1])),
           lambda d: d.strftime("%d/%m/%Y")),
    "dotted": (_re(r"(\d{2})\.(\d{2})\.(\d{4})"), lambda m: dt.date(int(m[3]), int(m[2]), int(m[1])),
               lambda d: d.strftime("%d.%m.%Y")),
    "long_us": (_re(rf"({_MONTH}) ({_DAY}), (\d{{4}})"),
                lambda m: dt.date(int(m[3]), MONTHS.index(m[1]) + 1, int(m[2])),
                lambda d: f"{MONTHS[d.month - 1]} {d.day}, {d.year}"),
    "long_eu": (_re(rf"({_DAY}) ({_MONTH}) (\d{{4}})"),
                lambda m: dt.date(int(m[3]), MONTHS.index(m[2]) + 1, int(m[1])),
                lambda d: f"{d.day} {MONTHS[d.month - 1]} {d.year}"),
    "week": (_re(r"(\d{4})-W(\d{2})-([1-7])"), lambda m: dt.date.fromisocalendar(int(m[1]), int(m[2]), int(m[3])),
             lambda d: "{}-W{:02d}-{}".format(*d.isocalendar())),
    "ordinal": (_re(r"(\d{4})-(\d{3})"), lambda m: _ordinal_date(int(m[1]), int(m[2])),
                lambda d: f"{d.year:04d}-{d.timetuple().tm_yday:03d}"),
}


def _ordinal_date(year: int, day: int) -> dt.date:
    if not 1 <= day <= (366 if calendar.isleap(year) else 365):
        raise ValueError(f"{year} has no day {day}")
    return dt.date(year, 1, 1) + dt.timedelta(days=day - 1)


@kind("date", shapes={"scalar"})
def date(text: str, spec: Spec, *, notation: str) -> str:
    pattern, read, write = _DATES[notation]
    match = pattern.fullmatch(text)
    if match is None:
        raise Invalid(f"not a date written like {write(dt.date(2024, 3, 6))}: {text[:40]!r}")
    try:
        return read(match).isoformat()
    except ValueError as exc:
        raise Invalid(f"not a real date: {exc}") from None


@renders("date")
def render_date(answer: Any, spec: Spec, *, notation: str) -> str:
    return _DATES[notation][2](dt.date.fromisoformat(answer))


_TIMES = {
    "hms": _re(r"([01]\d|2[0-3]):([0-5]\d):([0-5]\d)"),
    "hm": _re(r"([01]\d|2[0-3]):([0-5]\d)()"),
    "12h": _re(r"(1[0-2]|[1-9]):([0-5]\d)() (AM|PM)"),
}


@kind("time", shapes={"scalar"})
def time(text: str, spec: Spec, *, notation: str) -> str:
    match = _TIMES[notation].fullmatch(text)
    if match is None:
        raise Invalid(f"not a time written like {render_time('14:05:09' if notation == 'hms' else '14:05:00', spec, notation=notation)}")
    hour = int(match[1])
    if notation == "12h":
        hour = hour % 12 + (12 if match[4] == "PM" else 0)
    return f"{hour:02d}:{match[2]}:{match[3] or '00'}"


@renders("time")
def render_time(answer: Any, spec: Spec, *, notation: str) -> str:
    t = dt.time.fromisoformat(answer)
    if notation == "12h":
        return f"{t.hour % 12 or 12}:{t.minute:02d} {'PM' if t.hour >= 12 else 'AM'}"
    return t.strftime("%H:%M:%S" if notation == "hms" else "%H:%M")


_DATETIMES = {
    "iso_z": _re(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z"),
    "iso_offset": _re(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}[+-]\d{2}:\d{2}"),
    "unix": _re(r"0|[1-9]\d{0,10}"),
    "rfc2822": _re(r"(Mon|Tue|Wed|Thu|Fri|Sat|Sun), (\d{2}) (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) "
                          r"(\d{4}) (\d{2}):(\d{2}):(\d{2}) ([+-])(\d{2})(\d{2})"),
}
_ABBR = [m[:3] for m in MONTHS]


def _read_datetime(notation: str, match: re.Match[str]) -> dt.datetime:
    if notation == "iso_z":
        return dt.datetime.fromisoformat(match[0][:-1] + "+00:00")
    if notation == "iso_offset":
        return dt.datetime.fromisoformat(match[0])
    if notation == "unix":
        return dt.datetime.fromtimestamp(int(match[0]), dt.timezone.utc)
    weekday, day, month, year, hh, mm, ss, sign, oh, om = match.groups()
    offset = dt.timedelta(hours=int(oh), minutes=int(om)) * (-1 if sign == "-" else 1)
    value = dt.datetime(int(year), _ABBR.index(month) + 1, int(day), int(hh), int(mm), int(ss), tzinfo=dt.timezone(offset))
    if value.strftime("%a") != weekday:
        raise ValueError(f"{value.date()} is a {value.strftime('%A')}, not {weekday}")
    return value


@kind("datetime", shapes={"scalar"})
def datetime(text: str, spec: Spec, *, notation: str) -> str:
    """A date-time: ISO 8601 with Z or with a ±HH:MM offset, Unix seconds, or RFC 2822 (weekday checked)."""
    match = _DATETIMES[notation].fullmatch(text)
    if match is None:
        example = render_datetime("2024-03-06T14:05:09+00:00", spec, notation=notation)
        raise Invalid(f"not a date-time written like {example}: {text[:40]!r}")
    try:
        return _read_datetime(notation, match).isoformat()
    except (ValueError, OverflowError, OSError) as exc:
        raise Invalid(f"not a real date-time: {exc}") from None


@renders("datetime")
def render_datetime(answer: Any, spec: Spec, *, notation: str) -> str:
    value = dt.datetime.fromisoformat(answer)
    if notation == "iso_z":
        return value.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    if notation == "unix":
        return str(int(value.timestamp()))
    if notation == "rfc2822":
        return value.strftime("%a, %d ") + _ABBR[value.month - 1] + value.strftime(" %Y %H:%M:%S %z")
    return value.isoformat()


_DURATIONS = {
    "iso": _re(r"P(?:(\d{1,6})D)?(?:T(?=\d)(?:(\d{1,6})H)?(?:(\d{1,6})M)?(?:(\d{1,6})S)?)?"),
    "hms": _re(r"()(\d{1,6}):([0-5]\d):([0-5]\d)"),
    "human": _re(r"(?:(\d{1,6})d(?: |$))?(?:(\d{1,6})h(?: |$))?(?:(\d{1,6})m(?: |$))?(?:(\d{1,6})s)?"),
}


@kind("duration", shapes={"scalar"})
def duration(text: str, spec: Spec, *, notation: str) -> int:
    """A duration in seconds, read from ISO 8601 (P2DT4H35M), H:MM:SS (52:35:00) or 2d 4h 35m."""
    match = _DURATIONS[notation].fullmatch(text)
    if match is None or not any(match.groups()) or text.endswith(" "):
        raise Invalid(f"not a duration written like {render_duration(189300, spec, notation=notation)}: {text[:40]!r}")
    days, hours, minutes, seconds = (int(g or 0) for g in match.groups())
    return ((days * 24 + hours) * 60 + minutes) * 60 + seconds


@renders("duration")
def render_duration(answer: Any, spec: Spec, *, notation: str) -> str:
    minutes, seconds = divmod(int(answer), 60)
    hours, minutes = divmod(minutes, 60)
    if notation == "hms":
        return f"{hours}:{minutes:02d}:{seconds:02d}"
    days, hours = divmod(hours, 24)
    parts = [(days, "D" if notation == "iso" else "d"), (hours, "h"), (minutes, "m"), (seconds, "s")]
    if notation == "human":
        return " ".join(f"{n}{unit}" for n, unit in parts if n) or "0s"
    time_part = "".join(f"{n}{unit.upper()}" for n, unit in parts[1:] if n)
    return "P" + (f"{days}D" if days else "") + (f"T{time_part}" if time_part else "")
