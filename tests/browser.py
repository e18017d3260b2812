"""What the headless-Chromium tests need (node, Debian's chromium, playwright-core from
tests/node), checked once for all of them: a test calls ``skip_without_browser()`` first."""
import os
import shutil

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")     # the .mjs scripts read it too
PLAYWRIGHT = os.path.join(ROOT, "tests", "node", "node_modules", "playwright-core")


def missing_tools():
    return ", ".join(name for name, present in (
        ("node", shutil.which("node")), (CHROMIUM, os.path.exists(CHROMIUM)),
        ("playwright-core (npm install in tests/node)", os.path.isdir(PLAYWRIGHT))) if not present)


def skip_without_browser():
    missing = missing_tools()
    if missing:
        pytest.skip("needs %s (tests/install-system-deps.sh installs them)" % missing)
