"""Subcommands of the `minicnn` command; see `minicnn.cli` for the convention."""
