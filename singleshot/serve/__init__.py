"""``singleshot serve``: face detection over HTTP and in the browser.

:func:`create_app` builds the FastAPI app (``POST /detect``, ``GET /health``, the demo page and the models it runs
with onnxruntime-web); :func:`run_server` serves it with uvicorn. Needs the ``serve`` extra
(``pip install 'singleshot[serve]'``); importing this package does not.
"""

from __future__ import annotations

from singleshot.serve.app import ServeError, create_app, prepare_model, run_server
from singleshot.serve.uploads import UploadError, UploadLimits

__all__ = ["ServeError", "UploadError", "UploadLimits", "create_app", "prepare_model", "run_server"]
