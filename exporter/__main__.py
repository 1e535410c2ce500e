"""``python -m exporter`` runs the CLI."""

import sys

from exporter.cli import main

sys.exit(main())
