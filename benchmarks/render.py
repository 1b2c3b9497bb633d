"""``python -m benchmarks --suite render``: pure rendering work, no services.

* a PAS-sized product template (45 job types, ~370 KB of metadata, 3,000+
  accessors): ``load_product_template`` and ``render_manifest``, separately;
* a cloud-config whose ranges span a /8 and an IPv6 /48: ``parse_cloud_config``
  (ranges are intervals, never listed address by address).

Each is run ``repeat`` times; the best and the median are printed. These were
timed assertions in the test suite; timing belongs here, where a busy machine
makes a slow number instead of a red build.
"""

from __future__ import annotations

import statistics
import time

import django


def _time(fn, repeat: int) -> tuple[float, float]:
    runs = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - start)
    return min(runs), statistics.median(runs)


def _huge_cloud_config() -> dict:
    return {
        "azs": [{"name": "z1"}],
        "vm_types": [{"name": "small"}],
        "compilation": {"workers": 1, "az": "z1", "vm_type": "small", "network": "big"},
        "networks": [
            {
                "name": "big",
                "type": "manual",
                "subnets": [
                    {
                        "range": "10.0.0.0/8",
                        "gateway": "10.0.0.1",
                        "azs": ["z1"],
                        "reserved": ["10.0.0.2 - 10.100.255.255"],
                        "static": ["10.101.0.0 - 10.199.255.255"],
                    },
                    {
                        "range": "fd00::/48",
                        "gateway": "fd00::1",
                        "azs": ["z1"],
                        "reserved": ["fd00::2 - fd00:0:0:ff::"],
                        "static": ["fd00:0:0:100:: - fd00:0:0:ffff:ffff:ffff:ffff:fffe"],
                    },
                ],
            }
        ],
    }


def run(repeat: int = 5) -> None:
    django.setup()
    from director.manifest.cloud_config import parse_cloud_config
    from tests.tiles.test_manifest import StemcellRef, big_template, make_ctx
    from tiles.manifest import render_manifest
    from tiles.template import load_product_template

    text = big_template()
    template = load_product_template(text)
    ctx = make_ctx(stemcell=StemcellRef("ubuntu-jammy", "1.8"))
    rows = [
        (f"load PAS-sized template ({len(text) // 1000} KB)", lambda: load_product_template(text)),
        ("render its manifest (45 instance groups)", lambda: render_manifest(template, {}, ctx)),
        (
            "parse a cloud-config with /8 and /48 ranges",
            lambda: parse_cloud_config(_huge_cloud_config()),
        ),
    ]
    print(f"{'measure':48} {'best ms':>9} {'median ms':>10}   ({repeat} runs)")
    for name, fn in rows:
        best, median = _time(fn, repeat)
        print(f"{name:48} {best * 1000:9.1f} {median * 1000:10.1f}", flush=True)
