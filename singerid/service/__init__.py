"""The web service and its page (``singerid serve``): a FastAPI app over the public API, ``singerid.api``."""

from singerid.service.app import create_app
from singerid.service.config import ServiceLimits

__all__ = ["ServiceLimits", "create_app"]
