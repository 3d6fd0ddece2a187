"""A real ``prepaid run``'s own output: one line format, no object addresses, no access lines at info."""

from __future__ import annotations

import json
import re
import urllib.request

from tests.sipp.node import start_node

#: Twisted's stamp, then the namespace and level: ``2026-12-05T08:05:26+0000 [b2bua.node.app#info] ...``
STAMPED = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d{4} \[")


def test_a_nodes_output_is_stamped_lines_without_object_addresses_or_access_lines(tmp_path):
    """Start (with migrations), two requests, stop: every line but the ready line carries the time; no line
    names a Python object (``at 0x``); neither Alembic's plugin lines nor an access line appear at info;
    with ``[http] access_log`` the two requests are in that file."""
    access = tmp_path / "access.log"
    node = start_node(tmp_path, agents=["sip:agent@127.0.0.1:9"], sections={"http": {"access_log": json.dumps(str(access))}})
    try:
        ready = json.loads(next(line for line in "".join(node.output).splitlines() if line.startswith('{"ready"')))
        for path in ("/healthz", "/topup/demo"):
            with urllib.request.urlopen(f"http://127.0.0.1:{ready['ports']['http']}{path}", timeout=10) as answer:
                assert answer.status == 200
    finally:
        output = node.stop()
    lines = [line for line in output.splitlines() if line and not line.startswith('{"ready"')]
    assert lines and all(STAMPED.match(line) for line in lines), output
    assert " at 0x" not in output and "setup plugin" not in output, output
    assert "/healthz" not in output and "/topup/demo" not in output, output
    logged = access.read_text().splitlines()
    assert len(logged) == 2 and '"GET /healthz" 200' in logged[0] and '"GET /topup/demo" 200' in logged[1]
