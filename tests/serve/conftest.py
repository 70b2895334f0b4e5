"""One real server (uvicorn on a free port of 127.0.0.1, in a thread) for the API and browser tests of this folder:
the app is built once (about 10 s: the ONNX export and its check, the smile head) and shared."""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="the serve extra: pip install -e '.[test]'")


@dataclass
class RunningServer:
    url: str
    app: object
    model_dir: Path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(app) -> tuple[object, threading.Thread, str]:
    """``app`` served by uvicorn in a daemon thread; returns the server, its thread and its base URL."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.05)
    return server, thread, f"http://127.0.0.1:{port}"


#: Small enough that the over-size test sends 1 MB, not the default 16 MB.
MAX_BYTES = 1_000_000
MAX_PIXELS = 40_000_000


@pytest.fixture(scope="session")
def served(tmp_path_factory) -> RunningServer:
    from singleshot.serve import UploadLimits, create_app

    model_dir = tmp_path_factory.mktemp("served-models")
    app = create_app(limits=UploadLimits(max_bytes=MAX_BYTES, max_pixels=MAX_PIXELS), model_dir=model_dir,
                     threads=1)
    server, thread, url = start_server(app)
    yield RunningServer(url, app, model_dir)
    server.should_exit = True
    thread.join(timeout=10)
