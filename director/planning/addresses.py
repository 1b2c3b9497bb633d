"""IP addresses and sets of them: ``reserved``/``static`` entries and
``static_ips``, parsed with a ``PlanError`` naming the path.

Entries are single addresses, ``a - b`` ranges or CIDRs. Addresses are kept
as merged integer intervals (``IpRangeSet``), never as sets of single
addresses, so a /8 or an IPv6 /64 costs as much as a /29.
"""

from __future__ import annotations

import bisect
import ipaddress
from collections.abc import Iterable, Iterator

from director.planning.errors import PlanError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class IpRangeSet:
    """A set of addresses of one IP version as sorted, disjoint, merged
    closed intervals ``[lo, hi]`` of integers.

    ``add`` mutates; everything else is a query. Instances held by frozen
    dataclasses are never mutated after construction (``copy()`` first).
    """

    __slots__ = ("_los", "_his")

    def __init__(self, intervals: Iterable[tuple[int, int]] = ()) -> None:
        self._los: list[int] = []
        self._his: list[int] = []
        merged: list[list[int]] = []
        for lo, hi in sorted(intervals):
            if merged and lo <= merged[-1][1] + 1:
                merged[-1][1] = max(merged[-1][1], hi)
            else:
                merged.append([lo, hi])
        for lo, hi in merged:
            self._los.append(lo)
            self._his.append(hi)

    def copy(self) -> IpRangeSet:
        clone = IpRangeSet()
        clone._los = list(self._los)
        clone._his = list(self._his)
        return clone

    def intervals(self) -> Iterator[tuple[int, int]]:
        return zip(self._los, self._his, strict=True)

    def __bool__(self) -> bool:
        return bool(self._los)

    def __len__(self) -> int:
        return sum(hi - lo + 1 for lo, hi in self.intervals())

    def __contains__(self, value: object) -> bool:
        if not isinstance(value, int):
            return False
        i = bisect.bisect_right(self._los, value) - 1
        return i >= 0 and self._his[i] >= value

    def add(self, lo: int, hi: int | None = None) -> None:
        hi = lo if hi is None else hi
        # first interval that could touch [lo, hi]
        i = bisect.bisect_left(self._his, lo - 1)
        j = i
        while j < len(self._los) and self._los[j] <= hi + 1:
            lo = min(lo, self._los[j])
            hi = max(hi, self._his[j])
            j += 1
        self._los[i:j] = [lo]
        self._his[i:j] = [hi]

    def union(self, other: IpRangeSet) -> IpRangeSet:
        return IpRangeSet([*self.intervals(), *other.intervals()])

    def overlaps(self, lo: int, hi: int) -> bool:
        i = bisect.bisect_right(self._los, hi) - 1
        return i >= 0 and self._his[i] >= lo

    def count_in(self, lo: int, hi: int) -> int:
        """How many addresses of ``[lo, hi]`` are in the set."""
        total = 0
        i = max(bisect.bisect_right(self._los, lo) - 1, 0)
        while i < len(self._los) and self._los[i] <= hi:
            total += max(0, min(hi, self._his[i]) - max(lo, self._los[i]) + 1)
            i += 1
        return total

    def first_gap(self, lo: int, hi: int) -> int | None:
        """The lowest address of ``[lo, hi]`` not in the set, or ``None``."""
        candidate = lo
        i = max(bisect.bisect_right(self._los, lo) - 1, 0)
        while i < len(self._los) and self._los[i] <= candidate:
            if self._his[i] >= candidate:
                candidate = self._his[i] + 1
            i += 1
        return candidate if candidate <= hi else None

    def ranges_outside(self, lo: int, hi: int) -> Iterator[tuple[int, int]]:
        """Intervals of the set that are not inside ``[lo, hi]``."""
        for a, b in self.intervals():
            if a < lo or b > hi:
                yield a, b

    def __repr__(self) -> str:
        return f"IpRangeSet({list(self.intervals())!r})"


def normalize_ip(value: object, path: str = "") -> str:
    """``value`` as the canonical text of an IP (``10.0.0.010`` is refused)."""
    return str(parse_ip(value, path))


def parse_ip(value: object, path: str = "") -> IPAddress:
    if not isinstance(value, str):
        raise PlanError(path, f"{value!r} is not an IP address")
    try:
        return ipaddress.ip_address(value.strip())
    except ValueError:
        raise PlanError(path, f"{value!r} is not an IP address") from None


def parse_ip_entry(entry: object, version: int, path: str) -> tuple[int, int]:
    """One ``reserved``/``static``/``static_ips`` entry as ``(lo, hi)``:
    a single IP, an ``a - b`` range, or a CIDR block."""
    if not isinstance(entry, str):
        raise PlanError(path, f"{entry!r} is not an IP address, 'a - b' range or CIDR")
    text = entry.strip()
    try:
        if "/" in text:
            block = ipaddress.ip_network(text, strict=False)
            lo_ip, hi_ip = block.network_address, block.broadcast_address
        elif "-" in text:
            left, _, right = text.partition("-")
            lo_ip = ipaddress.ip_address(left.strip())
            hi_ip = ipaddress.ip_address(right.strip())
        else:
            lo_ip = hi_ip = ipaddress.ip_address(text)
    except ValueError:
        raise PlanError(path, f"'{entry}' is not an IP address, 'a - b' range or CIDR") from None
    if lo_ip.version != version or hi_ip.version != version:
        raise PlanError(path, f"'{entry}' is not an IPv{version} address")
    if int(lo_ip) > int(hi_ip):
        raise PlanError(path, f"'{entry}': range start is after its end")
    return int(lo_ip), int(hi_ip)


def parse_ip_list(value: object, version: int, path: str) -> IpRangeSet:
    """A ``reserved``/``static`` value (list of entries, or one string)."""
    if value is None:
        return IpRangeSet()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list | tuple):
        raise PlanError(path, "must be a list of IPs or 'a - b' ranges")
    return IpRangeSet(
        parse_ip_entry(entry, version, f"{path}/{i}") for i, entry in enumerate(value)
    )


def expand_ips(value: object, version: int | None, path: str, limit: int = 65536) -> list[str]:
    """Expand an instance group's ``static_ips`` to single addresses, in
    the order given. Static IPs are one per instance, so a list longer than
    ``limit`` is refused rather than materialised."""
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list | tuple):
        raise PlanError(path, "must be a list of IPs or 'a - b' ranges")
    result: list[str] = []
    for i, entry in enumerate(value):
        entry_path = f"{path}/{i}"
        if version is None:
            first = str(entry).split("-")[0].split("/")[0].strip()
            version = parse_ip(first, entry_path).version
        lo, hi = parse_ip_entry(entry, version, entry_path)
        if len(result) + (hi - lo + 1) > limit:
            raise PlanError(path, f"more than {limit} static IPs")
        cls = ipaddress.IPv4Address if version == 4 else ipaddress.IPv6Address
        result.extend(str(cls(n)) for n in range(lo, hi + 1))
    return result


def format_ip(version: int, value: int) -> str:
    return str(ipaddress.IPv4Address(value) if version == 4 else ipaddress.IPv6Address(value))


def format_range(version: int, lo: int, hi: int) -> str:
    return (
        format_ip(version, lo)
        if lo == hi
        else f"{format_ip(version, lo)} - {format_ip(version, hi)}"
    )
