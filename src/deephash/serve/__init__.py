"""Image search as a service: the HTTP API and the page over a collection (FastAPI + uvicorn;
``pip install 'deephash[serve]'``)."""

from deephash.serve.app import create_app
from deephash.serve.batcher import MicroBatcher
from deephash.serve.errors import ApiError
from deephash.serve.latency import LatencyRecorder
from deephash.serve.server import serve

__all__ = ["ApiError", "LatencyRecorder", "MicroBatcher", "create_app", "serve"]
