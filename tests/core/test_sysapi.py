"""The _sys API has one home: its name and method names are written in zpomelo/sysapi.py only."""
import os
import re

import pytest

from zpomelo import sysapi

PACKAGE = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(__file__))), "zpomelo")

pytestmark = pytest.mark.timeout(30)


def _sources():
    for root, _dirs, files in os.walk(PACKAGE):
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(root, name)
                with open(path, encoding="utf-8") as f:
                    yield os.path.relpath(path, PACKAGE), f.read()


def test_sys_and_its_method_names_are_defined_in_one_module():
    names = [v for k, v in vars(sysapi).items() if k.isupper() and isinstance(v, str)]
    assert sysapi.SYS == "_sys" and "session_bind" in names and "push" in names
    for path, text in _sources():
        if path == "sysapi.py":
            continue
        assert '"_sys"' not in text, path
        for name in names:
            if name in ("push", "forward", "hello"):   # common words; checked through SYS uses
                continue
            assert not re.search(r"[\"']%s[\"']" % re.escape(name), text), (path, name)


def test_every_caller_method_has_a_server_method():
    service = sysapi.SysService(app=None)
    served = set(service._methods)
    method_names = {v for k, v in vars(sysapi).items()
                    if k.isupper() and isinstance(v, str) and k not in ("SYS",)}
    assert method_names == served
