"""shipper-sim: a local simulator of Shipper's OMS/WMS outbound API."""

from .app import create_app
from .config import Config

__all__ = ["Config", "create_app"]
__version__ = "0.1.0"
