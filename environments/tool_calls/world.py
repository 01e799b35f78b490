"""A small simulated world and the tools that act on it, generated deterministically from a seed.

The world is plain JSON (weather by city, products with price and stock, a calendar, exchange rates), so it
travels inside `task.verifier` and a task replays identically anywhere. Every tool is a pure function of the
world and its arguments. `execute` checks a call against the tool's schema first and answers a bad call as a
real API would, with an error the model can read and recover from.

Each tool also phrases a request for itself (`request(rng, world) -> (sentence, accepted arguments)`), used by
the single-turn task generator: the sentence fixes every argument value, and the accepted arguments are BFCL's
possible answer for it ("" among the accepted values: the argument may be left out).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..types import ToolSpec
from .checker import argument_errors
from .hermes import Call

World = dict[str, Any]
Request = tuple[str, dict[str, list]]

CITIES = ["Lisbon", "Oslo", "Nairobi", "Lima", "Osaka", "Denver", "Cairo", "Hanoi", "Quito", "Perth", "Tallinn",
          "Accra", "Montreal", "Seville", "Busan", "Tbilisi"]
CONDITIONS = ["sunny", "cloudy", "light rain", "heavy rain", "snow", "fog", "windy"]
PRODUCTS = ["desk lamp", "water bottle", "notebook", "backpack", "headphones", "yoga mat", "coffee grinder",
            "umbrella", "keyboard", "travel mug", "bike light", "phone stand"]
USD_RATES = {"USD": 1.0, "EUR": 0.92, "GBP": 0.79, "JPY": 151.0, "CHF": 0.9, "CAD": 1.36, "AUD": 1.52}
MEETINGS = ["Budget review", "Design sync", "Hiring panel", "Customer call", "Sprint planning", "Board prep",
            "Vendor demo", "Team retro", "Quarterly plan", "Lunch with Kofi"]
PEOPLE = ["ana", "ben", "chen", "dara", "emeka", "fatima", "goran", "hana", "ivan", "jun"]
SUBJECTS = ["Invoice 2291", "Friday offsite", "Contract draft", "Holiday schedule", "New badge"]
BODIES = ["Please review the attached draft.", "The meeting moved to 3pm.", "Thanks for your help today.",
          "Can we talk tomorrow?", "The package has arrived."]
REMINDERS = ["call the dentist", "water the plants", "submit the report", "buy milk", "stretch"]
PHRASES = ["Where is the train station?", "Thank you very much.", "The meeting starts at noon.", "Good morning!"]
LANGUAGES = ["French", "German", "Spanish", "Italian", "Japanese"]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December"]


def make_world(rng: random.Random) -> World:
    cities = rng.sample(CITIES, 5)
    dates = [f"2025-{rng.randint(1, 12):02d}-{day:02d}" for day in sorted(rng.sample(range(1, 29), 3))]
    return {
        "weather": {c: {"temperature_c": rng.randint(-10, 38), "condition": rng.choice(CONDITIONS),
                        "humidity_percent": rng.randint(10, 95)} for c in cities},
        "products": {p: {"price_usd": round(rng.uniform(3, 400), 2), "in_stock": rng.randint(0, 500)}
                     for p in rng.sample(PRODUCTS, 5)},
        "rates": {code: 1.0 if code == "USD" else round(rate * rng.uniform(0.95, 1.05), 4)
                  for code, rate in USD_RATES.items()},
        "calendar": {date: _day(rng, cities) for date in dates},
    }


def _day(rng: random.Random, cities: list[str]) -> list[dict[str, Any]]:
    starts = sorted(rng.sample(range(8 * 4, 18 * 4), rng.randint(2, 4)))  # quarter hours from 08:00 to 17:45
    return [{"title": title, "start": f"{q // 4:02d}:{q % 4 * 15:02d}", "minutes": rng.choice([15, 30, 45, 60, 90]),
             "city": rng.choice(cities)} for q, title in zip(starts, rng.sample(MEETINGS, len(starts)))]


# -- the tools: what they do ----------------------------------------------------------------------------


def get_weather(world: World, city: str, unit: str = "celsius") -> dict[str, Any]:
    key = _key(world["weather"], city)
    if key is None:
        return {"error": f"no weather data for {city!r}"}
    entry = world["weather"][key]
    celsius = entry["temperature_c"]
    temperature = celsius if unit == "celsius" else round(celsius * 9 / 5 + 32)
    return {"city": key, "temperature": temperature, "unit": unit, "condition": entry["condition"],
            "humidity_percent": entry["humidity_percent"]}


def get_product(world: World, product: str) -> dict[str, Any]:
    key = _key(world["products"], product)
    if key is None:
        return {"error": f"no product named {product!r}"}
    return {"product": key, **world["products"][key]}


def list_events(world: World, date: str) -> dict[str, Any]:
    return {"date": date, "events": world["calendar"].get(date, [])}


def convert_currency(world: World, amount: float, from_currency: str, to_currency: str) -> dict[str, Any]:
    if not 0 <= amount <= 1e12:
        return {"error": "amount must be between 0 and 1e12"}
    rates = world["rates"]
    return {"amount": round(amount / rates[from_currency] * rates[to_currency], 2), "currency": to_currency}


def create_event(world: World, title: str, date: str, start_time: str, duration_minutes: int,
                 attendees: list[str] | None = None) -> dict[str, Any]:
    return {"status": "created", "title": title, "date": date, "start_time": start_time,
            "invited": len(attendees or [])}


def send_email(world: World, to: str, subject: str, body: str, urgent: bool = False) -> dict[str, Any]:
    return {"status": "sent", "to": to, "urgent": urgent}


def set_reminder(world: World, message: str, minutes_from_now: int) -> dict[str, Any]:
    return {"status": "scheduled", "message": message, "minutes_from_now": minutes_from_now}


def order_product(world: World, product: str, quantity: int, express: bool = False) -> dict[str, Any]:
    found = get_product(world, product)
    if "error" in found:
        return found
    if not 1 <= quantity <= found["in_stock"]:
        return {"error": f"quantity must be between 1 and {found['in_stock']} (in stock)"}
    return {"status": "ordered", "product": found["product"], "quantity": quantity, "express": express,
            "total_usd": round(found["price_usd"] * quantity, 2)}


def translate_text(world: World, text: str, target_language: str) -> dict[str, Any]:
    return {"status": "queued", "characters": len(text), "target_language": target_language}


# -- the tools: how a user asks for them ----------------------------------------------------------------


def _ask_weather(rng: random.Random, world: World) -> Request:
    city = rng.choice(list(world["weather"]))
    unit = rng.choice([None, "celsius", "fahrenheit"])
    said = {None: "", "celsius": " in degrees Celsius", "fahrenheit": " in degrees Fahrenheit"}[unit]
    sentence = rng.choice(["What's the weather in {}{}?", "How warm is it in {} right now{}?"]).format(city, said)
    return sentence, {"city": [city], "unit": ["fahrenheit"] if unit == "fahrenheit" else ["", "celsius"]}


def _ask_product(rng: random.Random, world: World) -> Request:
    product = rng.choice(list(world["products"]))
    sentence = rng.choice(["How much is the {} and do we have it in stock?", "Look up the {} in the catalogue."])
    return sentence.format(product), {"product": [product]}


def _ask_events(rng: random.Random, world: World) -> Request:
    date = rng.choice(list(world["calendar"]))
    return f"What's on my calendar on {_spoken_date(rng, date)}?", {"date": [date]}


def _ask_conversion(rng: random.Random, world: World) -> Request:
    source, target = rng.sample(list(USD_RATES), 2)
    amount = rng.choice([rng.randint(5, 5000), round(rng.uniform(1, 999), 2)])
    sentence = rng.choice(["Convert {} {} to {}.", "How much is {} {} in {}?"]).format(amount, source, target)
    return sentence, {"amount": [amount], "from_currency": [source], "to_currency": [target]}


def _ask_event_creation(rng: random.Random, world: World) -> Request:
    title, date = rng.choice(MEETINGS), _random_date(rng)
    start, minutes = f"{rng.randint(8, 17):02d}:{rng.choice([0, 15, 30, 45]):02d}", rng.choice([15, 30, 45, 60, 90])
    guests = [f"{p}@example.com" for p in rng.sample(PEOPLE, rng.randint(0, 2))]
    invite = f" and invite {' and '.join(guests)}" if guests else ""
    length = "an hour" if minutes == 60 and rng.random() < 0.5 else f"{minutes} minutes"
    sentence = f'Schedule "{title}" on {_spoken_date(rng, date)} at {start} for {length}{invite}.'
    return sentence, {"title": [title], "date": [date], "start_time": [start], "duration_minutes": [minutes],
                      "attendees": [guests] if guests else ["", []]}


def _ask_email(rng: random.Random, world: World) -> Request:
    to, subject, body = f"{rng.choice(PEOPLE)}@example.com", rng.choice(SUBJECTS), rng.choice(BODIES)
    urgent, said = _flag(rng, " Mark it as urgent.", " It is not urgent.")
    sentence = f'Email {to} with the subject "{subject}" saying "{body}"{said}'
    return sentence, {"to": [to], "subject": [subject], "body": [body], "urgent": urgent}


def _ask_reminder(rng: random.Random, world: World) -> Request:
    message, minutes = rng.choice(REMINDERS), rng.choice([5, 10, 15, 20, 30, 45, 60, 90, 120, 180])
    hours = minutes // 60
    in_hours = minutes % 60 == 0 and rng.random() < 0.5
    when = f"{hours} hour{'s' if hours > 1 else ''}" if in_hours else f"{minutes} minutes"
    return f"Remind me to {message} in {when}.", {"message": [message], "minutes_from_now": [minutes]}


def _ask_order(rng: random.Random, world: World) -> Request:
    product, quantity = rng.choice(list(world["products"])), rng.randint(1, 5)
    express, said = _flag(rng, " Use express shipping.", " Standard shipping is fine.")
    accepted = {"product": [product], "quantity": [quantity], "express": express}
    return f"Order {quantity} of the {product}.{said}", accepted


def _ask_translation(rng: random.Random, world: World) -> Request:
    text, language = rng.choice(PHRASES), rng.choice(LANGUAGES)
    return f'Translate "{text}" into {language}.', {"text": [text], "target_language": [language]}


def _flag(rng: random.Random, on: str, off: str) -> tuple[list, str]:
    """An optional boolean that defaults to false: said on, said off, or not said at all."""
    value = rng.choice([True, False, None])
    if value is True:
        return [True], on
    return ["", False], off if value is False else ""


def _random_date(rng: random.Random) -> str:
    return f"2025-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"


def _spoken_date(rng: random.Random, date: str) -> str:
    """The ISO date as written, or spelled out (the schema asks for YYYY-MM-DD either way)."""
    if rng.random() < 0.5:
        return date
    year, month, day = date.split("-")
    return f"{MONTHS[int(month) - 1]} {int(day)}, {year}"


def _key(table: dict[str, Any], name: str) -> str | None:
    """The table's key for `name`, ignoring case."""
    return next((key for key in table if key.casefold() == name.casefold()), None)


