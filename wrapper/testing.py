"""A client for your pytest: requests go through the serve door's real event path (the ASGI
app every worker runs: event building, the PreparedHandler, result conversion, limits),
with no socket and no server process.

    from wrapper.testing import FunctionClient

    def test_greets():
        with FunctionClient(code_src="main.py", init_function="init") as client:
            answer = client.post("/", json={"name": "Ada"})
            assert answer.status == 200 and answer.json()["message"] == "Hello, Ada!"
"""

from __future__ import annotations

import asyncio
import json as jsonlib
from dataclasses import dataclass
from typing import Any, Optional
from urllib.parse import urlsplit

from wrapper.settings import SOURCE_OPTIONS, STORE_OPTIONS, resolve


@dataclass(frozen=True)
class Response:
    """What the function answered: status, headers (lower-case names) and body."""

    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8")

    def json(self) -> Any:
        return jsonlib.loads(self.body)


class FunctionClient:
    """Loads a function as a serve worker does (init runs once) and answers requests in-process.

    Keyword arguments are the source and store flags of `fn-wrapper serve` (`spec`, `code`,
    `base64`, `code_src`, `handler`, `init_function`, `init_parameters`, `parameters`, ...,
    `store`, `project`); environment twins are ignored so tests stay hermetic. The function
    gets `project` and `run` (also `context.project` / `context.run`) on that store, the
    default one without `store`, opened on first use.
    """

    def __init__(
        self,
        *,
        timeout: float = 60.0,
        max_body_bytes: int = 32 * 1024 * 1024,
        concurrency: int = 1,
        debug: bool = False,
        **source: Any,
    ) -> None:
        from wrapper.config import build_document, source_settings
        from wrapper.context import make_context
        from wrapper.entities.reserved import door_entities
        from wrapper.plan import FunctionPlan
        from wrapper.prepare import prepare_handler
        from wrapper.serve.app import ServeApp, ServeOptions

        flags = (*SOURCE_OPTIONS, *STORE_OPTIONS)
        unknown = sorted(set(source) - {option.dest for option in flags})
        if unknown:
            raise TypeError(f"unknown FunctionClient arguments: {', '.join(unknown)}")
        settings = resolve(source, flags, {})
        plan = FunctionPlan.from_dump(build_document(settings).model_dump(mode="json"))
        fetch = source_settings(settings, {})
        self.entities = door_entities(settings, plan.name, "serve", plan.project)

        def load() -> Any:
            return prepare_handler(
                plan,
                trigger_kind="http",
                source_settings=fetch,
                reserved=self.entities,
                context=make_context(trigger_kind="http", reserved=self.entities),
                debug=debug,
            )

        options = ServeOptions(timeout, max_body_bytes, concurrency, recycle=_keep_going)
        self.app = ServeApp(load, options)
        self._loop = asyncio.new_event_loop()
        self._loop.run_until_complete(self.app.start())

    def request(
        self,
        method: str,
        url: str,
        *,
        body: bytes = b"",
        json: Any = None,
        headers: Optional[dict[str, str]] = None,
    ) -> Response:
        """Send one request (`url` is a path with an optional query) and return the answer."""
        headers = dict(headers or {})
        if json is not None:
            body = jsonlib.dumps(json).encode()
            headers.setdefault("Content-Type", "application/json")
        parts = urlsplit(url)
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "scheme": "http",
            "method": method.upper(),
            "path": parts.path or "/",
            "raw_path": (parts.path or "/").encode(),
            "query_string": parts.query.encode(),
            "root_path": "",
            "headers": [
                (k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()
            ]
            + [(b"content-length", str(len(body)).encode())],
            "server": ("testserver", 80),
            "client": ("testclient", 50000),
        }
        return self._loop.run_until_complete(_exchange(self.app, scope, body))

    def get(self, url: str, **kw: Any) -> Response:
        return self.request("GET", url, **kw)

    def post(self, url: str, **kw: Any) -> Response:
        return self.request("POST", url, **kw)

    def close(self) -> None:
        self._loop.close()
        self.entities.close()

    def __enter__(self) -> FunctionClient:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _keep_going() -> None:
    """In a test there is no master to replace the worker: the same function goes on."""


async def _exchange(app: Any, scope: dict[str, Any], body: bytes) -> Response:
    sent: list[dict[str, Any]] = []
    delivered = False

    async def receive() -> dict[str, Any]:
        nonlocal delivered
        if delivered:
            return {"type": "http.disconnect"}
        delivered = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in start["headers"]}
    chunks = [m.get("body", b"") for m in sent if m["type"] == "http.response.body"]
    return Response(start["status"], headers, b"".join(chunks))
