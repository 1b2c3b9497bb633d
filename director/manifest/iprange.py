"""IP address sets for subnets: ``reserved`` and ``static`` entries.

Entries are single addresses (``10.0.0.5``), inclusive ranges written
``10.0.0.10 - 10.0.0.20`` (spaces optional) or CIDR blocks (``10.0.0.0/28``),
IPv4 or IPv6. :class:`IpRanges` keeps them as sorted, merged integer
intervals, so a ``/8`` (or an IPv6 ``/64``) costs two integers, never a list of
addresses. The planner uses it to test membership and to find the lowest free
address of a subnet.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_ip_entry(entry: object) -> tuple[int, int, int]:
    """``(version, first, last)`` of one reserved/static entry; ValueError if malformed."""
    if not isinstance(entry, str):
        raise ValueError(f"'{entry}' is not an IP address, an 'a - b' range or a CIDR block")
    text = entry.strip()
    if "-" in text:
        left, right = (p.strip() for p in text.split("-", 1))
        try:
            a, b = ipaddress.ip_address(left), ipaddress.ip_address(right)
        except ValueError:
            raise ValueError(f"'{entry}' is not a valid IP range") from None
        if a.version != b.version:
            raise ValueError(f"'{entry}' mixes IPv4 and IPv6")
        if int(a) > int(b):
            raise ValueError(f"'{entry}' is an empty range: the first address is after the last")
        return a.version, int(a), int(b)
    if "/" in text:
        try:
            net = ipaddress.ip_network(text, strict=False)
        except ValueError:
            raise ValueError(f"'{entry}' is not a valid CIDR block") from None
        return net.version, int(net.network_address), int(net.broadcast_address)
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        raise ValueError(f"'{entry}' is not a valid IP address") from None
    return ip.version, int(ip), int(ip)


def _to_ip(version: int, value: int) -> IPAddress:
    return ipaddress.IPv4Address(value) if version == 4 else ipaddress.IPv6Address(value)


@dataclass(frozen=True)
class IpRanges:
    """An immutable set of IP addresses as sorted, merged ``(version, first, last)`` intervals."""

    intervals: tuple[tuple[int, int, int], ...] = ()

    @classmethod
    def from_intervals(cls, intervals: Iterable[tuple[int, int, int]]) -> IpRanges:
        merged: list[list[int]] = []
        for version, first, last in sorted(intervals):
            if merged and merged[-1][0] == version and first <= merged[-1][2] + 1:
                merged[-1][2] = max(merged[-1][2], last)
            else:
                merged.append([version, first, last])
        return cls(tuple((v, f, la) for v, f, la in merged))

    @classmethod
    def from_entries(cls, entries: Iterable[object]) -> IpRanges:
        """Build from reserved/static entries; ValueError names the first bad one."""
        return cls.from_intervals(parse_ip_entry(e) for e in entries)

    @classmethod
    def from_network(cls, network: str | IPNetwork) -> IpRanges:
        net = ipaddress.ip_network(network, strict=False) if isinstance(network, str) else network
        return cls(((net.version, int(net.network_address), int(net.broadcast_address)),))

    def __contains__(self, ip: object) -> bool:
        addr = ipaddress.ip_address(ip) if isinstance(ip, str) else ip
        if not isinstance(addr, ipaddress.IPv4Address | ipaddress.IPv6Address):
            return False
        value = int(addr)
        return any(v == addr.version and f <= value <= la for v, f, la in self.intervals)

    def __bool__(self) -> bool:
        return bool(self.intervals)

    @property
    def count(self) -> int:
        """Number of addresses (not ``len()``: an IPv6 set can exceed an index-sized int)."""
        return sum(la - f + 1 for _, f, la in self.intervals)

    def union(self, other: IpRanges) -> IpRanges:
        return IpRanges.from_intervals(self.intervals + other.intervals)

    def intersection(self, other: IpRanges) -> IpRanges:
        out = []
        for v1, f1, l1 in self.intervals:
            for v2, f2, l2 in other.intervals:
                if v1 == v2 and f1 <= l2 and f2 <= l1:
                    out.append((v1, max(f1, f2), min(l1, l2)))
        return IpRanges.from_intervals(out)

    def within(self, other: IpRanges) -> bool:
        """True if every address of this set is in ``other``."""
        return self.intersection(other).count == self.count

    def addresses(self) -> Iterator[IPAddress]:
        """Every address, lowest first (lazily; do not list a /8)."""
        for v, f, la in self.intervals:
            for value in range(f, la + 1):
                yield _to_ip(v, value)

    def networks(self) -> list[IPNetwork]:
        """The set as the fewest CIDR blocks."""
        out: list[IPNetwork] = []
        for v, f, la in self.intervals:
            out.extend(ipaddress.summarize_address_range(_to_ip(v, f), _to_ip(v, la)))
        return out

    def first_free(self, excluded: IpRanges) -> IPAddress | None:
        """The lowest address of this set that is not in ``excluded`` (None if all taken)."""
        for v, f, la in self.intervals:
            candidate = f
            for ev, ef, el in excluded.intervals:
                if ev != v or el < candidate:
                    continue
                if ef > candidate:
                    break
                candidate = el + 1
                if candidate > la:
                    break
            if candidate <= la:
                return _to_ip(v, candidate)
        return None


def expand_ip_ranges(entries: Iterable[object]) -> list[IPNetwork]:
    """Reserved/static entries as a list of ``ipaddress`` networks (ranges summarised to CIDRs).

    Membership: ``any(ip in net for net in expand_ip_ranges(entries))``; for
    repeated tests or free-address search use :class:`IpRanges` directly.
    """
    return IpRanges.from_entries(entries).networks()
