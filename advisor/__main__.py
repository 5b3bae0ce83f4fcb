"""``python -m advisor {profile,recommend} ...``."""

from __future__ import annotations

import argparse
import sys

from advisor import profile, recommend


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m advisor", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    profile.add_arguments(
        commands.add_parser("profile", help="fit model data from an OpenAI-compatible endpoint")
    )
    recommend.add_arguments(
        commands.add_parser("recommend", help="rank serving configurations for a model, KPI and rate")
    )
    args = parser.parse_args(argv)
    return profile.main(args) if args.command == "profile" else recommend.main(args)


if __name__ == "__main__":
    sys.exit(main())
