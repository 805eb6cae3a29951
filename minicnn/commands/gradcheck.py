"""`minicnn gradcheck LAYER`: run the gradient checker on a named layer with a small random input."""

from __future__ import annotations

NAME = "gradcheck"
HELP = "gradient-check a layer (float64 central differences) and print a table"


def add_arguments(parser) -> None:
    parser.add_argument("layer", nargs="?",
                        help="layer name (omit, or 'list', to see the choices; 'all' checks every one)")
    from minicnn.commands._options import MAX_SEED, integer

    parser.add_argument("--seed", type=integer(0, MAX_SEED), default=0,
                        help="seed for the input, weights and upstream gradient")


def run(args) -> int:
    from minicnn.commands._options import EXIT_FAILED, fail
    from minicnn.gradcheck_cases import CASES, run_case

    if args.layer in (None, "list"):
        print("layers that can be checked:\n  " + "\n  ".join(sorted(CASES)))
        return 0
    names = sorted(CASES) if args.layer == "all" else [args.layer]
    unknown = [n for n in names if n not in CASES]
    if unknown:
        return fail(NAME, f"unknown layer {unknown[0]!r}; choose one of: {', '.join(sorted(CASES))}")
    failed = []
    for name in names:
        report = run_case(name, seed=args.seed)
        print(report.table(), end="\n\n")
        if not report.ok:
            failed.append(name)
    if len(names) > 1:
        print(f"checked {len(names)} layers: {len(names) - len(failed)} passed, {len(failed)} failed"
              + (f" ({', '.join(failed)})" if failed else ""))
    return EXIT_FAILED if failed else 0
