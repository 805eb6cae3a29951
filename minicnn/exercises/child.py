"""The child process that runs a learner's file: it receives inputs, returns outputs, holds no answers.

    python -I child.py CONFIG_JSON

This file imports nothing from minicnn (it is run by path, in isolated mode, so the package is not even
on sys.path) and the grading parent keeps every expected value: the child only ever sees the inputs of
a call. Before the learner's file runs, the child installs the exercise rules as an audit hook
(`sys.addaudithook`, which Python offers no way to remove):

    import minicnn (any submodule), or a module the exercise forbids   -> ImportError naming the rule
    open a file inside the minicnn package (to exec the engine's code)  -> PermissionError naming the rule
    open anything under /proc but this process's own entries (the
      grader's /proc/PID/mem, environ, fd/, cmdline ...), a folder (a
      folder's fd would let os.open(..., dir_fd=) reach them unseen),
      or /dev/mem, /dev/kmem, /dev/port                                  -> PermissionError naming the rule
    start a process (os.fork, os.system, os.exec*, os.posix_spawn,
      subprocess; a new interpreter would run without these rules),
      signal another process (os.kill), any ctypes call, address or
      library load (ctypes could patch the interpreter or read memory),
      import _xxsubinterpreters, _testcapi ..., or _posixsubprocess anew
      (its fork_exec, which fires no audit event, is replaced)          -> PermissionError / ImportError

and replaces the NumPy functions the exercise forbids (e.g. numpy.convolve) by ones that raise, in
every numpy module that holds them, with the C routines behind them (NUMPY_KERNELS).
The expected values are never in this process: the parent computes and keeps them, passes only the
inputs of a call on the pipe, and starts this process with close_fds (it inherits only its stdin,
stdout and a stderr file, no descriptor of the parent's) and an environment without any answer; the
grader's own frames and objects live in the parent, so gc or sys._getframe here find only inputs.
What this does not stop: a learner who copies the engine's source into their own file (the grader
cannot tell copied code from written code), and native code of their own: a compiled extension module
(.so) written beside their file and imported is loaded by the import system's `dlopen`, which fires no
ctypes event, and C code is beyond any audit hook (it could read /proc or call the kernel directly).
Nothing of the grader's answers is in this process for it to find, but it could reach the parent.
The parent never unpickles what the child sends (JSON only), so a crafted return value cannot run code
in the process that holds the answers.

Protocol (one JSON object per line, `encode`/`decode` for values):
    child -> parent, once:  {"ok": true, "functions": [names]} or {"ok": false, "error": [lines]}
    parent -> child:        {"function": name, "args": [...], "kwargs": {...}}
                            (name "driver:NAME": a function of the config's "driver" source, the grader's
                            own NumPy-only code run on the learner's functions, e.g. the capstone's LeNet-5)
    child -> parent:        {"ok": true, "result": value, "changed": [argument names], "printed": [lines]}
                            {"ok": false, "error": [lines], "not_implemented": bool, "line": int, ...}
"""

from __future__ import annotations

import base64
import io
import json
import os
import sys
import traceback
from typing import Any

import numpy as np

RULE_ENGINE = "exercise rules: your code may not use minicnn (you are writing the engine's part); use NumPy"
RULE_DATA = "exercise rules: your code may not read the datasets; the grader sends the images it needs"
RULE_SYSTEM = ("exercise rules: your code may not start processes, signal them, use ctypes, or read "
               "/proc or memory devices; compute the answer with Python and NumPy")
SYSTEM_MODULES = ("_posixsubprocess", "_xxsubinterpreters", "_xxinterpchannels", "_testcapi",
                  "_testinternalcapi", "_testmultiphase")  # each would run code outside the rules
# (_posixsubprocess stays loaded with its fork_exec replaced; importing it anew is refused)
PROCESS_EVENTS = ("os.fork", "os.forkpty", "os.system", "os.exec", "os.posix_spawn", "os.spawn",
                  "subprocess.Popen", "os.killpg", "pty.spawn")
MEMORY_DEVICES = ("/dev/mem", "/dev/kmem", "/dev/port")
NUMPY_KERNELS = {"correlate": ("correlate2",), "convolve": ("correlate",)}  # numpy's C routines behind them
DRIVER_PREFIX = "driver:"  # requests for the grader's own code run in the child (config "driver")
MAX_FRAMES = 8  # at most this many frames of the learner's traceback (deeper: first 2, last 3)
SAFE_KINDS = "biuf"  # array dtypes that may cross the pipe: bool, int, unsigned, float


