"""docs/events.md and the OpenAPI schemas tell the truth about the events a real MX session
produces: every type is documented with an example whose keys are those of a real event, and
real events (and the examples) validate against ``components.schemas.Event``."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest

from mxproxy.api.openapi import openapi_document
from mxproxy.events.model import EVENT_TYPES
from tests.events.conftest import EventsEnv, every_type

DOC = Path(__file__).resolve().parents[2] / "docs" / "events.md"
_HEADING = re.compile(r"^#{3,4} `([a-z]+\.[a-z]+)`$")


def documented() -> dict[str, dict[str, Any]]:
    """The first ```json block after each "### `type`" heading, by type."""
    examples: dict[str, dict[str, Any]] = {}
    kind: str | None = None
    block: list[str] | None = None
    for line in DOC.read_text().splitlines():
        if block is not None:
            if line == "```":
                assert kind is not None and kind not in examples, f"{kind} documented twice"
                examples[kind] = json.loads("\n".join(block))
                kind, block = None, None
            else:
                block.append(line)
        elif (heading := _HEADING.match(line)) is not None:
            kind = heading.group(1)
        elif line.startswith("#"):
            kind = None
        elif line == "```json" and kind is not None:
            block = []
    return examples


def event_schema() -> Any:
    schema = {"$ref": "#/components/schemas/Event", "components": openapi_document()["components"]}
    return jsonschema_rs.validator_for(schema, validate_formats=True)


def keys(envelope: dict[str, Any]) -> tuple[list[str], list[str]]:
    return sorted(envelope), sorted(envelope["data"])


def test_every_event_type_has_one_documented_example_of_its_type() -> None:
    examples = documented()
    assert list(examples) == list(EVENT_TYPES)
    assert all(example["type"] == kind for kind, example in examples.items())


async def test_documented_examples_have_the_keys_of_real_events_and_all_match_the_openapi_schema(
    events_env: EventsEnv
) -> None:
    real: dict[str, dict[str, Any]] = {}
    for event in await every_type(events_env):
        envelope = event.envelope()
        if event.type == "call.ended" and envelope["data"]["reason"] != "hangup":
            continue  # the documented one is a plain hang-up
        real.setdefault(event.type, envelope)
    assert sorted(real) == sorted(EVENT_TYPES)
    validator = event_schema()
    for kind, example in documented().items():
        assert keys(example) == keys(real[kind]), kind
        validator.validate(example)
        validator.validate(real[kind])
        for key, value in example["data"].items():  # the same JSON types (null where either may be null)
            other = real[kind]["data"][key]
            assert type(value) is type(other) or None in (value, other), (kind, key)


@pytest.mark.parametrize("change, path", [
    (lambda e: e["data"].pop("callUUID"), "callUUID"),
    (lambda e: e.update(type="call.bogus"), "type"),
    (lambda e: e.update(id="1"), "id"),
    (lambda e: e["data"].update(direction="sideways"), "direction"),
])
def test_the_event_schema_refuses_what_the_stream_never_sends(change: Any, path: str) -> None:
    example = documented()["call.ringing"]
    assert event_schema().is_valid(example)
    change(example)
    assert not event_schema().is_valid(example), path
