"""Products: a target whose URL is built from the record's fields, not stored.

``PRODUCT_BASE_URL`` (default ``https://shop.example.com``) is read when a URL is built, so
importing the plugin reads no environment.
"""

from __future__ import annotations

import os
from urllib.parse import quote

from pynamodb.attributes import NumberAttribute, UnicodeAttribute
from pynamodb.exceptions import PutError
from pynamodb.models import Model
from webbugger.errors import WebbuggerError
from webbugger.plugins import Ref

BASE_URL_VARIABLE = "PRODUCT_BASE_URL"
DEFAULT_BASE_URL = "https://shop.example.com"


class ProductExistsError(WebbuggerError):
    """A product with this id already exists."""


def base_url() -> str:
    """The shop's base URL, without a trailing slash."""
    return (os.environ.get(BASE_URL_VARIABLE) or DEFAULT_BASE_URL).rstrip("/")


class Product(Model):
    """A product of the shop."""

    class Meta:
        # Replaced at first use by the table named in PRODUCTS_TABLE (see register()).
        table_name = "unbound-products"

    id = UnicodeAttribute(hash_key=True)
    slug = UnicodeAttribute()
    category = UnicodeAttribute()
    price_cents = NumberAttribute(null=True)

    def get_beacon_url(self) -> str:
        """Where a hit on this product goes: its page, tagged as coming from webbugger."""
        category = quote(self.category, safe="")
        slug = quote(self.slug, safe="")
        return f"{base_url()}/{category}/{slug}?ref=webbugger"


def load_product(product_id: str) -> Product | None:
    """The stored product, or None (a hit on it then answers 404)."""
    try:
        return Product.get(product_id)
    except Product.DoesNotExist:
        return None


def create_product(product_id: str, slug: str, category: str, price_cents: int | None = None) -> Product:
    """Store a new product; :class:`ProductExistsError` if the id is taken."""
    Ref("product", product_id)  # validates the id as a reference would
    product = Product(id=product_id, slug=slug, category=category, price_cents=price_cents)
    try:
        product.save(condition=Product.id.does_not_exist())
    except PutError as exc:
        if exc.cause_response_code == "ConditionalCheckFailedException":
            raise ProductExistsError(f"product {product_id!r} already exists") from exc
        raise
    return product
