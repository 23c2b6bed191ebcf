"""Make the example importable without installing it.

Installing the distribution also registers its entry point, so every webbugger process in that
environment would load the plugin and need AFFILIATES_TABLE and PRODUCTS_TABLE. These tests load
it by module name instead (``load_plugins(registry, ["webbugger_affiliate"])``).
"""

from __future__ import annotations

import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[1]
if str(EXAMPLE) not in sys.path:
    sys.path.insert(0, str(EXAMPLE))
