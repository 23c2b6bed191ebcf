"""An example third-party webbugger plugin (see ../README.md).

- ``affiliate`` source: a partner who sends traffic; a link naming an unknown affiliate as its
  source answers 404 (unless the link says to ignore errors);
- ``affiliate`` entity: the same record, named as the link's entity so that its deferred hook
  counts the affiliate's hits, once per beacon;
- ``product`` target: a shop product whose URL is built from its category and slug.

Each record lives in the plugin's own table, named by an environment variable set in
template.yaml (``AFFILIATES_TABLE``, ``PRODUCTS_TABLE``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from webbugger.plugins import HookMode

from webbugger_affiliate.affiliates import (
    Affiliate,
    AffiliateExistsError,
    create_affiliate,
    get_or_create_affiliate,
    load_affiliate,
)
from webbugger_affiliate.products import Product, ProductExistsError, create_product, load_product

if TYPE_CHECKING:
    from webbugger.plugins import PluginTypes

__all__ = [
    "Affiliate",
    "AffiliateExistsError",
    "Product",
    "ProductExistsError",
    "create_affiliate",
    "create_product",
    "get_or_create_affiliate",
    "load_affiliate",
    "load_product",
    "register",
]


def register(types: PluginTypes) -> None:
    """Plugin entry point: the plugin's tables, then its types."""
    types.table(Affiliate, variable="AFFILIATES_TABLE")
    types.table(Product, variable="PRODUCTS_TABLE")
    types.source("affiliate", load=load_affiliate)
    types.entity(
        "affiliate", get_or_create=get_or_create_affiliate, hooks=HookMode.DEFERRED, load=load_affiliate
    )
    types.target("product", load=load_product)