# ---- values on the wire (JSON; arrays as raw bytes, so every bit survives) ----------------------


def encode(value: Any) -> Any:
    """A JSON-ready form of `value`: arrays, numbers, strings, None, tuples, lists, dicts (str keys).
    Anything else becomes a description (its type and a short repr), never an object."""
    if isinstance(value, np.ndarray) and value.dtype.kind in SAFE_KINDS:
        data = base64.b64encode(np.ascontiguousarray(value).tobytes()).decode()
        return {"__t__": "array", "dtype": value.dtype.str, "shape": list(value.shape), "data": data}
    if isinstance(value, np.generic) and value.dtype.kind in SAFE_KINDS:
        return {"__t__": "scalar", "value": encode(np.asarray(value))}
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return {"__t__": "int", "value": str(value)}
    if isinstance(value, float):
        return {"__t__": "float", "value": value.hex()}
    if isinstance(value, tuple):
        return {"__t__": "tuple", "items": [encode(v) for v in value]}
    if isinstance(value, list):
        return {"__t__": "list", "items": [encode(v) for v in value]}
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {"__t__": "dict", "items": {k: encode(v) for k, v in value.items()}}
    try:
        shown = repr(value)[:60]
    except Exception:  # a repr that raises tells nothing more
        shown = "?"
    return {"__t__": "other", "type": type(value).__name__, "repr": shown}


class Other:
    """A returned object that is not a plain value (shown by type name and repr, never rebuilt)."""

    def __init__(self, type_name: str, shown: str):
        self.type_name, self.shown = type_name, shown

    def __repr__(self) -> str:
        return self.shown


def decode(value: Any) -> Any:
    """The inverse of `encode` (an Other for what was described only). Never runs code."""
    if not isinstance(value, dict):
        return value
    kind = value.get("__t__")
    if kind == "array":
        dtype = np.dtype(value["dtype"])
        if dtype.kind not in SAFE_KINDS:
            raise ValueError(f"decode: refusing dtype {dtype}")
        data = base64.b64decode(value["data"])
        return np.frombuffer(data, dtype=dtype).reshape(value["shape"]).copy()
    if kind == "scalar":
        return decode(value["value"])[()]
    if kind == "int":
        return int(value["value"])
    if kind == "float":
        return float.fromhex(value["value"])
    if kind == "tuple":
        return tuple(decode(v) for v in value["items"])
    if kind == "list":
        return [decode(v) for v in value["items"]]
    if kind == "dict":
        return {k: decode(v) for k, v in value["items"].items()}
    if kind == "other":
        return Other(str(value.get("type")), str(value.get("repr")))
    raise ValueError(f"decode: unknown value kind {kind!r}")


# ---- the rules ----------------------------------------------------------------------------------


def _refused(name: str, forbidden: dict[str, str]) -> str | None:
    """The rule that forbids importing module `name`, or None."""
    for prefix, rule in forbidden.items():
        if name == prefix or name.startswith(prefix + "."):
            return rule
    return None


