"""Info pages: the table, and the five pages every shop needs (delivery, returns, terms, privacy, contact), created
when missing so a production deployment has them as well as a development one. Staff edit them in the admin;
running this again (or on a database that has them) leaves what is there alone.

The texts say what the shop does: the delivery methods and prices, the free-delivery threshold, the return window
and prices with VAT come from the settings through placeholders filled in when a page is shown (shop.info_pages).
"""

from django.db import migrations, models

PAGES = [
    (
        "delivery",
        "Delivery",
        "Delivery methods, prices and times.",
        """<p>We deliver every order from our warehouse. You choose the method at checkout:</p>
{shipping_methods}
<p>Prices {prices_vat} VAT ({vat_rate}). Standard delivery is free on orders of {free_delivery_above} or more.</p>
<p>Your order is packed once your payment is confirmed. You are charged when the parcel leaves us, and we email you
its tracking number then; you can follow it from your order page too.</p>
<p>Questions about a delivery? Write to {contact_email} with your order number.</p>""",
    ),
    (
        "returns",
        "Returns",
        "How to return an item and get your money back.",
        """<p>You can return delivered items within {return_days} days of delivery.</p>
<ol>
<li>Sign in, open the order under <a href="/orders/">Orders</a>, choose <strong>Return items</strong>, pick the
items and quantities and tell us why. Ordered as a guest? Write to {contact_email} with your order number and we
start the return for you.</li>
<li>Send the items back to us in their original packaging where you can.</li>
<li>We refund the price of the items to the payment you used as soon as they arrive and we have checked them.</li>
</ol>
<p>If an item arrived damaged, was not what you ordered or not as described, say so in the return: we refund the
delivery charge too.</p>
<p>Anything unclear? Write to {contact_email}.</p>""",
    ),
    (
        "terms",
        "Terms",
        "The terms of sale of the shop.",
        """<p>These terms apply to every order placed with {shop_name}.</p>
<h2>Prices and payment</h2>
<p>Prices are shown in the shop's currency and {prices_vat} VAT ({vat_rate}). Delivery is added at checkout (see
<a href="/pages/delivery/">Delivery</a>). Your card is authorised when you place the order and charged when the
goods are sent.</p>
<h2>Your order</h2>
<p>The contract is made when we confirm your order by email. We hold the items for you while you pay; if an item
cannot be supplied, we tell you and do not charge for it. You can cancel an order on its page until it is sent.</p>
<h2>Returns</h2>
<p>You may return delivered items within {return_days} days (see <a href="/pages/returns/">Returns</a>).</p>
<h2>Contact</h2>
<p>{contact_email}</p>""",
    ),
    (
        "privacy",
        "Privacy",
        "What we store about you and why.",
        """<p>{shop_name} keeps the data it needs to sell and deliver to you, and nothing more:</p>
<ul>
<li>your email address, name and delivery addresses, to deliver your orders and send you their emails;</li>
<li>your orders, to show you their history and handle returns and refunds;</li>
<li>a session cookie, to keep your cart and your sign-in. We set no advertising or tracking cookies.</li>
</ul>
<p>Card details go straight to our payment provider; we never see or store them.</p>
<p>You can delete your account from your account page: your orders are then kept without your name, email or
address. For a copy of your data or any question, write to {contact_email}.</p>""",
    ),
    (
        "contact",
        "Contact",
        "How to reach the shop.",
        """<p>We are happy to help with orders, deliveries and returns.</p>
<p>Email: {contact_email}</p>
<p>Please give your order number when you write about an order.</p>""",
    ),
]


def create_info_pages(apps, schema_editor):
    """Create each page that is missing (by slug); pages already there, edited or not, are left as they are."""
    InfoPage = apps.get_model("shop", "InfoPage")
    alias = schema_editor.connection.alias
    for slug, title, summary, content in PAGES:
        InfoPage.objects.using(alias).get_or_create(
            slug=slug, defaults={"title": title, "summary": summary, "content": content}
        )


class Migration(migrations.Migration):
    dependencies = [("shop", "0002_user_id_without_foreign_key")]

    operations = [
        migrations.CreateModel(
            name="InfoPage",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                (
                    "slug",
                    models.SlugField(
                        help_text="The page's address: /pages/<slug>/. Lowercase letters, digits, hyphens.",
                        max_length=60,
                        unique=True,
                    ),
                ),
                ("title", models.CharField(max_length=120)),
                (
                    "content",
                    models.TextField(
                        help_text=(
                            "HTML, shown as written: it is trusted staff input and is not cleaned, so paste only "
                            "markup you trust (no scripts from elsewhere). These placeholders are filled in when "
                            "the page is shown, from the shop's settings: {shop_name}, {contact_email}, "
                            "{shipping_methods} (a table of the delivery methods and prices), "
                            "{free_delivery_above}, {return_days}, {vat_rate}, {prices_vat} (“include” or “exclude”)."
                        )
                    ),
                ),
                (
                    "summary",
                    models.CharField(
                        blank=True,
                        help_text="One sentence for search engines (the page's meta description).",
                        max_length=200,
                    ),
                ),
                (
                    "is_published",
                    models.BooleanField(
                        default=True, help_text="Unpublished pages answer 404 and leave the sitemap."
                    ),
                ),
                ("updated_at", models.DateTimeField(auto_now=True)),
            ],
            options={"ordering": ["slug"]},
        ),
        migrations.RunPython(create_info_pages, migrations.RunPython.noop),
    ]
