"""A small DAV blobstore for the VM runtime tests: GET/PUT ``<pp>/<id>`` with basic auth.

It speaks what an agent speaks to BOSH's blobstore (davcli's paths, basic
auth, 201 on PUT), so the runtime's downloads, digest checks and uploads are
exercised over real HTTP without a Django server in the test process.
"""

from __future__ import annotations

import base64
import hashlib
import re
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

_PATH = re.compile(r"^/(?:[0-9a-f]{2}/)?(?P<id>[0-9a-f-]{36})$")


class BlobServer:
    def __init__(self, directory: Path, user: str = "agent", password: str = "agent-pw"):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.user, self.password = user, password
        self.requests: list[tuple[str, str, int]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _blob(self):
                m = _PATH.match(self.path.split("?", 1)[0])
                if m is None:
                    self._answer(400)
                    return None
                expected = (
                    "Basic "
                    + base64.b64encode(f"{server.user}:{server.password}".encode()).decode()
                )
                if self.headers.get("Authorization") != expected:
                    self._answer(401)
                    return None
                return server.directory / m["id"]

            def _answer(self, code, body=b""):
                server.requests.append((self.command, self.path, code))
                self.send_response(code)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                path = self._blob()
                if path is None:
                    return
                if not path.exists():
                    self._answer(404)
                    return
                self._answer(200, path.read_bytes())

            def do_PUT(self):
                path = self._blob()
                if path is None:
                    return
                length = int(self.headers.get("Content-Length") or 0)
                path.write_bytes(self.rfile.read(length))
                self._answer(201)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def settings(self) -> dict:
        return {
            "provider": "dav",
            "options": {"endpoint": self.endpoint, "user": self.user, "password": self.password},
        }

    def put(self, data: bytes) -> tuple[str, str]:
        """Store ``data`` under a new id; returns (id, sha1)."""
        blob_id = str(uuid.uuid4())
        (self.directory / blob_id).write_bytes(data)
        return blob_id, hashlib.sha1(data).hexdigest()

    def get(self, blob_id: str) -> bytes:
        return (self.directory / blob_id).read_bytes()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
