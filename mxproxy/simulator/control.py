"""The simulator's control HTTP API (JSON): script calls, voicemails, presence, the address book
and faults.

Served by uvicorn on the simulator's own event loop, on a loopback port of its own. Every route
maps to one scripting method of ``Simulator``; bad input gets ``{"error": "..."}`` with 400/404.
Routes and curl examples: docs/simulator.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Generator, Iterable

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from mxproxy.simulator.server import SimulatorError

if TYPE_CHECKING:
    from mxproxy.simulator.server import Simulator

__all__ = ["build_app", "ControlServer"]


class _BadInput(Exception):
    pass


async def _body(request: Request, fields: Iterable[str]) -> dict[str, Any]:
    """The JSON object body; a key not in ``fields`` is refused (400 naming it): a misspelt field
    (``fromName`` for ``name``) must not be ignored silently."""
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise _BadInput(f"body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise _BadInput("body must be a JSON object")
    allowed = set(fields)
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise _BadInput(f"unknown field {unknown[0]!r} (expected {', '.join(sorted(allowed)) or 'no body'})")
    return data


def _str(data: dict[str, Any], key: str, default: str | None = None) -> str:
    value = data.get(key, default)
    if value is None:
        raise _BadInput(f"{key!r} is required")
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise _BadInput(f"{key!r} must be a string")
    return str(value)


def _opt_str(data: dict[str, Any], key: str) -> str | None:
    return _str(data, key) if data.get(key) is not None else None


def _number(data: dict[str, Any], key: str, default: float | None = None) -> float:
    value = data.get(key, default)
    if value is None:
        raise _BadInput(f"{key!r} is required")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _BadInput(f"{key!r} must be a number")
    return float(value)


def _int_path(request: Request, name: str) -> int:
    raw = request.path_params[name]
    if not raw.isdigit():
        raise _BadInput(f"{name} must be a number")
    return int(raw)


Handler = Callable[["Simulator", Request], Awaitable[Any]]


def _route(sim: "Simulator", handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        try:
            result = await handler(sim, request)
        except _BadInput as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        except SimulatorError as exc:
            return JSONResponse({"error": str(exc)}, status_code=exc.status)
        if result is None:
            return Response(status_code=204)
        return JSONResponse(result)

    return endpoint


async def _health(sim: "Simulator", request: Request) -> Any:
    return {"status": "ok", "port": sim.port, "sn": sim.fixture.sn}


async def _sessions(sim: "Simulator", request: Request) -> Any:
    active_only = request.query_params.get("active") in ("1", "true")
    infos = [i for i in sim.sessions() if i.active or not active_only]
    return {"sessions": [i.as_dict() for i in infos]}


async def _calls(sim: "Simulator", request: Request) -> Any:
    return {"calls": sim.calls()}


async def _incoming_call(sim: "Simulator", request: Request) -> Any:
    data = await _body(request, ("to", "from", "name"))
    call_id = await sim.incoming_call(_str(data, "to"), _str(data, "from"), _str(data, "name", ""))
    return {"callId": call_id}


async def _answer(sim: "Simulator", request: Request) -> Any:
    data = await _body(request, ("by",))
    await sim.answer(_int_path(request, "call_id"), _opt_str(data, "by"))


async def _hangup(sim: "Simulator", request: Request) -> Any:
    data = await _body(request, ("by",))
    await sim.hangup(_int_path(request, "call_id"), _opt_str(data, "by"))


async def _voicemail(sim: "Simulator", request: Request) -> Any:
    data = await _body(request, ("ext", "from", "name", "duration", "mediaType"))
    duration = _number(data, "duration", 5)
    if not duration.is_integer():
        raise _BadInput("'duration' must be a whole number of seconds")
    mail_id = await sim.leave_voicemail(
        _str(data, "ext"), _str(data, "from"), _str(data, "name", ""), int(duration), _str(data, "mediaType", "VoiceMail"),
    )
    return {"mailId": mail_id}


async def _presence(sim: "Simulator", request: Request) -> Any:
    data = await _body(request, ("ext", "status", "note"))
    await sim.set_presence(_str(data, "ext"), _str(data, "status"), _str(data, "note", ""))


#: Control-API key → ``Person`` attribute for address-book entries.
_DIRECTORY_KEYS = {"firstName": "first_name", "lastName": "last_name", "homePhone": "home_phone",
                   "cellPhone": "cell_phone", "email": "email", "did": "did", "exchangeId": "exchange_id"}


def _directory_fields(data: dict[str, Any]) -> dict[str, str]:
    return {attr: _str(data, key) for key, attr in _DIRECTORY_KEYS.items() if key in data}


def _entry(person: Any) -> dict[str, Any]:
    return {"jid": str(person.jid), "ext": person.ext, "firstName": person.first_name, "lastName": person.last_name}


async def _directory_add(sim: "Simulator", request: Request) -> Any:
    data = await _body(request, {*_DIRECTORY_KEYS, "ext", "jid"})
    fields = _directory_fields(data)
    jid = None
    if data.get("jid") is not None:
        raw = _str(data, "jid")
        if not raw.isdigit():
            raise _BadInput("'jid' must be a positive number")
        jid = int(raw)
    return _entry(await sim.add_directory_entry(_str(data, "ext"), jid, **fields))


async def _directory_update(sim: "Simulator", request: Request) -> Any:
    data = await _body(request, {*_DIRECTORY_KEYS, "ext"})
    fields = _directory_fields(data)
    return _entry(await sim.update_directory_entry(request.path_params["ext"], _opt_str(data, "ext"), **fields))


async def _directory_delete(sim: "Simulator", request: Request) -> Any:
    await sim.delete_directory_entry(request.path_params["ext"])


async def _drop(sim: "Simulator", request: Request) -> Any:
    return {"sessions": await sim.drop_session(request.path_params["login"])}


async def _logout(sim: "Simulator", request: Request) -> Any:
    data = await _body(request, ("mode",))
    return {"sessions": await sim.force_logout(request.path_params["login"], _str(data, "mode", "forced"))}


async def _garbage(sim: "Simulator", request: Request) -> Any:
    data = await _body(request, ("kind",))
    return {"sessions": await sim.send_garbage(request.path_params["login"], _str(data, "kind", "xml"))}


async def _get_delay(sim: "Simulator", request: Request) -> Any:
    return {"delays": sim.delays()}


async def _set_delay(sim: "Simulator", request: Request) -> Any:
    data = await _body(request, ("seconds", "command"))
    sim.set_delay(_number(data, "seconds"), _opt_str(data, "command"))
    return {"delays": sim.delays()}


async def _clear_delay(sim: "Simulator", request: Request) -> Any:
    command = request.query_params.get("command")
    if command:
        sim.set_delay(0, command)
    else:
        sim.clear_delays()
    return {"delays": sim.delays()}


async def _set_drop(sim: "Simulator", request: Request) -> Any:
    data = await _body(request, ("command", "drop"))
    drop = data.get("drop", True)
    if not isinstance(drop, bool):
        raise _BadInput("'drop' must be true or false")
    sim.set_drop(_opt_str(data, "command"), drop)


def build_app(sim: "Simulator") -> Starlette:
    routes = [
        Route("/health", _route(sim, _health), methods=["GET"]),
        Route("/sessions", _route(sim, _sessions), methods=["GET"]),
        Route("/calls", _route(sim, _calls), methods=["GET"]),
        Route("/calls", _route(sim, _incoming_call), methods=["POST"]),
        Route("/calls/{call_id}/answer", _route(sim, _answer), methods=["POST"]),
        Route("/calls/{call_id}/hangup", _route(sim, _hangup), methods=["POST"]),
        Route("/voicemails", _route(sim, _voicemail), methods=["POST"]),
        Route("/presence", _route(sim, _presence), methods=["POST"]),
        Route("/directory", _route(sim, _directory_add), methods=["POST"]),
        Route("/directory/{ext}", _route(sim, _directory_update), methods=["PATCH"]),
        Route("/directory/{ext}", _route(sim, _directory_delete), methods=["DELETE"]),
        Route("/users/{login}/drop", _route(sim, _drop), methods=["POST"]),
        Route("/users/{login}/logout", _route(sim, _logout), methods=["POST"]),
        Route("/users/{login}/garbage", _route(sim, _garbage), methods=["POST"]),
        Route("/delay", _route(sim, _get_delay), methods=["GET"]),
        Route("/delay", _route(sim, _set_delay), methods=["POST"]),
        Route("/delay", _route(sim, _clear_delay), methods=["DELETE"]),
        Route("/drop", _route(sim, _set_drop), methods=["POST"]),
    ]

    async def not_found(request: Request, exc: Exception) -> Response:
        return JSONResponse({"error": "not found"}, status_code=404)

    async def not_allowed(request: Request, exc: Exception) -> Response:
        return JSONResponse({"error": "method not allowed"}, status_code=405)

    return Starlette(routes=routes, exception_handlers={404: not_found, 405: not_allowed})


class _QuietServer(uvicorn.Server):
    """uvicorn without its signal capture: the process owner (CLI, test runner) handles signals."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


class ControlServer:
    def __init__(self, sim: "Simulator", host: str, port: int) -> None:
        self.sim = sim
        self.host = host
        self.port = port
        self._server: _QuietServer | None = None
        self._task: asyncio.Task[None] | None = None
        self._socket: socket.socket | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def start(self) -> None:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)  # so asyncio sets TCP_NODELAY
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        sock.listen(128)
        sock.setblocking(False)
        self.port = sock.getsockname()[1]
        self._socket = sock
        config = uvicorn.Config(build_app(self.sim), lifespan="off", log_config=None, log_level="warning",
                                access_log=False)
        self._server = _QuietServer(config)
        self._task = asyncio.get_running_loop().create_task(self._server.serve(sockets=[sock]))
        while not self._server.started:
            if self._task.done():
                self._task.result()  # re-raise the startup failure
                raise RuntimeError("control API stopped during startup")
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            try:
                await asyncio.wait_for(self._task, 5)
            except asyncio.TimeoutError:
                self._server.force_exit = True
                self._task.cancel()
        if self._socket is not None:
            self._socket.close()
        self._server = self._task = self._socket = None
