"""``python -m simulator`` behaves as ``shipper-sim``."""

import sys

from .cli import main

sys.exit(main())
