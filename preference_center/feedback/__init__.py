"""ESP feedback doors: one module per provider (how it authenticates, what it sends)
and the public blueprint at /feedback/<provider>. What the events mean is
``esp_feedback``'s business."""

from .routes import bp

__all__ = ["bp"]