def install_rules(package_dir: str, forbidden: dict[str, str], numpy_forbidden: dict[str, str],
                  data_dirs: tuple[str, ...] = ()) -> None:
    """Refuse imports of `forbidden` modules (name -> rule), reading files under `package_dir` and
    under `data_dirs` (the dataset folders: the capstone's test labels live there); replace each numpy
    function in `numpy_forbidden` (name -> rule) by one that raises."""
    forbidden = {"minicnn": RULE_ENGINE, **forbidden, **{m: RULE_SYSTEM for m in SYSTEM_MODULES}}
    package_dir = os.path.realpath(package_dir) + os.sep
    data_dirs = tuple(os.path.realpath(d) + os.sep for d in data_dirs)
    own = os.getpid()

    def hook(event: str, args: tuple) -> None:
        if event == "import":
            rule = _refused(str(args[0]), forbidden)
            if rule:
                raise ImportError(f"{rule} (import {args[0]} refused)")
        elif event == "open" and isinstance(args[0], (str, bytes, os.PathLike)):
            path = os.fsdecode(args[0])
            real = os.path.realpath(path)
            if real.startswith(package_dir):
                raise PermissionError(f"{RULE_ENGINE} (reading {path} refused)")
            if real.startswith(data_dirs):
                raise PermissionError(f"{RULE_DATA} (reading {path} refused)")
            if any(_system_path(step, own) for step in _steps(path)) or os.path.isdir(real):
                raise PermissionError(f"{RULE_SYSTEM} (opening {path} refused)")
        elif event in ("os.listdir", "os.scandir") and isinstance(args[0], (str, bytes, os.PathLike)):
            if any(_system_path(step, own) for step in _steps(os.fsdecode(args[0]))):
                raise PermissionError(f"{RULE_SYSTEM} (listing {os.fsdecode(args[0])} refused)")
        elif event.startswith(PROCESS_EVENTS) or event.startswith("ctypes."):
            raise PermissionError(f"{RULE_SYSTEM} ({event} refused)")
        elif event == "os.kill" and args[0] != own:
            raise PermissionError(f"{RULE_SYSTEM} (os.kill of process {args[0]} refused)")

    class Refuse:  # first on sys.meta_path: names the rule even when the module is not on sys.path
        @staticmethod
        def find_spec(name, path=None, target=None):
            rule = _refused(name, forbidden)
            if rule:
                raise ImportError(f"{rule} (import {name} refused)")
            return None

    for name in [m for m in sys.modules if _refused(m, forbidden)]:
        del sys.modules[name]  # nothing of the engine stays importable from the cache
    import _posixsubprocess  # subprocess's fork_exec raises no audit event: replace it (SciPy imports
    _posixsubprocess.fork_exec = _refusing("_posixsubprocess.fork_exec", RULE_SYSTEM)  # subprocess)
    sys.meta_path.insert(0, Refuse())
    sys.addaudithook(hook)  # stays even if the learner removes Refuse from sys.meta_path
    for name, rule in numpy_forbidden.items():
        original = getattr(np, name)
        refusing = _refusing(f"numpy.{name}", rule)
        for module in [m for k, m in list(sys.modules.items()) if k.split(".")[0] == "numpy"]:
            if getattr(module, name, None) is original:  # numpy._core.numeric.correlate too
                setattr(module, name, refusing)
            for kernel in NUMPY_KERNELS.get(name, ()):  # the C routine behind it
                if hasattr(module, kernel):
                    setattr(module, kernel, _refusing(f"numpy.{name}'s kernel {kernel}", rule))


def _steps(path: str, limit: int = 40) -> list[str]:
    """Every path `path` passes through on its way to a file: itself made absolute, then each symbolic
    link followed one at a time (/proc/PID/fd/N resolves to "pipe:[..]", so the whole resolution is
    checked, not only where it ends)."""
    steps = [os.path.abspath(path)]
    for _ in range(limit):
        folder = os.path.realpath(os.path.dirname(steps[-1]))
        here = os.path.join(folder, os.path.basename(steps[-1]))
        steps.append(here)
        if not os.path.islink(here):
            break
        steps.append(os.path.normpath(os.path.join(folder, os.readlink(here))))
    return steps


def _system_path(real: str, own: int) -> bool:
    """Is `real` (an absolute path) another process's /proc entry, /proc itself or a memory device?"""
    if real in MEMORY_DEVICES:
        return True
    if real != "/proc" and not real.startswith("/proc/"):
        return False
    parts = real.split("/")  # ["", "proc", entry, ...]
    return len(parts) < 3 or parts[2] not in (str(own), "self", "thread-self")


def _refusing(name: str, rule: str):
    def refuse(*args, **kwargs):
        raise RuntimeError(f"{rule} ({name} refused)")
    refuse.__name__ = name.rsplit(".", 1)[-1]
    return refuse


# ---- the learner's code -------------------------------------------------------------------------


def _is_theirs(filename: str, path: str) -> bool:
    try:
        return os.path.samefile(filename, path)
    except OSError:
        return False


