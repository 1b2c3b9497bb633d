"""``python -m cpi --config cpi.json``: the CPI as BOSH's external CPI executable.

Reads one JSON request from stdin, writes one JSON response to stdout (see
``cpi.protocol``). The exit status is 0 whenever a response was written, as
the director ignores it; 1 only when the config file cannot be read (a JSON
error response is still written).
"""

from __future__ import annotations

import argparse
import json
import sys

from cpi.base import CpiError
from cpi.protocol import handle_request


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m cpi", description="BOSH external CPI (vSphere)"
    )
    parser.add_argument(
        "--config", required=True, help='cpi.json: {"cloud": {"plugin", "properties"}}'
    )
    args = parser.parse_args(argv)
    try:
        with open(args.config) as f:
            cpi_json = json.load(f)
    except (OSError, ValueError) as exc:
        error = CpiError(f"Cannot read CPI config {args.config}: {exc}")
        json.dump({"result": None, "error": error.to_dict(), "log": ""}, sys.stdout)
        sys.stdout.write("\n")
        return 1
    response = handle_request(sys.stdin.read(), cpi_json)
    json.dump(response, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
