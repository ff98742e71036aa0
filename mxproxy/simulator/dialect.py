"""Rewrites of outgoing XML for the dialect quirks: the forms a real MX may use that the Go
readers accept (prolog, namespaces, ``<x/>``, booleans as digits or letters, unknown markup).

Applied to the finished message text, after ``messages`` built it, so every message builder
stays one shape. Values are not touched except boolean words that are a whole text or attribute
value (``>true<``, ``="false"``), which in the simulator's messages are only booleans.
"""

from __future__ import annotations

import re
from typing import Callable

from mxproxy.simulator.messages import ECMA_323_NS
from mxproxy.simulator.quirks import Quirks

__all__ = ["dialect", "PROLOG", "EXTRA_ATTRIBUTE", "EXTRA_ELEMENT"]

PROLOG = '<?xml version="1.0" encoding="utf-8"?>'
EXTRA_ATTRIBUTE = ' x-extra="1"'
EXTRA_ELEMENT = "<x-unknown><x-deep>1</x-deep></x-unknown>"

_BOOLEANS = {"digit": ("1", "0"), "letter": ("t", "f"), "upper": ("TRUE", "FALSE")}
_BOOLEAN_VALUE = re.compile(r'(>|=")(true|false)(<|")')
_START_TAG = re.compile(r"<([A-Za-z_][\w.\-]*)(?=[\s>/])")
_EMPTY = re.compile(r"<([A-Za-z_][\w.\-:]*)((?:\s[^<>]*?)?)></\1>")
_ROOT = re.compile(r"^<([A-Za-z_][\w.\-]*)")


def dialect(quirks: Quirks) -> Callable[[str], str] | None:
    """The rewrite for ``quirks``, or None when messages go out as built."""
    if not quirks.reshapes_xml:
        return None
    words = _BOOLEANS.get(quirks.booleans)

    def rewrite(xml: str) -> str:
        if words is not None:
            xml = _BOOLEAN_VALUE.sub(lambda m: m.group(1) + words[m.group(2) == "false"] + m.group(3), xml)
        if quirks.extra_markup:
            xml = _START_TAG.sub(lambda m: m.group(0) + EXTRA_ATTRIBUTE, xml)
            end = xml.rfind("</")
            xml = xml[:end] + EXTRA_ELEMENT + xml[end:] if end > 0 else xml
        if quirks.empty_elements == "self-closing":
            xml = _EMPTY.sub(r"<\1\2/>", xml)
        if quirks.reply_namespace and "xmlns=" not in xml[:200]:
            xml = _ROOT.sub(lambda m: f'{m.group(0)} xmlns="{ECMA_323_NS}"', xml, count=1)
        if quirks.xml_prolog:
            xml = PROLOG + xml
        return xml

    return rewrite
