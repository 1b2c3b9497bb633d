"""Property blueprint types: validation, defaults and the secret/credential flags.

A tile's ``property_blueprints`` declare typed settings (Ops Manager's 32
blueprint types). This module is the one place that knows what each type
accepts, how a value is normalised, what its default is and whether it is a
secret. Everything here is pure: no Django, no I/O, no logging (values may be
secrets, and error messages never echo a secret value back).

Normalised values, the shapes stored per property reference:

- scalar types (string, text, integer, boolean, port, email, domain, ...):
  the Python scalar; ``string_list``, ``network_address_list`` and
  ``ip_ranges`` keep Ops Manager's comma-separated string form.
- ``secret``: ``{"secret": str}``; ``simple_credentials``:
  ``{"identity", "password"}``; ``salted_credentials``: ``{"identity",
  "password", "salt"}``; ``rsa_cert_credentials``: ``{"cert_pem",
  "private_key_pem"}``; ``rsa_pkey_credentials``: ``{"private_key_pem",
  "public_key_pem"}``; ``uuid``: the lower-case UUID string.
- ``selector``: the chosen option's ``select_value`` (an option *name* is
  accepted on input, as ``om`` configs use it); nested option properties are
  separate references ``.properties.sel.<option name>.<prop>``.
- ``collection``: a list of records ``{field name: normalised value}``.
- ``multi_select_options``, ``*_multi_select``: a list of names.

``validate()`` checks one value against its blueprint, ``validate_values()``
a whole set of staged values of a product template, and ``completeness()``
lists the required configurable properties that still have no value.
"""

from __future__ import annotations

import ipaddress
import re
import uuid as uuidlib
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from tiles.template import ProductTemplate

__all__ = [
    "PropertyError",
    "ValidationContext",
    "PropertyType",
    "TYPES",
    "get_type",
    "validate",
    "default",
    "is_secret",
    "is_credential",
    "is_generated",
    "configurable",
    "optional",
    "is_empty",
    "ruby_regex",
    "parse_ip_ranges",
    "validate_collection",
    "validate_values",
    "completeness",
    "REDACTED",
    "redact",
    "unredact",
]


# sha512-crypt hashes the password once per byte of it; passlib refuses
# longer passwords for the same reason.
MAX_SALTED_PASSWORD_BYTES = 4096


_CRYPT_SALT = re.compile(r"[!-#%-9;-~]+")  # printable ASCII but '$' and ':', crypt's separators


def valid_crypt_salt(salt: Any) -> bool:
    """A salt sha512-crypt can embed in ``$6$<salt>$<hash>``."""
    return isinstance(salt, str) and bool(_CRYPT_SALT.fullmatch(salt))


