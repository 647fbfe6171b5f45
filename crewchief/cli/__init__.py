"""The ``crewchief`` command: one module per command group, :mod:`crewchief.cli.main` parses."""

from crewchief.cli.main import main

__all__ = ["main"]
