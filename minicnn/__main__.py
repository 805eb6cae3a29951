"""`python -m minicnn` is the same as the `minicnn` command."""

from minicnn.cli import command_line

command_line()
