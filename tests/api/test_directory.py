"""``/contacts`` and ``/services`` against the simulator's demo fixture (the README's people)."""

from __future__ import annotations

import pytest

from tests.api.conftest import ApiHarness
from tests.api.readme_examples import README_CONTACTS, README_SERVICES

#: every route test here runs against each MX simulator profile; MX-free ones only on "spec"
pytestmark = pytest.mark.profiles


async def test_contacts_equal_the_readme_list(api: ApiHarness, token: str) -> None:
    r = await api.client.get("/contacts", headers=api.bearer(token))
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json; charset=utf-8"
    assert r.json() == {"contacts": README_CONTACTS}


@pytest.mark.profiles("spec")  # not protocol-sensitive
async def test_contact_jids_are_strings_with_every_digit(api: ApiHarness, token: str) -> None:
    r = await api.client.get("/contacts", headers=api.bearer(token))
    assert '"jid": "43884851147406145"' in r.text


async def test_services_have_the_readme_shape(api: ApiHarness, token: str) -> None:
    r = await api.client.get("/services", headers=api.bearer(token))
    assert r.status_code == 200
    services = r.json()["services"]
    assert services, "the demo fixture has services"
    for item in services:
        assert set(item) <= {"id", "name", "type", "ext", "homeSystem"}
        assert isinstance(item["id"], str) and item["id"].isdigit()
    readme = {(s["id"], s["name"], s["type"], s["ext"]) for s in README_SERVICES}
    ours = {(s["id"], s["name"], s["type"], s["ext"]) for s in services}
    assert readme <= ours


@pytest.mark.profiles("spec")
async def test_contacts_need_a_token(api: ApiHarness) -> None:
    assert (await api.client.get("/contacts")).status_code == 401


async def test_contacts_are_rendered_once_per_cached_directory_and_refreshed_with_it(
    api: ApiHarness, token: str
) -> None:
    """The answer is kept as bytes (plain and gzip) with the cached directory: repeated requests
    get the same bytes, an address-book change (the MX's event) replaces both forms."""
    from tests.waiting import eventually

    plain = {**api.bearer(token), "Accept-Encoding": "identity"}
    zipped = {**api.bearer(token), "Accept-Encoding": "gzip"}
    first = await api.client.get("/contacts", headers=plain)
    assert (await api.client.get("/contacts", headers=plain)).content == first.content
    before = await api.client.get("/contacts", headers=zipped)
    assert before.headers["content-encoding"] == "gzip" and before.json() == first.json()
    await api.sim.add_directory_entry("250", jid=777, first_name="Dora", last_name="New")

    async def listed() -> bool:
        r = await api.client.get("/contacts", headers=zipped)
        return any(c["jid"] == "777" for c in r.json()["contacts"])

    await eventually(listed, "the new entry is in the gzipped answer")
    after = await api.client.get("/contacts", headers=plain)
    assert {"jid": "777", "firstName": "Dora", "lastName": "New", "ext": "250"} in after.json()["contacts"]
    assert after.text.startswith('{\n    "contacts": [\n        {\n') and after.text.endswith("}\n")
