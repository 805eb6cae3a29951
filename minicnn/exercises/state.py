"""The learner's progress, kept in the exercise folder as `.progress.json`.

    {"exercises": {"linear": {"status": "passed", "passed_once": true, "hints": 2}, ...}}

status is "failing" or "passed" after the last check; `passed_once` remembers that some check passed
(so an edit that breaks a passed exercise shows "passed earlier, now failing", not just "failing");
`hints` counts the hints shown. Written by the write rule (`minicnn.files.write_atomic`: a temporary
file, then a rename; never onto a folder, device, FIFO or symbolic link, which raise TargetError), so
an interrupted command never leaves a broken file; a file that cannot be read is treated as no
progress (and replaced on the next write: it is the exercises' own file).
"""

from __future__ import annotations

import json
from pathlib import Path

from minicnn.files import write_atomic

FILENAME = ".progress.json"
PASSED_BEFORE = "passed earlier, now failing"


class Progress:
    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.path = self.folder / FILENAME
        try:
            data = json.loads(self.path.read_text())
            self.exercises: dict[str, dict] = dict(data.get("exercises", {}))
        except (OSError, ValueError, AttributeError):
            self.exercises = {}

    def status(self, name: str) -> str:
        """"not started" (no file), "started" (file, never checked), "failing", "passed", or
        "passed earlier, now failing" (the last check failed, an earlier one passed)."""
        entry = self.exercises.get(name, {})
        recorded = entry.get("status")
        if not (self.folder / f"{name}.py").exists():
            return "not started"
        if recorded == "failing" and entry.get("passed_once"):
            return PASSED_BEFORE
        return recorded or "started"

    def set_status(self, name: str, passed: bool) -> None:
        entry = self.exercises.setdefault(name, {})
        entry["status"] = "passed" if passed else "failing"
        entry["passed_once"] = bool(passed or entry.get("passed_once"))
        self.save()

    def next_hint(self, name: str) -> int:
        """Index of the hint to show now (0, 1, ...); counts it as shown."""
        entry = self.exercises.setdefault(name, {})
        index = int(entry.get("hints", 0))
        entry["hints"] = index + 1
        self.save()
        return index

    def save(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        text = json.dumps({"exercises": self.exercises}, indent=1, sort_keys=True)
        write_atomic(self.path, lambda tmp: tmp.write_text(text), overwrite=True)
