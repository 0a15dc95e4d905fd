"""Open a credibility report in a real browser and check that every figure renders.

Headless Chromium (Debian's ``chromium``, installed with apt-get when missing) loads
the page twice: once with ``--dump-dom`` to read the marker the page's own script
sets once its images have decoded (``data-figures-ok="N"`` on ``<body>``, or
``data-figures-broken="names"``), once with ``--screenshot``. The check fails when
the marker is missing, names a broken figure, or counts fewer figures than the page
holds. ``--self-test`` also renders a copy with one figure's data corrupted and
fails unless that copy is caught.

Usage::

    python bench/render_report.py REPORT.html --screenshot shot.png [--self-test]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--hide-scrollbars",
    "--virtual-time-budget=10000",
]


def ensure_chromium() -> str:
    """Path of Chromium; installs Debian's package when it is missing."""
    found = shutil.which("chromium") or (CHROMIUM if Path(CHROMIUM).exists() else None)
    if found:
        return found
    print("chromium missing: installing Debian's package with apt-get", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-q"], check=True, env=env)
    subprocess.run(
        ["apt-get", "install", "-y", "-q", "--no-install-recommends", "chromium"],
        check=True,
        env=env,
    )
    return CHROMIUM


def _run(browser: str, profile: str, extra: list[str], page: Path) -> str:
    cmd = [browser, *FLAGS, f"--user-data-dir={profile}", *extra, page.as_uri()]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    if done.returncode != 0:
        raise RuntimeError(f"chromium exited {done.returncode}: {done.stderr[-2000:]}")
    return done.stdout


def check_figures(browser: str, page: Path) -> tuple[bool, str]:
    """Whether every ``<img data-figure>`` of ``page`` decoded, and a message."""
    expected = len(re.findall(r"<img data-figure=", page.read_text(encoding="utf-8")))
    with tempfile.TemporaryDirectory() as profile:
        dom = _run(browser, profile, ["--dump-dom"], page)
    body = re.search(r"<body([^>]*)>", dom)
    attrs = body.group(1) if body else ""
    broken = re.search(r'data-figures-broken="([^"]*)"', attrs)
    ok = re.search(r'data-figures-ok="(\d+)"', attrs)
    if broken:
        return False, f"figures that did not render: {broken.group(1)}"
    if not ok:
        return False, "the page never marked its figures (script did not run?)"
    if expected == 0 or int(ok.group(1)) != expected:
        return False, f"{ok.group(1)} figures decoded, {expected} in the page"
    return True, f"all {expected} figures rendered"


def screenshot(browser: str, page: Path, out: Path, size: str) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as profile:
        _run(
            browser,
            profile,
            [f"--screenshot={out.resolve()}", f"--window-size={size}"],
            page,
        )
    if not out.is_file() or out.stat().st_size == 0:
        raise RuntimeError(f"no screenshot written to {out}")


def _corrupted_copy(page: Path, folder: Path) -> Path:
    text = page.read_text(encoding="utf-8")
    broken = re.sub(
        r"(<img data-figure='[^']*' alt='[^']*' src='data:image/png;base64,)"
        r"([A-Za-z0-9+/]{64})",
        r"\1AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        text,
        count=1,
    )
    if broken == text:
        raise RuntimeError("no inline figure found to corrupt")
    copy = folder / "broken.html"
    copy.write_text(broken, encoding="utf-8")
    return copy


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report", type=Path, help="report.html")
    parser.add_argument("--screenshot", type=Path, default=Path("report.png"))
    parser.add_argument("--window-size", default="1200,3200")
    parser.add_argument(
        "--self-test",
        action="store_true",
        help="also check that a copy with a corrupted figure is caught",
    )
    args = parser.parse_args(argv)
    page = args.report.resolve()
    browser = ensure_chromium()
    ok, message = check_figures(browser, page)
    print(f"{page.name}: {message}")
    screenshot(browser, page, args.screenshot, args.window_size)
    print(f"screenshot {args.screenshot}")
    if args.self_test:
        with tempfile.TemporaryDirectory() as tmp:
            caught, why = check_figures(browser, _corrupted_copy(page, Path(tmp)))
        print(f"corrupted copy: {why}")
        if caught:
            print("self-test FAILED: a corrupted figure went unnoticed")
            return 1
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
