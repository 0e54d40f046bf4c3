"""shipper-sim: a local simulator of Shipper's OMS/WMS outbound API."""

from __future__ import annotations

from typing import TYPE_CHECKING

__all__ = ["Config", "create_app"]
__version__ = "0.1.0"

if TYPE_CHECKING:
    from .app import create_app
    from .config import Config


def __getattr__(name: str):
    # Imported on first use: the pytest plugin loads this package in every
    # test run, and most runs never need Flask.
    if name == "create_app":
        from .app import create_app

        return create_app
    if name == "Config":
        from .config import Config

        return Config
    raise AttributeError(f"module 'simulator' has no attribute {name!r}")
