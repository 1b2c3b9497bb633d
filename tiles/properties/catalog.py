"""Catalog types: names picked from what the director knows.

VM types, disk types and availability zones are checked against the
``ValidationContext`` when it knows them (``None`` means do not check); the
stemcell selector is a plain string.
"""

from __future__ import annotations

from tiles.properties.base import PropertyError, PropertyType
from tiles.properties.scalar import StringType


class _CatalogType(PropertyType):
    catalog = ""  # ValidationContext attribute holding the allowed names
    noun = ""

    def coerce(self, bp, value, ctx):
        if isinstance(value, bool | list | dict):
            raise PropertyError(f"must be a {self.noun} name")
        name = str(value)
        allowed = getattr(ctx, self.catalog)
        if allowed is not None and name not in allowed:
            raise PropertyError(f"'{name}' is not a known {self.noun}")
        return name


class VmTypeDropdownType(_CatalogType):
    name = "vm_type_dropdown"
    catalog, noun = "vm_types", "VM type"


class DiskTypeDropdownType(_CatalogType):
    name = "disk_type_dropdown"
    catalog, noun = "disk_types", "disk type"


class AzSingleSelectType(_CatalogType):
    name = "service_network_az_single_select"
    catalog, noun = "availability_zones", "availability zone"


class AzMultiSelectType(PropertyType):
    name = "service_network_az_multi_select"

    def coerce(self, bp, value, ctx):
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list | tuple) or not all(isinstance(i, str) for i in items):
            raise PropertyError("must be a list of availability zone names")
        if ctx.availability_zones is not None:
            for item in items:
                if item not in ctx.availability_zones:
                    raise PropertyError(f"'{item}' is not a known availability zone")
        return list(dict.fromkeys(items))


class PlainAzMultiSelectType(AzMultiSelectType):
    name = "az_multi_select"


class StemcellSelectorType(StringType):
    name = "stemcell_selector"
