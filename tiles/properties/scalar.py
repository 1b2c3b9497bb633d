"""Scalar types: string, text, integer, port, boolean, string list and uuid.

Values are the Python scalar; ``string_list`` keeps Ops Manager's
comma-separated string form.
"""

from __future__ import annotations

import re
import uuid as uuidlib
from collections.abc import Mapping
from typing import Any

from tiles.properties.base import NO_CONTEXT, PropertyError, PropertyType
from tiles.properties.constraints import check_string_constraints


def csv_items(value: Any) -> list[str]:
    """The non-blank items of a comma-separated string or a list, stripped."""
    if isinstance(value, list | tuple):
        items = [str(v) for v in value]
    else:
        items = str(value).split(",")
    return [i.strip() for i in items if i.strip()]


class StringType(PropertyType):
    name = "string"

    def coerce(self, bp, value, ctx):
        if isinstance(value, list | dict):
            raise PropertyError("must be a string")
        if isinstance(value, bool):  # YAML's yes/true in a string field
            return "true" if value else "false"
        return str(value)

    def constraints(self, bp, value, ctx):
        check_string_constraints(bp, value)


class TextType(StringType):
    name = "text"


class IntegerType(PropertyType):
    name = "integer"
    low: int | None = None
    high: int | None = None

    def coerce(self, bp, value, ctx):
        if isinstance(value, bool):
            raise PropertyError("must be an integer")
        if isinstance(value, int):
            n = value
        elif isinstance(value, float) and value.is_integer():
            n = int(value)
        elif isinstance(value, str) and re.fullmatch(r"\s*-?\d[\d_]*\s*", value):
            n = int(value.replace("_", ""))
        else:
            raise PropertyError("must be an integer")
        if self.low is not None and not (self.low <= n <= self.high):
            raise PropertyError(f"must be between {self.low} and {self.high}")
        return n

    def constraints(self, bp, value, ctx):
        c = bp.get("constraints")
        if not isinstance(c, Mapping):
            return
        if "min" in c and value < c["min"]:
            raise PropertyError(f"Value must be greater than or equal to {c['min']}")
        if "max" in c and value > c["max"]:
            raise PropertyError(f"Value must be less than or equal to {c['max']}")
        if "zero_or_min" in c and value != 0 and value < c["zero_or_min"]:
            raise PropertyError(f"Value must be zero or at least {c['zero_or_min']}")
        if c.get("can_only_be_odd_or_zero") and value != 0 and value % 2 == 0:
            raise PropertyError("Value must be an odd number or zero")
        if c.get("modulo") and value % int(c["modulo"]) != 0:
            raise PropertyError(f"Value must be a multiple of {c['modulo']}")
        if c.get("power_of_two") and (value <= 0 or value & (value - 1)):
            raise PropertyError("Value must be a power of two")


class PortType(IntegerType):
    name = "port"
    low, high = 1, 65535


class BooleanType(PropertyType):
    name = "boolean"

    def coerce(self, bp, value, ctx):
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
        raise PropertyError("must be true or false")

    def default(self, bp):
        # A check box always has a value: unchecked is false.
        raw = bp.get("default")
        return False if raw is None else self.coerce(bp, raw, NO_CONTEXT)


class StringListType(StringType):
    name = "string_list"

    def coerce(self, bp, value, ctx):
        if isinstance(value, dict) or isinstance(value, bool):
            raise PropertyError("must be a comma-separated list of strings")
        return ",".join(csv_items(value))


class UuidType(PropertyType):
    name = "uuid"
    generatable = True

    def coerce(self, bp, value, ctx):
        try:
            return str(uuidlib.UUID(str(value)))
        except ValueError:
            raise PropertyError(f"'{value}' is not a UUID") from None
