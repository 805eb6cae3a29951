"""Experiments run by `minicnn experiment NAME`. Each module here defines

    DESCRIPTION = "one line"
    def add_arguments(parser): ...
    def run(args) -> int: ...

and is found automatically (see `minicnn.commands.experiment`). Like the commands, an experiment
imports the engine inside its functions: every experiment module is imported to build the
`minicnn --help` parser, which must stay fast. They train with `minicnn.app.fit`, build models with
`minicnn.models.build` and reload them with `minicnn.app.load_model`.
"""
