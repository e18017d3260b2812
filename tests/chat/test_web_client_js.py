"""Runs the chat page's JavaScript unit tests (tests/js/*.test.mjs) under node's test runner."""
import os
import re
import shutil
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
JS_TESTS = os.path.join(ROOT, "tests", "js")


@pytest.mark.timeout(90)
def test_node_unit_tests_of_the_page_codec_and_client_pass():
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed (tests/install-system-deps.sh installs it)")
    files = sorted(os.path.join(JS_TESTS, f) for f in os.listdir(JS_TESTS) if f.endswith(".test.mjs"))
    assert files, "no tests/js/*.test.mjs found"
    run = subprocess.run([node, "--test", *files], cwd=ROOT, capture_output=True, text=True, timeout=80)
    report = run.stdout + run.stderr
    assert run.returncode == 0, report[-4000:]
    passed = re.search(r"^# pass (\d+)$", report, re.M)
    failed = re.search(r"^# fail (\d+)$", report, re.M)
    assert passed and int(passed.group(1)) > 0, report[-4000:]
    assert failed and int(failed.group(1)) == 0, report[-4000:]
