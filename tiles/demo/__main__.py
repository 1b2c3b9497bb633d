"""``python -m tiles.demo --out DIR``: build the demo tile's .pivotal into DIR."""

import argparse

from tiles.demo import build_pivotal

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("--out", required=True)
print(build_pivotal(parser.parse_args().out))