class PropertyError(ValueError):
    """A value does not fit its blueprint; ``message`` is safe to show (no secret)."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class ValidationContext:
    """Facts some types need; ``None`` means "not known, do not check"."""

    vm_types: Collection[str] | None = None
    disk_types: Collection[str] | None = None
    availability_zones: Collection[str] | None = None
    # Values last deployed, by reference, for ``can_only_increase`` and
    # ``freeze_on_deploy``.
    previous_values: Mapping[str, Any] = field(default_factory=dict)


_NO_CONTEXT = ValidationContext()


def _list(node: Any) -> list:
    """``node`` if it is a list, else ``[]``: blueprints are read before (and
    while) the template checker reports a wrongly typed list."""
    return node if isinstance(node, list) else []


def is_empty(value: Any) -> bool:
    """Ops Manager treats nil, blank strings and empty lists as "no value"."""
    return value is None or (isinstance(value, str) and value.strip() == "") or value == []


def optional(bp: Mapping) -> bool:
    return bool(bp.get("optional", False))


def configurable(bp: Mapping, *, in_collection: bool = False) -> bool:
    """Whether the operator sets this property.

    Top-level and job blueprints default to not configurable (Ops Manager's
    rule). Fields of a collection record default to configurable, because real
    tiles (the official example product) list fields without the flag in
    their forms; generated-only types stay non-configurable.
    """
    if "configurable" in bp:
        return bool(bp["configurable"])
    if in_collection:
        return bp.get("type") not in ("uuid", "salted_credentials")
    return False


# --------------------------------------------------------------------------
# Ruby regular expressions (tile constraints are written for Ruby's engine)


_POSIX_CLASSES = {
    "[:alpha:]": "a-zA-Z",
    "[:digit:]": "0-9",
    "[:alnum:]": "a-zA-Z0-9",
    "[:upper:]": "A-Z",
    "[:lower:]": "a-z",
    "[:space:]": r"\s",
    "[:xdigit:]": "0-9a-fA-F",
    "[:punct:]": r"!-/:-@\[-`{-~",
    "[:word:]": r"\w",
}


@lru_cache(maxsize=512)
def ruby_regex(pattern: str) -> re.Pattern:
    """Compile a Ruby regex with Python semantics as close as matters here.

    Ruby's ``^``/``$`` always match at line boundaries (so MULTILINE), ``\\z``
    is Python's ``\\Z``, Ruby's ``\\Z`` allows a final newline, ``\\h`` is a
    hex digit and ``(?<name>`` is a named group. Raises ``re.error``.
    """
    for posix, cls in _POSIX_CLASSES.items():
        pattern = pattern.replace(posix, cls)
    out: list[str] = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            nxt = pattern[i + 1]
            out.append(
                {"z": r"\Z", "Z": r"(?=\n?\Z)", "h": "[0-9a-fA-F]", "H": "[^0-9a-fA-F]"}.get(
                    nxt, ch + nxt
                )
            )
            i += 2
            continue
        if pattern.startswith("(?<", i) and i + 3 < len(pattern) and pattern[i + 3] not in "=!":
            out.append("(?P<")
            i += 3
            continue
        out.append(ch)
        i += 1
    return re.compile("".join(out), re.MULTILINE)


_CRON_FIELD = re.compile(r"^[\d*/,\-A-Za-z?LW#]+$")


def _is_cron(value: str) -> bool:
    value = value.strip()
    if value.startswith("@"):
        return value in (
            "@yearly",
            "@annually",
            "@monthly",
            "@weekly",
            "@daily",
            "@midnight",
            "@hourly",
        ) or bool(re.fullmatch(r"@every \d+[smh](\d+[smh])*", value))
    fields = value.split()
    return len(fields) in (5, 6) and all(_CRON_FIELD.match(f) for f in fields)


def _check_string_constraints(bp: Mapping, text: str) -> None:
    constraints = bp.get("constraints")
    if not constraints:
        return
    if isinstance(constraints, Mapping):
        constraints = [constraints]
    for c in constraints:
        if not isinstance(c, Mapping):
            continue
        if "must_match_regex" in c:
            try:
                rx = ruby_regex(str(c["must_match_regex"]))
            except re.error:
                raise PropertyError("the tile's constraint regex is invalid") from None
            if not rx.search(text):
                raise PropertyError(c.get("error_message") or f"must match {c['must_match_regex']}")
        if c.get("must_be_cron_schedule") and not _is_cron(text):
            raise PropertyError(c.get("error_message") or "must be a cron schedule")


# --------------------------------------------------------------------------
# Syntax helpers shared with accessors


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


def _csv(value: Any) -> list[str]:
    if isinstance(value, list | tuple):
        items = [str(v) for v in value]
    else:
        items = str(value).split(",")
    return [i.strip() for i in items if i.strip()]


# --------------------------------------------------------------------------
# Types


class PropertyType:
    """Base of the blueprint types. Subclasses override ``coerce``."""

    name = ""
    secret = False  # masked as *** when read back
    credential = False  # a credential (Credentials tab, never logged)
    generatable = False  # Ops Manager generates it when not configurable

    def coerce(self, bp: Mapping, value: Any, ctx: ValidationContext) -> Any:
        """Return the normalised form of a non-empty value or raise PropertyError."""
        return value

    def constraints(self, bp: Mapping, value: Any, ctx: ValidationContext) -> None:
        """Check the blueprint's ``constraints`` on a normalised value."""

    def default(self, bp: Mapping) -> Any:
        raw = bp.get("default")
        if is_empty(raw):
            return None
        return self.coerce(bp, raw, _NO_CONTEXT)


class StringType(PropertyType):
    name = "string"

    def coerce(self, bp, value, ctx):
        if isinstance(value, list | dict):
            raise PropertyError("must be a string")
        if isinstance(value, bool):  # YAML's yes/true in a string field
            return "true" if value else "false"
        return str(value)

    def constraints(self, bp, value, ctx):
        _check_string_constraints(bp, value)


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
        return False if raw is None else self.coerce(bp, raw, _NO_CONTEXT)


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
        items = _csv(value)
        for item in items:
            if not _is_host(item):
                raise PropertyError(f"'{item}' is not a valid IP address or host name")
        return ",".join(items)


class StringListType(StringType):
    name = "string_list"

    def coerce(self, bp, value, ctx):
        if isinstance(value, dict) or isinstance(value, bool):
            raise PropertyError("must be a comma-separated list of strings")
        return ",".join(_csv(value))


class _ChoiceMixin:
    @staticmethod
    def option_names(bp: Mapping) -> list[str]:
        return [str(o.get("name")) for o in _list(bp.get("options")) if isinstance(o, Mapping)]


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
        for o in _list(bp.get("options")):
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
        return [o for o in _list(bp.get("option_templates")) if isinstance(o, Mapping)]

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


class CollectionType(PropertyType):
    name = "collection"

    @staticmethod
    def fields(bp: Mapping) -> list[Mapping]:
        # Fields without a text name are reported by the template checker.
        return [
            f
            for f in _list(bp.get("property_blueprints"))
            if isinstance(f, Mapping) and isinstance(f.get("name"), str)
        ]

    def coerce(self, bp, value, ctx):
        records, errors = validate_collection(bp, value, ctx, check_constraints=False)
        if errors:
            path, msg = errors[0]
            raise PropertyError(f"{path}: {msg}" if path else msg)
        return records

    def default(self, bp):
        raw = bp.get("default")
        if is_empty(raw):
            return None
        records, errors = validate_collection(bp, raw, _NO_CONTEXT, check_constraints=False)
        if errors:
            path, msg = errors[0]
            raise PropertyError(f"{path}: {msg}")
        return records


def _cred_dict(value: Any, keys: Iterable[str], what: str) -> dict:
    if not isinstance(value, Mapping):
        raise PropertyError(f"must be a mapping with {what}")
    out = {}
    for k in keys:
        v = value.get(k)
        if not isinstance(v, str) or not v.strip():
            raise PropertyError(f"{k} is required")
        out[k] = v
    return out


class SecretType(PropertyType):
    name = "secret"
    secret = credential = generatable = True

    def coerce(self, bp, value, ctx):
        if isinstance(value, Mapping):
            value = value.get("secret")
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            raise PropertyError("must be a string")
        return {"secret": str(value)}

    def constraints(self, bp, value, ctx):
        _check_string_constraints(bp, value["secret"])

    def default(self, bp):
        return None  # never a literal default for a secret


class SimpleCredentialsType(PropertyType):
    name = "simple_credentials"
    secret = credential = generatable = True

    def coerce(self, bp, value, ctx):
        return _cred_dict(value, ("identity", "password"), "identity and password")

    def default(self, bp):
        return None  # ``default: {identity: vcap}`` is a generation hint


class SaltedCredentialsType(PropertyType):
    name = "salted_credentials"
    secret = credential = generatable = True

    def coerce(self, bp, value, ctx):
        creds = _cred_dict(value, ("identity", "password", "salt"), "identity, password and salt")
        if not valid_crypt_salt(creds["salt"]):
            raise PropertyError("salt must be printable ASCII without '$' or ':'")
        if len(creds["password"].encode()) > MAX_SALTED_PASSWORD_BYTES:
            # sha512-crypt is quadratic in the password length.
            raise PropertyError(f"password is longer than {MAX_SALTED_PASSWORD_BYTES} bytes")
        return creds

    def default(self, bp):
        return None


class RsaCertCredentialsType(PropertyType):
    name = "rsa_cert_credentials"
    secret = credential = generatable = True

    def coerce(self, bp, value, ctx):
        from cryptography import x509
        from cryptography.hazmat.primitives import serialization

        creds = _cred_dict(value, ("cert_pem", "private_key_pem"), "cert_pem and private_key_pem")
        try:
            cert = x509.load_pem_x509_certificate(creds["cert_pem"].encode())
        except ValueError:
            raise PropertyError("cert_pem is not a PEM certificate") from None
        try:
            key = serialization.load_pem_private_key(creds["private_key_pem"].encode(), None)
        except (ValueError, TypeError):
            raise PropertyError("private_key_pem is not an unencrypted PEM private key") from None
        fmt = serialization.PublicFormat.SubjectPublicKeyInfo
        enc = serialization.Encoding.DER
        if cert.public_key().public_bytes(enc, fmt) != key.public_key().public_bytes(enc, fmt):
            raise PropertyError("the private key does not match the certificate")
        return creds

    def default(self, bp):
        return None  # ``default: {domains: [...]}`` is a generation hint


class RsaPkeyCredentialsType(PropertyType):
    name = "rsa_pkey_credentials"
    secret = credential = generatable = True

    def coerce(self, bp, value, ctx):
        from cryptography.hazmat.primitives import serialization

        if not isinstance(value, Mapping) or not isinstance(value.get("private_key_pem"), str):
            raise PropertyError("private_key_pem is required")
        try:
            key = serialization.load_pem_private_key(value["private_key_pem"].encode(), None)
        except (ValueError, TypeError):
            raise PropertyError("private_key_pem is not an unencrypted PEM private key") from None
        public = key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return {"private_key_pem": value["private_key_pem"], "public_key_pem": public.decode()}

    def default(self, bp):
        return None


class UuidType(PropertyType):
    name = "uuid"
    generatable = True

    def coerce(self, bp, value, ctx):
        try:
            return str(uuidlib.UUID(str(value)))
        except ValueError:
            raise PropertyError(f"'{value}' is not a UUID") from None


class CaCertificateType(StringType):
    name = "ca_certificate"

    def coerce(self, bp, value, ctx):
        from cryptography import x509

        text = super().coerce(bp, value, ctx)
        try:
            x509.load_pem_x509_certificates(text.encode())
        except ValueError:
            raise PropertyError("must be one or more PEM-encoded certificates") from None
        return text


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


TYPES: dict[str, PropertyType] = {
    t.name: t
    for t in (
        StringType(),
        TextType(),
        IntegerType(),
        BooleanType(),
        PortType(),
        EmailType(),
        DomainType(),
        WildcardDomainType(),
        HttpUrlType(),
        LdapUrlType(),
        IpAddressType(),
        IpRangesType(),
        NetworkAddressType(),
        NetworkAddressListType(),
        StringListType(),
        SecretType(),
        SimpleCredentialsType(),
        RsaCertCredentialsType(),
        RsaPkeyCredentialsType(),
        SaltedCredentialsType(),
        DropdownSelectType(),
        MultiSelectOptionsType(),
        SelectorType(),
        CollectionType(),
        VmTypeDropdownType(),
        DiskTypeDropdownType(),
        UuidType(),
        CaCertificateType(),
        AzSingleSelectType(),
        AzMultiSelectType(),
        PlainAzMultiSelectType(),
        SmtpAuthenticationType(),
        StemcellSelectorType(),
    )
}


def get_type(name: str) -> PropertyType:
    t = TYPES.get(name) if isinstance(name, str) else None
    if t is None:
        raise PropertyError(f"unknown type '{name}'")
    return t


# --------------------------------------------------------------------------
# Public helpers on one blueprint


def validate(
    blueprint: Mapping,
    value: Any,
    context: ValidationContext | None = None,
    *,
    check_constraints: bool = True,
) -> Any:
    """Normalise ``value`` for ``blueprint`` or raise PropertyError.

    An empty value is ``None`` for an optional property and an error for a
    required one. ``check_constraints=False`` checks only the type (used for
    template defaults, which Ops Manager does not hold to constraints).
    """
    ctx = context or _NO_CONTEXT
    t = get_type(blueprint.get("type"))
    if is_empty(value):
        if optional(blueprint):
            return None
        raise PropertyError("value is required")
    if isinstance(t, CollectionType):
        records, errors = validate_collection(
            blueprint, value, ctx, check_constraints=check_constraints
        )
        if errors:
            path, msg = errors[0]
            raise PropertyError(f"{path}: {msg}" if path else msg)
        return records
    normalized = t.coerce(blueprint, value, ctx)
    if check_constraints:
        t.constraints(blueprint, normalized, ctx)
    return normalized


def default(blueprint: Mapping) -> Any:
    """The blueprint's default in normalised form, or None (credentials: None)."""
    return get_type(blueprint.get("type")).default(blueprint)


def is_secret(blueprint: Mapping) -> bool:
    """Read back as ``***``; never logged."""
    return get_type(blueprint.get("type")).secret


def is_credential(blueprint: Mapping) -> bool:
    """A credential type (listed on the Credentials tab, role-gated)."""
    return get_type(blueprint.get("type")).credential


def is_generated(blueprint: Mapping, *, in_collection: bool = False) -> bool:
    """Ops Manager generates the value: a generatable type nobody configures."""
    t = get_type(blueprint.get("type"))
    return t.generatable and not configurable(blueprint, in_collection=in_collection)


def _unwrap(value: Any) -> Any:
    """Accept the API's ``{"value": x, "type": ...}`` wrapping of record fields."""
    if isinstance(value, Mapping) and "value" in value:
        if set(value) <= {"value", "type", "configurable", "credential", "optional"}:
            return value["value"]
    return value


def validate_collection(
    bp: Mapping,
    value: Any,
    ctx: ValidationContext,
    *,
    check_constraints: bool = True,
) -> tuple[list[dict], list[tuple[str, str]]]:
    """Validate collection records; errors are ``("[i].field", message)``.

    With ``check_constraints=False`` (template defaults) only the types are
    checked: a default record may leave required fields to the operator.
    """
    if isinstance(value, Mapping):
        value = [value]
    if not isinstance(value, list | tuple):
        return [], [("", "must be a list of records")]
    fields = {f.get("name"): f for f in CollectionType.fields(bp)}
    records: list[dict] = []
    errors: list[tuple[str, str]] = []
    for i, record in enumerate(value):
        if not isinstance(record, Mapping):
            errors.append((f"[{i}]", "must be a mapping of field names to values"))
            continue
        out: dict[str, Any] = {}
        for name, raw in record.items():
            if name not in fields:
                if name == "guid":  # Ops Manager's record identity, kept as is
                    guid = _unwrap(raw)
                    if isinstance(guid, str):
                        out[name] = guid
                    else:
                        errors.append((f"[{i}].guid", "must be a string"))
                    continue
                errors.append((f"[{i}].{name}", "unknown field"))
                continue
            fbp = fields[name]
            raw = _unwrap(raw)
            if is_empty(raw):
                continue
            try:
                out[name] = validate(fbp, raw, ctx, check_constraints=check_constraints)
            except PropertyError as e:
                errors.append((f"[{i}].{name}", e.message))
        for name, fbp in fields.items():
            if name in out:
                continue
            d = default(fbp)
            if d is not None:
                out[name] = d
            elif (
                check_constraints
                and configurable(fbp, in_collection=True)
                and not optional(fbp)
                and fbp.get("type") != "boolean"
            ):
                errors.append((f"[{i}].{name}", "value is required"))
        records.append(out)
    for name, fbp in fields.items():
        if fbp.get("unique") and check_constraints:
            seen: dict[str, int] = {}
            for i, rec in enumerate(records):
                key = repr(rec.get(name))
                if name in rec and key in seen:
                    errors.append((f"[{i}].{name}", f"must be unique (same as record {seen[key]})"))
                seen.setdefault(key, i)
    return records, errors


# --------------------------------------------------------------------------
# A product's set of values


def validate_values(
    template: ProductTemplate,
    values: Mapping[str, Any],
    context: ValidationContext | None = None,
) -> tuple[dict[str, Any], dict[str, str]]:
    """Validate staged values by reference (``.properties.x``, ``.job.x``,
    ``.properties.sel.option.y``).

    Returns the normalised values and errors by reference; collection record
    errors use ``.properties.c[0].field``. Only given values are checked; use
    ``completeness()`` for missing ones.
    """
    ctx = context or _NO_CONTEXT
    normalized: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for ref, value in values.items():
        bp = template.blueprint(ref) if isinstance(ref, str) else None
        if bp is None:
            errors[ref if isinstance(ref, str) else repr(ref)] = "unknown property"
            continue
        t = TYPES.get(bp.get("type")) if isinstance(bp.get("type"), str) else None
        if t is None:
            errors[ref] = f"unknown type '{bp.get('type')}'"
            continue
        if is_empty(value):
            if optional(bp) or not configurable(bp):
                normalized[ref] = None
            else:
                errors[ref] = "value is required"
            continue
        if isinstance(t, CollectionType):
            records, errs = validate_collection(bp, value, ctx)
            for path, msg in errs:
                errors[f"{ref}{path}"] = msg
            if not errs:
                normalized[ref] = records
            continue
        try:
            normalized[ref] = validate(bp, value, ctx)
        except PropertyError as e:
            errors[ref] = e.message
            continue
        c = bp.get("constraints")
        previous = ctx.previous_values.get(ref)
        if bp.get("freeze_on_deploy") and not is_empty(previous) and normalized[ref] != previous:
            errors[ref] = "This value cannot be changed once it has been deployed"
            del normalized[ref]
            continue
        if (
            isinstance(c, Mapping)
            and c.get("can_only_increase")
            and isinstance(previous, int)
            and normalized[ref] < previous
        ):
            errors[ref] = f"Value can only increase (it was {previous})"
            del normalized[ref]
    return normalized, errors


def effective_value(bp: Mapping, values: Mapping[str, Any], ref: str) -> Any:
    """The staged value of ``ref``, or the blueprint's default."""
    v = values.get(ref)
    if is_empty(v):
        try:
            return default(bp)
        except PropertyError:
            return None
    return v


def completeness(template: ProductTemplate, values: Mapping[str, Any]) -> list[str]:
    """References of required configurable properties with neither value nor default.

    Properties inside a selector option count only when that option is the
    selected one; collection records are checked field by field.
    """
    missing: list[str] = []
    for pref in template.iter_property_references():
        if pref.selector is not None and not _option_selected(template, values, pref):
            continue
        bp = pref.blueprint
        if not configurable(bp) or optional(bp):
            continue
        v = effective_value(bp, values, pref.reference)
        if is_empty(v):
            missing.append(pref.reference)
            continue
        if bp.get("type") == "collection" and isinstance(v, list):
            for i, rec in enumerate(v):
                for fbp in CollectionType.fields(bp):
                    name = fbp.get("name")
                    if not configurable(fbp, in_collection=True) or optional(fbp):
                        continue
                    rv = _unwrap(rec.get(name)) if isinstance(rec, Mapping) else None
                    if is_empty(rv) and default(fbp) is None:
                        missing.append(f"{pref.reference}[{i}].{name}")
    return missing


def _option_selected(template: ProductTemplate, values: Mapping[str, Any], pref) -> bool:
    """Whether every selector above ``pref`` has ``pref``'s option selected."""
    chain = pref
    while chain.selector is not None:
        sel_bp = template.blueprint(chain.selector)
        if sel_bp is None:
            return False
        chosen = SelectorType().find_option(sel_bp, effective_value(sel_bp, values, chain.selector))
        if chosen is None or chosen.get("name") != chain.option:
            return False
        chain = template.reference(chain.selector)
        if chain is None:
            return True
    return True


# --------------------------------------------------------------------------
# Reading secrets back: Ops Manager's "***"

REDACTED = "***"
_SECRET_KEYS = {
    "secret": ("secret",),
    "simple_credentials": ("password",),
    "salted_credentials": ("password", "salt"),
    "rsa_cert_credentials": ("private_key_pem",),
    "rsa_pkey_credentials": ("private_key_pem",),
}


def redact(blueprint: Mapping, value: Any) -> Any:
    """The value as the API and forms show it: secret parts as ``***``.

    Identities, certificates and public keys stay readable, as in Ops
    Manager; collection records are redacted field by field.
    """
    t = blueprint.get("type")
    if value is None:
        return None
    if t == "collection" and isinstance(value, list):
        fields = {f.get("name"): f for f in CollectionType.fields(blueprint)}
        return [
            {k: redact(fields[k], v) if k in fields else v for k, v in rec.items()}
            if isinstance(rec, Mapping)
            else rec
            for rec in value
        ]
    keys = _SECRET_KEYS.get(t)
    if not keys:
        return value
    if t == "secret" and not isinstance(value, Mapping):
        return {"secret": REDACTED}
    if not isinstance(value, Mapping):
        return REDACTED
    return {k: (REDACTED if k in keys else v) for k, v in value.items()}


def unredact(blueprint: Mapping, new: Any, old: Any) -> Any:
    """Put back stored secret parts that come back from a form as ``***``.

    A form or API client that read a redacted value and sends it back
    unchanged must not overwrite the secret with the placeholder.
    """
    t = blueprint.get("type")
    if new == REDACTED:
        return old
    if t == "collection" and isinstance(new, list):
        fields = {f.get("name"): f for f in CollectionType.fields(blueprint)}
        olds = old if isinstance(old, list) else []
        by_guid = {
            r["guid"]: r for r in olds if isinstance(r, Mapping) and isinstance(r.get("guid"), str)
        }
        out = []
        for i, rec in enumerate(new):
            if not isinstance(rec, Mapping):
                out.append(rec)
                continue
            guid = rec.get("guid")
            prev = by_guid.get(guid) if isinstance(guid, str) and guid else None
            if prev is None and i < len(olds) and isinstance(olds[i], Mapping) and not by_guid:
                prev = olds[i]
            prev = prev or {}
            out.append(
                {
                    k: unredact(fields[k], v, prev.get(k)) if k in fields else v
                    for k, v in rec.items()
                }
            )
        return out
    keys = _SECRET_KEYS.get(t)
    if not keys or not isinstance(new, Mapping):
        return new
    old_map = old if isinstance(old, Mapping) else {}
    merged = dict(new)
    for k in keys:
        if merged.get(k) == REDACTED:
            if k not in old_map:
                return new  # nothing stored to put back; validation will refuse "***"
            merged[k] = old_map[k]
    return merged
