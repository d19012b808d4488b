"""``python -m pipelines`` is the ``portcensus`` command."""
from pipelines.cli import entry

entry()
