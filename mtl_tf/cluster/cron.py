"""Cron expressions as a Kubernetes CronJob reads them (five fields, or a macro).

Fields: minute 0-59, hour 0-23, day of month 1-31, month 1-12 (or JAN-DEC), day of week
0-7 (0 and 7 are Sunday, or SUN-SAT). Each field is a comma-separated list of ``*``, a
value, or a range ``a-b``, each optionally with a step ``/n``; ``?`` stands for ``*`` in the
day fields. Macros: ``@yearly`` (``@annually``), ``@monthly``, ``@weekly``, ``@daily``
(``@midnight``), ``@hourly``. A time zone goes in the CronJob's ``timeZone``, never in the
expression (Kubernetes refuses ``TZ=`` and ``CRON_TZ=`` there).
"""

from __future__ import annotations

from typing import NamedTuple

MACROS = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")
MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
DAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")


class Field(NamedTuple):
    name: str
    low: int
    high: int
    names: tuple[str, ...] = ()
    first_name: int = 0  # the value of names[0]
    question: bool = False


FIELDS = (Field("minute", 0, 59), Field("hour", 0, 23), Field("day of month", 1, 31, question=True),
          Field("month", 1, 12, MONTHS, 1), Field("day of week", 0, 7, DAYS, 0, question=True))


def check_cron(expression: str) -> str:
    """``expression`` with single spaces between its fields, if Kubernetes would accept it.

    Raises:
        ValueError: naming the field, the value received and what it allows.
    """
    text = " ".join(str(expression).split())
    if text.upper().startswith(("TZ=", "CRON_TZ=")):
        raise ValueError(f"cron {expression!r}: a time zone goes in --time-zone (the CronJob's timeZone), not in "
                         "the expression")
    if text.startswith("@"):
        if text.lower() not in MACROS:
            raise ValueError(f"cron {expression!r}: unknown macro; allowed: {', '.join(MACROS)}")
        return text.lower()
    parts = text.split(" ")
    if len(parts) != len(FIELDS):
        raise ValueError(f"cron {expression!r} has {len(parts) if text else 0} field(s); a schedule has 5: minute "
                         "hour day-of-month month day-of-week, e.g. '0 2 * * *' (02:00 every day), or a macro such "
                         "as @daily")
    for field, part in zip(FIELDS, parts):
        for item in part.split(","):
            _check_item(field, item, expression)
    return text


def _check_item(field: Field, item: str, expression: str) -> None:
    where = f"cron {expression!r}: {field.name} {item!r}"
    allowed = f"{field.low}-{field.high}" + (f" or {field.names[0]}-{field.names[-1]}" if field.names else "")
    body, slash, step = item.partition("/")
    if slash and not (step.isdigit() and int(step) >= 1):
        raise ValueError(f"{where}: the step after '/' must be a whole number >= 1; received {step!r}")
    if body == "*" or (body == "?" and field.question):
        return
    low_text, dash, high_text = body.partition("-")
    low = _value(field, low_text, where, allowed)
    high = _value(field, high_text, where, allowed) if dash else low
    if high < low:
        raise ValueError(f"{where}: the range runs backwards ({low_text} > {high_text}); allowed: {allowed}")


def _value(field: Field, text: str, where: str, allowed: str) -> int:
    upper = text.upper()
    if upper in field.names:
        return field.names.index(upper) + field.first_name
    if text.isdigit() and field.low <= int(text) <= field.high:
        return int(text)
    raise ValueError(f"{where}: {text!r} is not allowed; allowed: {allowed}, '*', ranges a-b, lists a,b and "
                     "steps /n")
