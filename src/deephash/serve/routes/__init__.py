"""The service's routes, one :class:`fastapi.APIRouter` per resource: the page, searches, items,
status."""

from deephash.serve.routes import items, page, search, status

__all__ = ["items", "page", "search", "status"]
