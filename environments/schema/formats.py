"""The format checker both validators share.

jsonschema's default FormatChecker has no "date-time" check unless an optional package is installed, so
RFC 3339 date-times are checked here; every other format keeps jsonschema's own check. The pydantic side
uses native types where pydantic has them (datetime, date, UUID) and this checker where it has none
(email, which pydantic checks only with an optional package).
"""

from __future__ import annotations

import datetime as dt
import re

from jsonschema import FormatChecker

# RFC 3339 §5.6: full-date "T" full-time, with a mandatory offset; T and Z are case-insensitive
_DATE_TIME = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.\d+)?(?:[Zz]|[+-](\d{2}):(\d{2}))", re.ASCII)

FORMATS = FormatChecker()


@FORMATS.checks("date-time")
def is_date_time(value: object) -> bool:
    """RFC 3339 date-time. Leap seconds (":60") are refused, as pydantic refuses them."""
    if not isinstance(value, str):
        return True  # formats constrain strings only; other types are the "type" keyword's business
    match = _DATE_TIME.fullmatch(value)
    if match is None:
        return False
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    offset_hour, offset_minute = (int(g) if g else 0 for g in match.groups()[6:])
    try:
        dt.datetime(year, month, day, hour, minute, second)
    except ValueError:
        return False
    return offset_hour <= 23 and offset_minute <= 59
