"""`python -m bench.relay NAME [--seconds S] [--address-family ipv4|ipv6]`: run one relay benchmark,
print and save its JSON."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from . import NAMES, run
from .scenarios import ADDRESS_FAMILIES

RESULTS = Path(__file__).resolve().parent.parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("name", choices=NAMES)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--address-family", choices=ADDRESS_FAMILIES, default="ipv4")
    args = parser.parse_args()
    result = {"benchmark": args.name, **run(args.name, args.seconds, args.address_family)}
    text = json.dumps(result, indent=2, sort_keys=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{args.name}.json").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
