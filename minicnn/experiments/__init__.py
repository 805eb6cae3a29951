"""Experiments run by `minicnn experiment NAME`. Each module here defines

    DESCRIPTION = "one line"
    def add_arguments(parser): ...
    def run(args) -> int: ...

and is found automatically (see `minicnn.commands.experiment`).
"""
