"""python -m salesops_widgets: the salesops command."""

from .cli import run

run()
