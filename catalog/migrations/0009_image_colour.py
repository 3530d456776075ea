"""Pictures per colour: ProductImage.colour says which colour a picture shows (blank: every colour), and
Variant.listing_image (kept by catalog.projection.refresh_products) is the picture of the variant's own colour,
which the cart shows.

Existing pictures are linked to a colour when their alt text ends with "in <colour>" and a variant of the product
has that colour (the demo catalog's pictures do); the variants' pictures are filled in from them.
"""

from django.db import migrations, models

COLOUR_OPTIONS = ("colour", "color")
BATCH = 500


def _colour_of(options):
    for name, value in (options or {}).items():
        if str(name).lower() in COLOUR_OPTIONS:
            return str(value)
    return ""


def link_pictures(apps, schema_editor):
    Product = apps.get_model("catalog", "Product")
    ProductImage = apps.get_model("catalog", "ProductImage")
    Variant = apps.get_model("catalog", "Variant")
    alias = schema_editor.connection.alias
    ids = list(Product.objects.using(alias).order_by("pk").values_list("pk", flat=True))
    for start in range(0, len(ids), BATCH):
        chunk = ids[start : start + BATCH]
        variants = list(Variant.objects.using(alias).filter(product_id__in=chunk).order_by("position", "pk"))
        colours = {}
        for v in variants:
            colour = _colour_of(v.options)
            if colour:
                colours.setdefault(v.product_id, {})[colour.lower()] = colour
        images = list(ProductImage.objects.using(alias).filter(product_id__in=chunk).order_by("position", "pk"))
        linked = []
        for image in images:
            words = image.alt_text.rsplit(" in ", 1)
            colour = colours.get(image.product_id, {}).get(words[-1].strip().lower()) if len(words) == 2 else None
            if colour and not image.colour:
                image.colour = colour
                linked.append(image)
        ProductImage.objects.using(alias).bulk_update(linked, ["colour"], batch_size=BATCH)
        first, by_colour = {}, {}
        for image in images:
            name = image.listing or image.image
            first.setdefault(image.product_id, name)
            if image.colour:
                by_colour.setdefault((image.product_id, image.colour.lower()), name)
        for v in variants:
            v.listing_image = by_colour.get((v.product_id, _colour_of(v.options).lower()), first.get(v.product_id, ""))
        Variant.objects.using(alias).bulk_update(variants, ["listing_image"], batch_size=BATCH)


class Migration(migrations.Migration):
    dependencies = [
        ("catalog", "0008_sqlite_search"),
    ]

    operations = [
        migrations.AddField(
            model_name="productimage",
            name="colour",
            field=models.CharField(
                blank=True,
                help_text="The colour this picture shows, as the variants' Colour option spells it (Navy). "
                "Blank: it shows every colour (a detail, the packaging).",
                max_length=120,
            ),
        ),
        migrations.AddField(
            model_name="variant",
            name="listing_image",
            field=models.CharField(blank=True, editable=False, max_length=300),
        ),
        migrations.RunPython(link_pictures, migrations.RunPython.noop, elidable=True),
    ]
