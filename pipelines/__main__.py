"""``python -m pipelines`` is the ``portcensus`` command."""
import sys

from pipelines.cli import main

sys.exit(main())
