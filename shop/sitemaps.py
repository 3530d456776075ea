from __future__ import annotations

from datetime import datetime

from django.contrib.sitemaps import Sitemap
from django.urls import reverse

from catalog.services import CategoryInfo, category_tree, sitemap_products
from shop.models import InfoPage


class CategorySitemap(Sitemap):
    changefreq = "daily"
    priority = 0.6

    def items(self) -> list[CategoryInfo]:
        return list(category_tree().categories)

    def location(self, item: CategoryInfo) -> str:
        return reverse("shop:category", args=[item.slug])


class ProductSitemap(Sitemap):
    changefreq = "weekly"
    priority = 0.8
    limit = 10_000

    def items(self) -> list[tuple[str, datetime]]:
        return sitemap_products()

    def location(self, item: tuple[str, datetime]) -> str:
        return reverse("shop:product", args=[item[0]])

    def lastmod(self, item: tuple[str, datetime]) -> datetime:
        return item[1]


class InfoPageSitemap(Sitemap):
    changefreq = "monthly"
    priority = 0.3

    def items(self) -> list[tuple[str, datetime]]:
        return list(InfoPage.objects.filter(is_published=True).order_by("slug").values_list("slug", "updated_at"))

    def location(self, item: tuple[str, datetime]) -> str:
        return reverse("shop:info-page", args=[item[0]])

    def lastmod(self, item: tuple[str, datetime]) -> datetime:
        return item[1]


SITEMAPS = {"categories": CategorySitemap, "products": ProductSitemap, "pages": InfoPageSitemap}
