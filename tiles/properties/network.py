"""Network types: addresses, host names, domains, URLs, e-mail and IP ranges.

``ip_ranges`` and ``network_address_list`` keep Ops Manager's
comma-separated string form; ``parse_ip_ranges()`` is shared with the
manifest accessors.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

from tiles.properties.base import PropertyError
from tiles.properties.scalar import StringType, csv_items

_LABEL = r"(?!-)[A-Za-z0-9_-]{1,63}(?<!-)"
_DOMAIN_RE = re.compile(rf"^(?=.{{1,253}}\.?$){_LABEL}(?:\.{_LABEL})*\.?$")
_EMAIL_RE = re.compile(r"^[^@\s]+@([^@\s]+)$")


def _is_domain(text: str) -> bool:
    return bool(_DOMAIN_RE.match(text))


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _is_host(text: str) -> bool:
    if text.startswith("[") and text.endswith("]"):
        return _is_ip(text[1:-1])
    return _is_ip(text) or _is_domain(text)


def parse_ip_ranges(text: str) -> list[str]:
    """Split and check an Ops Manager IP range list.

    Entries are comma separated: a single address, ``first-last`` (same IP
    version, first <= last) or a CIDR. Returns the entries without spaces.
    Raises PropertyError naming the bad entry.
    """
    entries = []
    for raw in str(text).split(","):
        entry = raw.strip()
        if not entry:
            continue
        if "-" in entry:
            first, _, last = (p.strip() for p in entry.partition("-"))
            try:
                a, b = ipaddress.ip_address(first), ipaddress.ip_address(last)
            except ValueError:
                raise PropertyError(f"'{entry}' is not a valid IP range") from None
            if a.version != b.version:
                raise PropertyError(f"'{entry}' mixes IPv4 and IPv6")
            if a > b:
                raise PropertyError(f"'{entry}': the first address is after the last")
            entries.append(f"{a}-{b}")
        elif "/" in entry:
            try:
                entries.append(str(ipaddress.ip_network(entry, strict=False)))
            except ValueError:
                raise PropertyError(f"'{entry}' is not a valid CIDR") from None
        else:
            try:
                entries.append(str(ipaddress.ip_address(entry)))
            except ValueError:
                raise PropertyError(f"'{entry}' is not a valid IP address") from None
    return entries


# --------------------------------------------------------------------------
# Types


class EmailType(StringType):
    name = "email"

    def coerce(self, bp, value, ctx):
        text = super().coerce(bp, value, ctx).strip()
        m = _EMAIL_RE.match(text)
        if not m or not _is_domain(m.group(1)) or "." not in m.group(1):
            raise PropertyError(f"'{text}' is not a valid email address")
        return text


class DomainType(StringType):
    name = "domain"

    def coerce(self, bp, value, ctx):
        text = super().coerce(bp, value, ctx).strip()
        if not _is_domain(text):
            raise PropertyError(f"'{text}' is not a valid domain name")
        return text


class WildcardDomainType(StringType):
    name = "wildcard_domain"

    def coerce(self, bp, value, ctx):
        text = super().coerce(bp, value, ctx).strip()
        if not _is_domain(text[2:] if text.startswith("*.") else text):
            raise PropertyError(f"'{text}' is not a valid (wildcard) domain name")
        return text


class UrlType(StringType):
    schemes: tuple[str, ...] = ()

    def _check(self, text: str) -> None:
        try:
            parts = urlsplit(text)
            parts.port  # noqa: B018 - raises ValueError on a bad port
        except ValueError:
            raise PropertyError(f"'{text}' is not a valid URL") from None
        if parts.scheme.lower() not in self.schemes:
            raise PropertyError(f"'{text}' must start with {' or '.join(self.schemes)}://")
        if not parts.hostname or not _is_host(parts.hostname):
            raise PropertyError(f"'{text}' has no valid host")


class HttpUrlType(UrlType):
    name = "http_url"
    schemes = ("http", "https")

    def coerce(self, bp, value, ctx):
        text = super().coerce(bp, value, ctx).strip()
        self._check(text)
        return text


class LdapUrlType(UrlType):
    name = "ldap_url"
    schemes = ("ldap", "ldaps")

    def coerce(self, bp, value, ctx):
        text = super().coerce(bp, value, ctx).strip()
        # Several servers may be listed, separated by spaces or commas.
        for url in re.split(r"[\s,]+", text):
            self._check(url)
        return text


class IpAddressType(StringType):
    name = "ip_address"

    def coerce(self, bp, value, ctx):
        text = super().coerce(bp, value, ctx).strip()
        if not _is_ip(text):
            raise PropertyError(f"'{text}' is not a valid IP address")
        return text


class IpRangesType(StringType):
    name = "ip_ranges"

    def coerce(self, bp, value, ctx):
        if isinstance(value, list | tuple):
            value = ",".join(str(v) for v in value)
        text = super().coerce(bp, value, ctx)
        return ",".join(parse_ip_ranges(text))


class NetworkAddressType(StringType):
    name = "network_address"

    def coerce(self, bp, value, ctx):
        text = super().coerce(bp, value, ctx).strip()
        if not _is_host(text):
            raise PropertyError(f"'{text}' is not a valid IP address or host name")
        return text


class NetworkAddressListType(StringType):
    name = "network_address_list"

    def coerce(self, bp, value, ctx):
        items = csv_items(value)
        for item in items:
            if not _is_host(item):
                raise PropertyError(f"'{item}' is not a valid IP address or host name")
        return ",".join(items)