# -- the catalogue --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tool:
    spec: ToolSpec
    run: Callable[..., dict[str, Any]]  # (world, **arguments) -> result
    request: Callable[[random.Random, World], Request]


def _tool(run: Callable[..., dict[str, Any]], request: Callable[[random.Random, World], Request], description: str,
          properties: dict[str, dict[str, Any]], required: list[str]) -> Tool:
    parameters = {"type": "object", "properties": properties, "required": required}
    return Tool(ToolSpec(name=run.__name__, description=description, parameters=parameters), run, request)


_STRING, _INTEGER, _BOOLEAN = {"type": "string"}, {"type": "integer"}, {"type": "boolean"}
_DATE = {"type": "string", "description": "The date, formatted YYYY-MM-DD."}
_CURRENCY = {"type": "string", "enum": list(USD_RATES), "description": "ISO 4217 code."}

TOOLS: dict[str, Tool] = {t.spec.name: t for t in [
    _tool(get_weather, _ask_weather, "Current weather in a city.",
          {"city": {"type": "string", "description": "City name, e.g. Lisbon."},
           "unit": {"type": "string", "enum": ["celsius", "fahrenheit"], "description": "Default: celsius."}},
          ["city"]),
    _tool(get_product, _ask_product, "Price in USD and units in stock of a product in the catalogue.",
          {"product": {"type": "string", "description": "Product name, e.g. desk lamp."}}, ["product"]),
    _tool(list_events, _ask_events, "The user's calendar events on a date.", {"date": _DATE}, ["date"]),
    _tool(convert_currency, _ask_conversion, "Convert an amount of money between currencies at today's rate.",
          {"amount": {"type": "number"}, "from_currency": _CURRENCY, "to_currency": _CURRENCY},
          ["amount", "from_currency", "to_currency"]),
    _tool(create_event, _ask_event_creation, "Add an event to the user's calendar.",
          {"title": _STRING, "date": _DATE,
           "start_time": {"type": "string", "description": "24-hour time, HH:MM."},
           "duration_minutes": _INTEGER,
           "attendees": {"type": "array", "items": {"type": "string"}, "description": "Email addresses to invite."}},
          ["title", "date", "start_time", "duration_minutes"]),
    _tool(send_email, _ask_email, "Send an email.",
          {"to": {"type": "string", "description": "Recipient's email address."}, "subject": _STRING,
           "body": _STRING, "urgent": {"type": "boolean", "description": "Default: false."}},
          ["to", "subject", "body"]),
    _tool(set_reminder, _ask_reminder, "Remind the user of something later.",
          {"message": _STRING, "minutes_from_now": _INTEGER}, ["message", "minutes_from_now"]),
    _tool(order_product, _ask_order, "Order units of a product from the catalogue.",
          {"product": _STRING, "quantity": _INTEGER,
           "express": {"type": "boolean", "description": "Express shipping. Default: false."}},
          ["product", "quantity"]),
    _tool(translate_text, _ask_translation, "Translate a text.",
          {"text": _STRING, "target_language": {"type": "string", "enum": LANGUAGES}}, ["text", "target_language"]),
]}


def execute(world: World, offered: set[str], call: Call) -> dict[str, Any]:
    """Run one call against the world: the tool's result, or {"error": …} for a call the API would refuse."""
    tool = TOOLS.get(call.name)
    if tool is None or call.name not in offered:
        return {"error": f"unknown function {call.name!r}"}
    properties = tool.spec.parameters["properties"]
    problems = argument_errors(tool.spec.parameters, call.arguments) or [
        {"argument": name, "reason": f"must be one of {properties[name]['enum']}"}
        for name, value in call.arguments.items()
        if "enum" in properties[name] and value not in properties[name]["enum"]]
    if problems:
        return {"error": "; ".join(f"{p['argument']}: {p['reason']}" for p in problems)}
    return tool.run(world, **call.arguments)
