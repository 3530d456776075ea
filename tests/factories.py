from __future__ import annotations

import factory
from django.contrib.auth import get_user_model

DEFAULT_PASSWORD = "correct-horse-battery-staple"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("email",)
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"customer{n}@example.com")
    full_name = factory.Faker("name")
    password = factory.PostGenerationMethodCall("set_password", DEFAULT_PASSWORD)

    @factory.post_generation
    def _save(obj, create, extracted, **kwargs):
        if create:
            obj.save()


class StaffFactory(UserFactory):
    is_staff = True


class SuperuserFactory(UserFactory):
    is_staff = True
    is_superuser = True


# ---------------------------------------------------------------- catalog


def make_category(name: str, parent=None, **fields):
    from django.utils.text import slugify

    from catalog.models import Category

    return Category.objects.create(name=name, slug=fields.pop("slug", slugify(name)), parent=parent, **fields)


def make_brand(name: str):
    from django.utils.text import slugify

    from catalog.models import Brand

    return Brand.objects.get_or_create(slug=slugify(name), defaults={"name": name})[0]


_sku_counter = iter(range(1, 10**9))


def make_product(title: str, category, *, brand=None, variants=None, description: str = "", **fields):
    """A product with variants and stock, its listing fields refreshed as the services do.

    variants: list of dicts with options, price, stock (on hand) and optionally compare_at_price, sku.
    """
    from decimal import Decimal

    from django.utils.text import slugify

    from catalog.models import Product, StockItem, Variant
    from catalog.services import refresh_products

    product = Product.objects.create(
        title=title,
        slug=fields.pop("slug", slugify(title)),
        category=category,
        brand=brand,
        description=description or f"A fine {title.lower()}.",
        **fields,
    )
    for position, spec in enumerate(variants or [{"options": {}, "price": "10.00", "stock": 5}]):
        variant = Variant.objects.create(
            product=product,
            sku=spec.get("sku") or f"T-{next(_sku_counter):06d}",
            options=spec.get("options", {}),
            price=Decimal(str(spec["price"])),
            compare_at_price=Decimal(str(spec["compare_at_price"])) if spec.get("compare_at_price") else None,
            position=position,
        )
        StockItem.objects.create(variant=variant, on_hand=spec.get("stock", 5), reserved=spec.get("reserved", 0))
    refresh_products(product_ids=[product.pk], publish_events=False)
    product.refresh_from_db()
    return product
