"""``?types=call.*,voicemail.new`` (SSE) and a webhook's ``events`` list: which types pass."""

from __future__ import annotations

from typing import Iterable

from mxproxy.events.model import EVENT_TYPES

_GROUPS = sorted({t.split(".", 1)[0] for t in EVENT_TYPES})


class TypeFilter:
    """A set of event types; ``*`` or an empty/absent text means every type, ``call.*`` every
    type of one group. Unknown names raise ValueError naming them, so a typo never silently
    filters everything out."""

    __slots__ = ("types",)

    def __init__(self, types: Iterable[str] = EVENT_TYPES) -> None:
        self.types: frozenset[str] = frozenset(types)

    @classmethod
    def parse(cls, text: str | None) -> "TypeFilter":
        if text is None or not text.strip():
            return cls()
        return cls.of(text.split(","))

    @classmethod
    def of(cls, names: Iterable[str]) -> "TypeFilter":
        """From a list of names (a webhook's ``events``); empty → every type."""
        chosen: set[str] = set()
        unknown: list[str] = []
        given = False
        for raw in names:
            name = raw.strip()
            if not name:
                continue
            given = True
            if name == "*":
                chosen.update(EVENT_TYPES)
            elif name.endswith(".*") and name[:-2] in _GROUPS:
                prefix = name[:-1]
                chosen.update(t for t in EVENT_TYPES if t.startswith(prefix))
            elif name in EVENT_TYPES:
                chosen.add(name)
            else:
                unknown.append(name)
        if unknown:
            raise ValueError(f"unknown event type {', '.join(repr(u) for u in unknown)} "
                             f"(known: {', '.join(EVENT_TYPES)}, or a group such as call.*)")
        return cls(chosen if given else EVENT_TYPES)

    @property
    def everything(self) -> bool:
        return len(self.types) == len(EVENT_TYPES)

    def __call__(self, event_type: str) -> bool:
        return event_type in self.types

    def names(self) -> list[str]:
        """The chosen types in documentation order (for echoing a filter back)."""
        return [t for t in EVENT_TYPES if t in self.types]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TypeFilter) and other.types == self.types

    def __hash__(self) -> int:
        return hash(self.types)

    def __repr__(self) -> str:
        return f"TypeFilter({','.join(self.names())})"
