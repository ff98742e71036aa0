"""``/voicemails``: list (media handling), streamed download, delete, read/note."""

from __future__ import annotations

import asyncio
import os

import httpx
import pytest

from mxproxy.simulator import demo_fixture
from tests.api.conftest import DEMO_EXT, ApiHarness, serve
from tests.api.readme_examples import README_VOICEMAILS

#: every route test here runs against each MX simulator profile; MX-free ones only on "spec"
pytestmark = pytest.mark.profiles


async def _leave(api: ApiHarness, audio: bytes, media_type: str = "VoiceMail") -> str:
    mail_id = await api.sim.leave_voicemail(ext=DEMO_EXT, from_number="3044", from_name="Peter Hyde",
                                            duration=7, media_type=media_type, audio=audio)
    return str(mail_id)


async def test_list_has_the_readme_items(api: ApiHarness, token: str) -> None:
    r = await api.client.get("/voicemails", headers=api.bearer(token))
    assert r.status_code == 200
    items = r.json()["voiceMails"]
    by_id = {item["id"]: item for item in items}
    for example in README_VOICEMAILS:
        assert by_id[example["id"]] == example
    assert [i["received"] for i in items] == sorted(i["received"] for i in items)


async def test_media_filter_keeps_real_labels(api: ApiHarness, token: str) -> None:
    await _leave(api, b"RIFF-recording", media_type="Recording")
    recordings = (await api.client.get("/voicemails", params={"media": "Recording"},
                                       headers=api.bearer(token))).json()["voiceMails"]
    for _ in range(100):
        if recordings:
            break
        await asyncio.sleep(0.02)
        recordings = (await api.client.get("/voicemails", params={"media": "Recording"},
                                           headers=api.bearer(token))).json()["voiceMails"]
    assert recordings and all(item["mediaType"] == "Recording" for item in recordings)
    voicemails = (await api.client.get("/voicemails", params={"media": "VoiceMail"},
                                       headers=api.bearer(token))).json()["voiceMails"]
    assert voicemails and all(item["mediaType"] == "VoiceMail" for item in voicemails)
    everything = (await api.client.get("/voicemails", headers=api.bearer(token))).json()["voiceMails"]
    assert {i["id"] for i in recordings} <= {i["id"] for i in everything}


@pytest.mark.profiles("spec")  # not protocol-sensitive
async def test_download_streams_the_exact_audio(api: ApiHarness, token: str) -> None:
    audio = b"RIFF" + os.urandom(100_000)  # several CSTA chunks
    mail_id = await _leave(api, audio)
    r = await api.client.get(f"/voicemails/{mail_id}", headers=api.bearer(token))
    assert r.status_code == 200
    assert r.headers["content-type"] == "audio/wave"
    assert r.headers["content-disposition"].startswith('attachment; filename="')
    assert r.content == audio


async def test_readme_voicemail_download_equals_the_fixture_audio(api: ApiHarness, token: str) -> None:
    fixture = demo_fixture()
    item = next(m for m in fixture.mailboxes["dmitrys"] if m.mail_id == 82)
    r = await api.client.get("/voicemails/82", headers=api.bearer(token))
    assert r.status_code == 200
    assert r.headers["content-type"] == "audio/wave"
    assert r.headers["content-disposition"] == 'attachment; filename="u00043884851147406145/m0020.wav"'
    assert r.content == item.content(fixture.base_dir)


async def test_download_of_unknown_mail_is_404(api: ApiHarness, token: str) -> None:
    r = await api.client.get("/voicemails/999999", headers=api.bearer(token))
    assert r.status_code == 404
    assert "error" in r.json()


@pytest.mark.profiles("spec")  # not protocol-sensitive
async def test_client_disconnect_cancels_the_mx_download(api: ApiHarness, token: str) -> None:
    audio = b"RIFF" + os.urandom(2_000_000)
    mail_id = await _leave(api, audio)
    api.sim.set_delay(0.05, command="MailReceiveIncoming")
    login = (await api.ctx.tokens.verify(token)).sub
    async with serve(api.app) as url:
        async with httpx.AsyncClient(base_url=url, headers={"Accept-Encoding": "identity"}) as client:
            async with client.stream("GET", f"/voicemails/{mail_id}", headers=api.bearer(token)) as r:
                assert r.status_code == 200
                async for _ in r.aiter_raw():
                    break
        for _ in range(300):
            commands = [c for s in api.sim.sessions() if s.login == login for c in s.commands]
            if "MailCancelReceive" in commands:
                break
            await asyncio.sleep(0.02)
        assert "MailCancelReceive" in commands


async def test_patch_note_and_read(api: ApiHarness, token: str) -> None:
    r = await api.client.patch("/voicemails/82", json={"note": "text note"}, headers=api.bearer(token))
    assert r.status_code == 200, r.text
    assert r.json() == {"vm": {"note": "text note"}}
    r = await api.client.patch("/voicemails/117", json={"read": True, "note": "called back"},
                               headers=api.bearer(token))
    assert r.json() == {"vm": {"read": True, "note": "called back"}}
    items = {i["id"]: i for i in (await api.client.get("/voicemails", headers=api.bearer(token))).json()["voiceMails"]}
    assert items["117"]["read"] is True and items["117"]["note"] == "called back"


@pytest.mark.profiles("spec")
@pytest.mark.parametrize("body", [None, "{}"])
async def test_patch_without_fields_is_400(api: ApiHarness, token: str, body: str | None) -> None:
    r = await api.client.patch("/voicemails/82", content=body, headers={**api.bearer(token),
                                                                        "Content-Type": "application/json"})
    assert r.status_code == 400


async def test_delete_removes_the_message(api: ApiHarness, token: str) -> None:
    mail_id = await _leave(api, b"RIFF-delete-me")
    r = await api.client.delete(f"/voicemails/{mail_id}", headers=api.bearer(token))
    assert r.status_code == 204
    items = (await api.client.get("/voicemails", headers=api.bearer(token))).json()["voiceMails"]
    assert mail_id not in {i["id"] for i in items}


@pytest.mark.profiles("spec")
@pytest.mark.parametrize("method,path", [("GET", "/voicemails"), ("GET", "/voicemails/82"),
                                         ("DELETE", "/voicemails/82"), ("PATCH", "/voicemails/82")])
@pytest.mark.parametrize("media", ["voicemail", " Fax", "Video"])
async def test_unknown_media_is_400_before_the_mx_is_asked(api: ApiHarness, token: str, method: str, path: str,
                                                           media: str) -> None:
    r = await api.client.request(method, path, params={"media": media}, json={"read": True},
                                 headers=api.bearer(token))
    assert r.status_code == 400, r.text
    assert r.json() == {"error": f'bad media "{media}": expected one of VoiceMail, Recording, Fax, Undefined'}
    after = await api.client.get("/voicemails", params={"media": ""}, headers=api.bearer(token))
    assert "82" in {item["id"] for item in after.json()["voiceMails"]}  # empty media = everything; 82 kept
