"""`minicnn exercise`: write each equation yourself; the engine grades it.

    minicnn exercise list                      the exercises in course order, with your status
                                               (a page at a time at a terminal)
    minicnn exercise start NAME [--dir DIR]    write DIR/NAME.py (a stub), never overwriting
    minicnn exercise check NAME [--dir DIR]    grade DIR/NAME.py against the engine
                               [--seed S]      the random cases of seed S (a failing one prints S)
                               [--all]         every check (a tall report is shown per piece)
    minicnn exercise hint NAME [--dir DIR]     the next hint, one at a time
    minicnn exercise watch [--dir DIR]         work through them in order, re-checking on save
    minicnn exercise solution NAME [--write]   the engine's method in the exercise's form
                               [--overwrite]   (--write onto your own file: kept as NAME.py.bak)

Every file it writes (stubs, solutions, backups, the progress file) goes through
`minicnn.files.write_atomic`: a temporary file beside the target, then an atomic rename, never onto a
folder, device, FIFO or symbolic link, and never over a file of yours unless you pass --overwrite.

Exit codes: 0 passed / done, 1 a check failed, 2 bad input (unknown exercise, missing file, a file in
the way), 130 watch stopped by Ctrl-C.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from minicnn.commands._options import MAX_SEED, integer
from minicnn.files import TargetError, safe_target, write_atomic

NAME = "exercise"
HELP = "exercises: write forward/backward passes yourself and let the engine grade them"
DEFAULT_DIR = "exercises"
POLL_SECONDS = 0.5


def add_arguments(parser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION")
    p = sub.add_parser("list", help="the exercises in course order, with your status")
    _dir(p)
    p = sub.add_parser("start", help="write DIR/NAME.py to start an exercise (never overwrites)")
    p.add_argument("name")
    _dir(p)
    p = sub.add_parser("check", help="grade DIR/NAME.py against the engine")
    p.add_argument("name")
    _dir(p)
    _timeout(p)
    p.add_argument("--seed", type=integer(0, MAX_SEED), default=None,
                   help="draw the random cases from this seed (a failing random case prints its seed)")
    p.add_argument("--all", action="store_true",
                   help="one row per check (a report taller than a 24-row page is shown per piece)")
    p = sub.add_parser("hint", help="show the next hint for an exercise")
    p.add_argument("name")
    _dir(p)
    p = sub.add_parser("watch", help="work through the exercises in order, re-checking on every save")
    _dir(p)
    _timeout(p)
    p.add_argument("--interval", type=float, default=POLL_SECONDS, help="seconds between file checks")
    p = sub.add_parser("solution", help="show the solution (the engine's method, in the exercise's form)")
    p.add_argument("name")
    _dir(p)
    p.add_argument("--write", action="store_true", help="write it as DIR/NAME.py")
    p.add_argument("--overwrite", action="store_true",
                   help="with --write: replace your DIR/NAME.py (kept first as NAME.py.bak)")


def _dir(p) -> None:
    p.add_argument("--dir", default=DEFAULT_DIR, help="the folder of your exercise files")


def _timeout(p) -> None:
    from minicnn.exercises.grading import TIMEOUT_SECONDS

    p.add_argument("--timeout", type=float, default=None,
                   help=f"seconds your code may run before the check stops it (default {TIMEOUT_SECONDS:g}; "
                        f"the capstone has its own)")


def _flag(folder) -> str:
    """The --dir option to repeat in a suggested command ('' for the default folder)."""
    return "" if str(folder) == DEFAULT_DIR else f" --dir {folder}"


def _err(message: str) -> None:
    print(message, file=sys.stderr)


def run(args) -> int:
    from minicnn import exercises

    action = getattr(args, "action", None)
    if action is None:
        print(__doc__.split("\n\n")[1])
        return 0
    try:
        if action in ("list", "watch"):
            return {"list": _list, "watch": _watch}[action](args)
        try:
            exercise = exercises.get(args.name)
        except ValueError:
            _err(f"minicnn exercise: unknown exercise {args.name!r}; the exercises are:")
            _err(_table(Path(args.dir)))
            return 2
        return {"start": _start, "check": _check, "hint": _hint, "solution": _solution}[action](exercise, args)
    except (TargetError, FileExistsError) as exc:  # a folder, link or device where a file would go
        _err(f"minicnn exercise: {exc}")
        return 2


def _table(folder: Path) -> str:
    """The exercises with their status; a goal that does not fit goes on under itself (never cut)."""
    import textwrap

    from minicnn.exercises import EXERCISES
    from minicnn.exercises.grading import WIDTH
    from minicnn.exercises.state import Progress

    progress = Progress(folder)
    statuses = [progress.status(e.name) for e in EXERCISES]
    name_width = max(len(e.name) for e in EXERCISES) + 1
    status_width = max(len(s) for s in statuses + ["status"]) + 1
    lead = 3 + name_width + 4 + status_width  # columns before the goal
    rows = [f"{'#':>2} {'exercise':<{name_width}}{'ch':>2}  {'status':<{status_width}}goal"]
    for i, (e, status) in enumerate(zip(EXERCISES, statuses, strict=True), start=1):
        goal = textwrap.wrap(e.goal, max(WIDTH - lead, 20)) or [""]
        rows.append(f"{i:>2} {e.name:<{name_width}}{e.chapter:>2}  {status:<{status_width}}{goal[0]}")
        rows += [" " * lead + more for more in goal[1:]]
    return "\n".join(rows)


MORE = "-- more: Enter for the next page, q to stop --"


def page(text: str, rows: int | None = None, read=input, write=print) -> None:
    """Print `text` a screen at a time: `rows - 1` lines, then the MORE prompt (Enter: the next page,
    q: stop). `rows` None: the terminal's height when both stdin and stdout are terminals, else the
    whole text at once (piped output stays plain)."""
    import shutil

    lines = text.split("\n")
    if rows is None:
        rows = shutil.get_terminal_size().lines if sys.stdout.isatty() and sys.stdin.isatty() else 0
    if rows < 2 or len(lines) <= rows:
        write(text)
        return
    step = rows - 1
    for start in range(0, len(lines), step):
        write("\n".join(lines[start:start + step]))
        if start + step < len(lines):
            try:
                answer = read(MORE)
            except EOFError:
                return
            if answer.strip().lower().startswith("q"):
                return


def _list(args) -> int:
    from minicnn.exercises import EXERCISES
    from minicnn.exercises.grading import _wrap
    from minicnn.exercises.state import Progress

    folder = Path(args.dir)
    done = sum(Progress(folder).status(e.name) == "passed" for e in EXERCISES)
    footer = _wrap(f"{done}/{len(EXERCISES)} done, in the folder {folder}") + \
        ["start one with: minicnn exercise start NAME"]
    page("\n".join([_table(folder), ""] + footer))
    return 0


def _write_text(path: Path, text: str, overwrite: bool = False) -> None:
    """`text` into `path` by the write rule (`write_atomic`): FileExistsError for a file there unless
    `overwrite`, TargetError for a folder, device, FIFO or link."""
    write_atomic(path, lambda tmp: tmp.write_text(text), overwrite=overwrite)


def _write_stub(exercise, folder: Path) -> tuple[Path, bool]:
    """Write the stub unless a file is there (the learner's: never replaced); returns (path, written)."""
    path = folder / f"{exercise.name}.py"
    if path.is_file() and not path.is_symlink():
        return path, False
    folder.mkdir(parents=True, exist_ok=True)
    try:
        _write_text(path, exercise.stub())
    except FileExistsError:  # it appeared meanwhile: theirs
        return path, False
    return path, True


def _start(exercise, args) -> int:
    path, written = _write_stub(exercise, Path(args.dir))
    if not written:
        print(f"{path} exists already; not overwritten. Check it with:\n"
              f"  minicnn exercise check {exercise.name}{_flag(args.dir)}")
        return 0
    print(f"wrote {path}: {exercise.goal}.\n"
          f"Write the functions {', '.join(f + '()' for f in exercise.functions)}, then:\n"
          f"  minicnn exercise check {exercise.name}{_flag(args.dir)}")
    return 0


def _check_once(exercise, folder: Path, timeout: float | None, seed: int | None = None):
    from minicnn.exercises.grading import check_file
    from minicnn.exercises.state import Progress

    path = folder / f"{exercise.name}.py"
    report = check_file(exercise, path, timeout=timeout, shown=str(path), seed=seed)
    Progress(folder).set_status(exercise.name, report.ok)
    return report


def _check(exercise, args) -> int:
    folder = Path(args.dir)
    path = folder / f"{exercise.name}.py"
    if not path.is_file():
        _err(f"minicnn exercise: {path} does not exist; create it with:\n"
             f"  minicnn exercise start {exercise.name}{_flag(args.dir)}")
        return 2
    report = _check_once(exercise, folder, args.timeout, args.seed)
    print(report.text(details=True if args.all else None))
    return 0 if report.ok else 1


def _hint(exercise, args) -> int:
    from minicnn.exercises.grading import _wrap
    from minicnn.exercises.state import Progress

    index = Progress(Path(args.dir)).next_hint(exercise.name)
    total = len(exercise.hints)
    if index >= total:
        print(f"no more hints for {exercise.name} (all {total} shown). The solution:\n"
              f"  minicnn exercise solution {exercise.name}")
        return 0
    print("\n".join(_wrap(f"hint {index + 1}/{total} for {exercise.name}: {exercise.hints[index]}")))
    return 0


def _engine_locations(exercise) -> list[str]:
    import importlib
    import inspect

    lines = []
    for ref in exercise.engine:
        module_name, qualname = ref.split(":")
        obj = importlib.import_module(module_name)
        for part in qualname.split("."):
            obj = getattr(obj, part)
        obj = inspect.unwrap(obj)
        line = inspect.getsourcelines(obj)[1]
        file = module_name.replace(".", "/") + ".py"
        lines.append(f"  {file}:{line}  {qualname}")
    return lines


def _solution(exercise, args) -> int:
    if not args.write:
        print(exercise.solution().rstrip())
        print(f"\n# The engine's own code for {exercise.name}:")
        print("\n".join("#" + line for line in _engine_locations(exercise)))
        return 0
    folder = Path(args.dir)
    path = folder / f"{exercise.name}.py"
    folder.mkdir(parents=True, exist_ok=True)
    safe_target(path, overwrite=True)  # a folder, link or device there: TargetError before anything
    if path.is_file() and path.read_text() != exercise.solution():
        if not args.overwrite:
            from minicnn.exercises.grading import _wrap

            _err("\n".join(_wrap(f"minicnn exercise: {path} is your file; it was left as it is. To replace "
                                  f"it with the solution (yours kept as {path.name}.bak), add --overwrite:")))
            _err(f"  minicnn exercise solution {exercise.name}{_flag(args.dir)} --write --overwrite")
            return 2
        backup = _free_name(path.with_name(path.name + ".bak"))
        _write_text(backup, path.read_text())
        print(f"your file was kept as {backup}")
    _write_text(path, exercise.solution(), overwrite=True)
    print(f"wrote the solution to {path}; check it with:\n  minicnn exercise check {exercise.name}{_flag(args.dir)}")
    return 0


def _free_name(path: Path) -> Path:
    candidate, k = path, 1
    while candidate.exists():
        k += 1
        candidate = path.with_name(f"{path.name}{k}")
    return candidate


CLEAR = "\x1b[H\x1b[2J"  # ANSI: cursor home, clear the screen
INTERRUPTED = 130  # the exit code of a program stopped by Ctrl-C (128 + SIGINT)


def watch(folder: Path, timeout: float | None, interval: float = POLL_SECONDS, sleep=time.sleep,
          redraw: bool | None = None) -> int:
    """Work through the exercises in course order: check the first one not passed, re-check it whenever
    its file changes (modification time), move on when it passes. Each check redraws the screen (when
    `redraw`, by default when stdout is a terminal) instead of appending below the last one. Ctrl-C
    stops with exit code 130; the progress file in `folder` remembers what passed, so the next call
    resumes. Returns 0 when every exercise passes."""
    from minicnn.exercises import EXERCISES
    from minicnn.exercises.grading import _wrap
    from minicnn.exercises.state import Progress

    if redraw is None:
        redraw = sys.stdout.isatty()
    total = len(EXERCISES)
    try:
        while True:
            progress = Progress(folder)
            pending = [e for e in EXERCISES if progress.status(e.name) != "passed"]
            if not pending:
                print(f"{total}/{total} done: every exercise passes. Well done.")
                return 0
            exercise = pending[0]
            path, written = _write_stub(exercise, folder)
            header = _wrap(f"== {total - len(pending)}/{total} done == {exercise.name} (chapter "
                           f"{exercise.chapter}): {exercise.goal}", indent="   ")
            header += _wrap(f"{'wrote' if written else 'edit'} {path}; it is checked every time you save "
                            f"it (Ctrl-C stops)", indent="   ")
            while True:
                stamp = _mtime(path)
                if redraw:
                    print(CLEAR, end="")
                print("\n" + "\n".join(header))
                if stamp is None:
                    print("\n".join(_wrap(f"{path} is gone; waiting for it to come back (`minicnn exercise "
                                           f"start {exercise.name}{_flag(folder)}` writes a new stub) ...")))
                else:
                    report = _check_once(exercise, folder, timeout)
                    print(report.text())
                    if report.ok:
                        break
                    print("\nwaiting for you to save the file ...")
                while _mtime(path) == stamp:
                    sleep(interval)
    except KeyboardInterrupt:
        done = sum(Progress(folder).status(e.name) == "passed" for e in EXERCISES)
        print()
        print("\n".join(_wrap(f"stopped at {done}/{total} done; `minicnn exercise watch{_flag(folder)}` "
                               f"resumes here.")))
        return INTERRUPTED


def _mtime(path: Path) -> int | None:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return None


def _watch(args) -> int:
    return watch(Path(args.dir), args.timeout, args.interval)
