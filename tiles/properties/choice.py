"""Choice types: dropdowns, multi-select options, SMTP authentication, selectors.

A ``selector`` value is the chosen option's ``select_value`` (an option
*name* is accepted on input, as ``om`` configs use it); the properties of an
option are separate references ``.properties.sel.<option name>.<prop>``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tiles.properties.base import PropertyError, PropertyType, as_list, is_empty


class _ChoiceMixin:
    @staticmethod
    def option_names(bp: Mapping) -> list[str]:
        return [str(o.get("name")) for o in as_list(bp.get("options")) if isinstance(o, Mapping)]


class DropdownSelectType(_ChoiceMixin, PropertyType):
    name = "dropdown_select"

    def coerce(self, bp, value, ctx):
        names = self.option_names(bp)
        if str(value) not in names:
            raise PropertyError(f"'{value}' is not one of the options: {', '.join(names)}")
        return str(value)

    def default(self, bp):
        if not is_empty(bp.get("default")):
            return super().default(bp)
        for o in as_list(bp.get("options")):
            if isinstance(o, Mapping) and o.get("default") is True:
                return str(o.get("name"))
        return None


class SmtpAuthenticationType(PropertyType):
    name = "smtp_authentication"
    choices = ("plain", "login", "cram_md5", "none")

    def coerce(self, bp, value, ctx):
        if str(value) not in self.choices:
            raise PropertyError(f"'{value}' is not one of: {', '.join(self.choices)}")
        return str(value)


class MultiSelectOptionsType(_ChoiceMixin, PropertyType):
    name = "multi_select_options"

    def coerce(self, bp, value, ctx):
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list | tuple):
            raise PropertyError("must be a list of option names")
        names = self.option_names(bp)
        out: list[str] = []
        for item in items:
            if str(item) not in names:
                raise PropertyError(f"'{item}' is not one of the options: {', '.join(names)}")
            if str(item) not in out:
                out.append(str(item))
        return out


class SelectorType(PropertyType):
    name = "selector"

    @staticmethod
    def options(bp: Mapping) -> list[Mapping]:
        return [o for o in as_list(bp.get("option_templates")) if isinstance(o, Mapping)]

    @staticmethod
    def select_value(option: Mapping) -> str:
        sv = option.get("select_value")
        return str(option.get("name") if sv is None else sv)

    def find_option(self, bp: Mapping, value: Any) -> Mapping | None:
        """The option chosen by a select_value or an option name."""
        if value is None:
            return None
        for o in self.options(bp):
            if self.select_value(o) == str(value):
                return o
        for o in self.options(bp):
            if str(o.get("name")) == str(value):
                return o
        return None

    def coerce(self, bp, value, ctx):
        option = self.find_option(bp, value)
        if option is None:
            choices = ", ".join(self.select_value(o) for o in self.options(bp))
            raise PropertyError(f"'{value}' is not one of the options: {choices}")
        return self.select_value(option)
