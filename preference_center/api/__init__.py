"""The sender API (/api/v1): routes, API keys and the OpenAPI document."""

from .routes import bp

__all__ = ["bp"]
