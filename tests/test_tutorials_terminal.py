"""Every chapter at a real 80x24 terminal (a pseudo-terminal, answered like a reader pressing Enter):
no page is taller than the screen, every picture (`Tutorial.blocks`) is whole on one page, no row is
wider than 80 columns, and the chapter menu pages too."""

from __future__ import annotations

import io
import os
import re
import sys

import numpy as np
import pytest
from test_tutorials import PAUSE, _pty_run, _screen_rows

import tutorials
from tutorials._runner import PICTURE_PAGE, UNAVAILABLE, Tutorial

ROWS, COLS = 24, 80
CHAPTERS = tutorials.chapter_modules()
MENU_PROMPT = re.compile(r"chapter number to run")
PICTURE_TOP = re.compile(r"^  ┌─+┐$")
PICTURE_BOTTOM = re.compile(r"^  └─+┘$")
LINUX = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="pseudo-terminal test written for Linux")


def pages(rows: list[str]) -> list[list[str]]:
    """The screen's rows between two pauses (a `-- more --` or an end-of-step prompt)."""
    found, page = [], []
    for row in rows:
        if PAUSE.search(row):
            found.append(page)
            page = []
        else:
            page.append(row)
    return [*found, page]


def pictures_split(page_list: list[list[str]]) -> int:
    """How many pictures start on one page and end on another."""
    split = 0
    for page in page_list:
        open_ = False
        for row in page:
            if PICTURE_TOP.match(row):
                open_ = True
            elif PICTURE_BOTTOM.match(row):
                if not open_:
                    split += 1
                open_ = False
        split += open_
    return split


@LINUX
@pytest.mark.parametrize("number", list(CHAPTERS))
def test_every_chapter_fits_an_80x24_terminal(number):
    if number == 14 and not os.environ.get("MINICNN_DATA"):
        pytest.skip("chapter 14 trains on MNIST: set MINICNN_DATA to the dataset folder")
    rc, text = _pty_run([str(number), "--quick"], answer=lambda _out: "\n", rows=ROWS, cols=COLS, timeout=900)
    if rc == UNAVAILABLE and not os.environ.get("MINICNN_DATA"):
        pytest.skip(f"chapter {number} needs real data (set MINICNN_DATA)")
    assert rc == 0, text[-2000:]
    assert f"Chapter {number} done: ran step(s) all" in text
    rows = _screen_rows(text)
    assert max(len(r) for r in rows) <= COLS
    found = pages(rows)
    tallest = max(len(p) for p in found)
    assert tallest <= ROWS - 1, f"a page of {tallest} rows on a {ROWS}-row screen"
    assert pictures_split(found) == 0, "a picture is split across two pages"


@LINUX
def test_the_menu_pages_at_24_rows():
    rc, text = _pty_run([], answer=lambda out: "q\n" if MENU_PROMPT.search(_screen_rows(out)[-1]) else " ",
                        rows=ROWS, cols=COLS, prompt=re.compile(f"{PAUSE.pattern}|{MENU_PROMPT.pattern}"))
    assert rc == 0, text[-2000:]
    rows = _screen_rows(text)
    assert "-- more -- the chapters" in text, "the menu of 15 chapters is longer than one screen"
    assert max(len(p) for p in pages(rows)) <= ROWS - 1
    last = max(CHAPTERS)
    assert f"{last:4d}. " in text, "the menu's last chapter is shown after the pause"


def test_a_tall_picture_is_shown_downscaled_and_says_so():
    out = io.StringIO()
    t = Tutorial(1, out=out, color=False, width=COLS)
    picture = np.add.outer(np.arange(32.0), np.arange(32.0))  # 32x32: 35 rows at full size
    t.blocks("x", picture)
    rows = out.getvalue().splitlines()
    assert "32x32 shown as 16x16 (2x2 means)" in rows[0]
    assert len(rows) == 16 + 3 <= PICTURE_PAGE - 2


def test_symmetric_values_get_symmetric_shades():
    out = io.StringIO()
    t = Tutorial(1, out=out, color=False, width=COLS)
    x = np.abs(np.linspace(-1.0, 1.0, 9))  # values that sit on the shades' bin edges
    t.blocks("|x|", np.outer(x, x))
    cells = [row[3:-1] for row in out.getvalue().splitlines()[2:-1]]
    assert cells == cells[::-1] and all(row == row[::-1] for row in cells)


def test_a_picture_that_does_not_fit_the_rest_of_the_page_starts_a_new_one():
    out = io.StringIO()
    t = Tutorial(1, out=out, color=False, width=COLS, page_rows=ROWS, inp=io.StringIO("\n" * 5))
    for k in range(15):
        t.print(f"line {k}")
    t.blocks("x", np.eye(10))  # 13 rows: does not fit the 7 left
    rows = out.getvalue().replace("\r\x1b[K", "\n").split("\n")
    assert pictures_split(pages(rows)) == 0
    assert any("-- more --" in r for r in rows)
