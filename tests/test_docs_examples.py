"""Every ``curl`` line of the README and docs/*.md is executed against ``mxproxy demo`` (the same
``DemoRequest`` machinery that runs the demo's own printed commands), so a documented example that
stops working fails here.

Lines run in document order after the demo's sign-in and device-token registrations, which are
repeated after a documented sign-out (so it does not break the next example). Hosts are the documented defaults, mapped
to the demo's ports: ``localhost:8043`` the admin API, ``localhost:8000`` the public API and
``$C`` the simulator's control API (docs/simulator.md). An inline example with an elision (``…``)
or a placeholder (``<host:port>``) is a template, not a command; a fenced one must be complete.
"""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from mxproxy.demo import Demo, DemoRequest
from tests.test_demo import _execute

ROOT = Path(__file__).resolve().parents[1]
FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.S | re.M)
INLINE = re.compile(r"`(curl [^`]+)`")


def split_commands(line: str) -> list[str]:
    """``a; b # note`` → ``["a", "b"]``: split on ``;`` and cut a ``#`` comment, outside quotes."""
    parts, current, quote = [], "", ""
    for char in line:
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == ";":
            parts.append(current)
            current = ""
            continue
        elif char == "#" and (not current or current[-1].isspace()):
            break
        current += char
    parts.append(current)
    return [p.strip() for p in parts if p.strip()]


def documented_commands(path: Path) -> list[str]:
    text = path.read_text()
    commands: list[str] = []
    for block in FENCE.findall(text):
        for line in block.splitlines():
            if line.strip().startswith("curl "):
                found = [c for c in split_commands(line.strip()) if c.startswith("curl ")]
                assert all("…" not in c for c in found), f"{path.name}: elided command in a code block: {line}"
                commands += found
    prose = FENCE.sub("", text)
    # inline code is an example only when complete: no elision or <placeholder>, and a URL
    # (`curl -d` is prose)
    commands += [c for c in INLINE.findall(prose)
                 if "…" not in c and not re.search(r"<[^>\s]+>", c) and re.search(r"\s[^-\s]\S*[/:]", c)]
    return commands


DOCS = sorted(p for p in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))] if documented_commands(p))


def test_the_readme_and_the_operations_and_simulator_docs_have_examples() -> None:
    names = {p.name for p in DOCS}
    assert {"README.md", "operations.md", "simulator.md"} <= names, names
    assert split_commands("curl a/readyz; curl a/metrics  # two") == ["curl a/readyz", "curl a/metrics"]
    assert split_commands("curl x -d '{\"a\": \"#;\"}'") == ["curl x -d '{\"a\": \"#;\"}'"]
    with pytest.raises(ValueError, match="needs a value"):
        DemoRequest.from_curl("curl -d")


def test_parsing_a_printed_demo_command_gives_the_same_command() -> None:
    demo = Demo()
    demo.proxy = type("P", (), {"public_url": "http://127.0.0.1:8000", "admin_url": None})()
    demo.simulator = type("S", (), {"control_url": "http://127.0.0.1:7780", "port": 7778})()
    from mxproxy.simulator import demo_fixture

    demo.fixture = demo_fixture()
    for request in demo.requests():
        if not request.capture_token:
            assert DemoRequest.from_curl(request.curl()).curl() == request.curl()


def _localise(command: str, demo: Demo) -> str:
    admin = demo.admin_url.split("://", 1)[1]
    api = demo.api_url.split("://", 1)[1]
    for default, actual in (("localhost:8043", admin), ("127.0.0.1:8043", admin),
                            ("localhost:8000", api), ("127.0.0.1:8000", api)):
        command = command.replace(default, actual)
    return command.replace("$C", demo.simulator.control_url)


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
async def test_every_documented_curl_line_works_against_the_demo(doc: Path, tmp_path: Path) -> None:
    demo = Demo(port="127.0.0.1:0", admin="127.0.0.1:0", mx_port=0, control="127.0.0.1:0")
    await demo.start()
    try:
        setup = [r for r in demo.requests() if not r.url.startswith(demo.simulator.control_url)]
        signed_in = False
        token: str | None = None
        async with httpx.AsyncClient(timeout=30) as client:
            for command in documented_commands(doc):
                if not signed_in:
                    for request in setup:
                        response = await _execute(client, request, token, tmp_path)
                        assert response.status_code < 300, (request.title, response.text)
                        if request.capture_token:
                            token = response.json()["access_token"]
                    signed_in = True
                request = DemoRequest.from_curl(_localise(command, demo))
                response = await _execute(client, request, token, tmp_path)
                assert response.status_code < 400, (doc.name, command, response.status_code, response.text)
                if request.method == "POST" and (request.url == f"{demo.admin_url}/users"
                                                 or request.url.startswith(f"{demo.simulator.control_url}/users/")):
                    signed_in = False  # a sign-out or a cut MX session: sign in again, as the user would
    finally:
        await demo.stop()
