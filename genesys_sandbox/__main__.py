"""``python -m genesys_sandbox``: the sandbox CLI without the rest of the exporter."""

from __future__ import annotations

import argparse
import sys

from genesys_sandbox import cli


def main() -> int:
    parser = argparse.ArgumentParser(
        prog="python -m genesys_sandbox", description="Run the Genesys Cloud sandbox."
    )
    cli.add_arguments(parser)
    return cli.run(parser.parse_args())


if __name__ == "__main__":
    sys.exit(main())