def learner_traceback(exc: BaseException, path: str, shown: str) -> list[str]:
    """Their traceback: the frames from their file only, then the exception line."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if _is_theirs(f.filename, path)]
    lines = ["Traceback (your code, most recent call last):"]
    hidden = 0
    if len(frames) > MAX_FRAMES:  # deep recursion: the first and the last frames tell the story
        hidden = len(frames) - 5
        frames = frames[:2] + [None] + frames[-3:]
    for f in frames:
        if f is None:
            lines.append(f"  ... {hidden} more frames ...")
            continue
        lines.append(f'  File "{shown}", line {f.lineno}, in {f.name}')
        if f.line:
            lines.append(f"    {f.line.strip()}")
    if isinstance(exc, SyntaxError) and exc.filename and _is_theirs(exc.filename, path):
        lines.append(f'  File "{shown}", line {exc.lineno}')
        if exc.text:
            lines.append(f"    {exc.text.strip()}")
    lines += [s.rstrip() for s in traceback.format_exception_only(type(exc), exc)[-1:]]
    return lines


def _snapshot(value: Any) -> Any:
    """A deep copy of the arrays in `value` (lists and tuples followed), to spot in-place changes."""
    if isinstance(value, np.ndarray):
        return value.copy()
    if isinstance(value, (list, tuple)):
        return [_snapshot(v) for v in value]
    return value


def _same(before: Any, after: Any) -> bool:
    if isinstance(before, np.ndarray):
        return isinstance(after, np.ndarray) and before.shape == after.shape and \
            before.dtype == after.dtype and np.array_equal(before, after, equal_nan=True)
    if isinstance(before, list):
        return isinstance(after, (list, tuple)) and len(before) == len(after) and \
            all(_same(b, a) for b, a in zip(before, after, strict=True))
    return True


def _argument_names(fn, count: int) -> list[str]:
    import inspect

    try:
        names = list(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        names = []
    return [names[i] if i < len(names) else f"argument {i + 1}" for i in range(count)]


def _call(namespace: dict, request: dict, path: str, shown: str, printed: io.StringIO) -> dict:
    name = request["function"]
    args, kwargs = list(decode(request["args"])), decode(request["kwargs"])
    before = [_snapshot(a) for a in args]
    before_kw = {k: _snapshot(v) for k, v in kwargs.items()}
    try:
        result = namespace[name](*args, **kwargs)
    except (Exception, SystemExit) as exc:  # their code may even call sys.exit()
        frames = [f for f in traceback.extract_tb(exc.__traceback__) if _is_theirs(f.filename, path)]
        return {"ok": False, "error": learner_traceback(exc, path, shown),
                "not_implemented": isinstance(exc, NotImplementedError),
                "line": frames[-1].lineno if frames else 0, "printed": _drain(printed)}
    names = _argument_names(namespace[name], len(args))
    changed = [names[i] for i, (b, a) in enumerate(zip(before, args, strict=True)) if not _same(b, a)]
    changed += [k for k, b in before_kw.items() if not _same(b, kwargs[k])]
    return {"ok": True, "result": encode(result), "changed": changed, "printed": _drain(printed)}


def _drain(printed: io.StringIO) -> list[str]:
    lines = printed.getvalue().splitlines()
    printed.seek(0)
    printed.truncate()
    return lines


def main(config: dict) -> int:
    out = os.fdopen(os.dup(1), "w")  # the protocol's own channel; the learner's print() goes to a buffer
    printed = io.StringIO()
    sys.stdout = printed
    sys.stdin = io.StringIO()
    requests = os.fdopen(os.dup(0), "r")
    os.close(0)

    def send(message: dict) -> None:
        out.write(json.dumps(message) + "\n")
        out.flush()

    path, shown = config["path"], config["shown"]
    source = open(path).read()
    install_rules(config["package_dir"], config["forbidden"], config["numpy_forbidden"],
                  tuple(config.get("data_dirs", ())))
    np.seterr(all="ignore")
    sys.path.insert(0, os.path.dirname(path))  # their own helper modules beside their file import
    namespace: dict[str, Any] = {"__name__": "exercise", "__file__": path}
    try:
        exec(compile(source, path, "exec"), namespace)
    except (Exception, SystemExit) as exc:
        send({"ok": False, "error": learner_traceback(exc, path, shown), "printed": _drain(printed)})
        return 0
    functions = [k for k, v in namespace.items() if callable(v)]
    if config.get("driver"):  # the grader's wiring (the capstone's LeNet-5), run on the learner's functions
        driver: dict[str, Any] = {"__name__": "driver"}
        exec(compile(config["driver"], "driver", "exec"), driver)
        driver["pieces"] = namespace
        namespace.update({DRIVER_PREFIX + k: v for k, v in driver.items() if callable(v)})
    send({"ok": True, "functions": functions, "printed": _drain(printed)})
    for line in requests:
        send(_call(namespace, json.loads(line), path, shown, printed))
    return 0


if __name__ == "__main__":
    sys.exit(main(json.loads(sys.argv[1])))
