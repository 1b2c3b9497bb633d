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

The types live by family: ``scalar``, ``network``, ``choice``,
``collection``, ``credential`` (with ``redact``/``unredact``) and
``catalog``; ``base`` holds what they share and the functions on one
blueprint, ``values`` the functions on a product's set of values. This
module registers every type once, below, and is the API callers use.
"""

from __future__ import annotations

from tiles.properties.base import (
    NO_CONTEXT,
    TYPES,
    PropertyError,
    PropertyType,
    ValidationContext,
    configurable,
    default,
    get_type,
    is_credential,
    is_empty,
    is_generated,
    is_secret,
    optional,
    validate,
)
from tiles.properties.catalog import (
    AzMultiSelectType,
    AzSingleSelectType,
    DiskTypeDropdownType,
    PlainAzMultiSelectType,
    StemcellSelectorType,
    VmTypeDropdownType,
)
from tiles.properties.choice import (
    DropdownSelectType,
    MultiSelectOptionsType,
    SelectorType,
    SmtpAuthenticationType,
)
from tiles.properties.collection import CollectionType, validate_collection
from tiles.properties.constraints import ruby_regex
from tiles.properties.credential import (
    MAX_SALTED_PASSWORD_BYTES,
    REDACTED,
    CaCertificateType,
    RsaCertCredentialsType,
    RsaPkeyCredentialsType,
    SaltedCredentialsType,
    SecretType,
    SimpleCredentialsType,
    redact,
    unredact,
    valid_crypt_salt,
)
from tiles.properties.network import (
    DomainType,
    EmailType,
    HttpUrlType,
    IpAddressType,
    IpRangesType,
    LdapUrlType,
    NetworkAddressListType,
    NetworkAddressType,
    WildcardDomainType,
    parse_ip_ranges,
)
from tiles.properties.scalar import (
    BooleanType,
    IntegerType,
    PortType,
    StringListType,
    StringType,
    TextType,
    UuidType,
)
from tiles.properties.values import completeness, effective_value, validate_values

TYPES.update(
    (t.name, t)
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
)

__all__ = [
    "PropertyError",
    "ValidationContext",
    "NO_CONTEXT",
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
    "effective_value",
    "completeness",
    "REDACTED",
    "redact",
    "unredact",
    "MAX_SALTED_PASSWORD_BYTES",
    "valid_crypt_salt",
    "CollectionType",
    "DropdownSelectType",
    "SelectorType",
    "SmtpAuthenticationType",
]
