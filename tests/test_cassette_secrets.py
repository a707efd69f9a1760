"""Secrets never reach a cassette: every kind of secret, in requests and responses, recorded for real.

A local HTTP server (127.0.0.1, no network) answers with secrets of its own; the test records real
traffic through `use_cassette` and searches the written file for every secret value.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import httpx
import pytest

from memlayer._internal.cassettes import use_cassette

# kind -> the secret value that must not survive
REQUEST_SECRETS = {
    "Authorization header": "req-authz-1",
    "Proxy-Authorization header": "req-proxy-2",
    "X-Auth-Token header": "req-xauth-3",
    "Key= query (capitalised)": "req-qkey-4",
    "sig= query": "req-qsig-5",
    "JSON key": "req-jkey-6",
    "JSON private_key": "req-jpriv-7",
    "JSON aws_secret_access_key": "req-jaws-8",
    "JSON api_key_value": "req-jakv-9",
    "JSON apiKey (nested)": "req-jnest-10",
    "form api_key": "req-form-11",
    "user:pass@ in the URL": "req-pass-12",
}
RESPONSE_SECRETS = {
    "response X-Api-Key header": "resp-hdr-13",
    "response Set-Cookie header": "resp-cookie-14",
    "response JSON token": "resp-token-15",
    "response JSON client_secret": "resp-secret-16",
    "response streamed JSON access_token": "resp-sse-17",
}


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.path.startswith("/stream"):
            body = f"data: {json.dumps({'access_token': RESPONSE_SECRETS['response streamed JSON access_token']})}\n\n"
            kind = "text/event-stream"
        else:
            reply = {
                "token": RESPONSE_SECRETS["response JSON token"],
                "data": {"client_secret": RESPONSE_SECRETS["response JSON client_secret"], "usage": {"max_tokens": 7}},
            }
            body, kind = json.dumps(reply), "application/json"
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("X-Api-Key", RESPONSE_SECRETS["response X-Api-Key header"])
        self.send_header("Set-Cookie", f"session={RESPONSE_SECRETS['response Set-Cookie header']}")
        self.send_header("Content-Length", str(len(body.encode())))
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    httpd = HTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_no_kind_of_secret_survives_recording(server: str, tmp_path: Path) -> None:
    s = REQUEST_SECRETS
    path = tmp_path / "secrets.json"
    with use_cassette(path, mode="once", pin_clock=False), httpx.Client() as client:
        client.post(
            f"http://{server}/v1/chat?Key={s['Key= query (capitalised)']}&sig={s['sig= query']}&model=m",
            headers={
                "Authorization": f"Bearer {s['Authorization header']}",
                "Proxy-Authorization": f"Basic {s['Proxy-Authorization header']}",
                "X-Auth-Token": s["X-Auth-Token header"],
            },
            json={
                "model": "m",
                "max_tokens": 5,
                "key": s["JSON key"],
                "private_key": s["JSON private_key"],
                "aws_secret_access_key": s["JSON aws_secret_access_key"],
                "api_key_value": s["JSON api_key_value"],
                "extra": {"apiKey": s["JSON apiKey (nested)"]},
            },
        )
        client.post(f"http://{server}/v1/form", data={"api_key": s["form api_key"], "q": "tea"})
        client.post(f"http://u:{s['user:pass@ in the URL']}@{server}/stream", json={"model": "m"})
    text = path.read_text()
    surviving = [kind for kind, secret in {**REQUEST_SECRETS, **RESPONSE_SECRETS}.items() if secret in text]
    assert surviving == []
    # What is not secret stays readable, so a cassette can still be reviewed.
    recorded = json.loads(text)["interactions"]
    assert recorded[0]["request"]["body"]["json"]["max_tokens"] == 5
    assert "model=m" in recorded[0]["request"]["uri"]
    assert recorded[0]["response"]["body"]["json"]["data"]["usage"] == {"max_tokens": 7}
