from django.apps import AppConfig


class ShopConfig(AppConfig):
    name = "shop"
    verbose_name = "Shop"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_in

        from shop import handlers  # noqa: F401  (registers event subscribers)

        user_logged_in.connect(merge_cart_on_login, dispatch_uid="shop.merge_cart_on_login")
        user_logged_in.connect(merge_recently_viewed_on_login, dispatch_uid="shop.merge_recently_viewed_on_login")


def merge_cart_on_login(sender, request, user, **kwargs) -> None:
    """A visitor who signs in keeps what they put in the cart: it joins the account's cart."""
    from django.contrib import messages

    from shop import cart

    if request is None:
        return
    visitor, account = cart.SessionCartStorage(request.session), cart.DatabaseCartStorage(user.pk)
    for note in cart.merge(source=visitor, target=account):
        messages.warning(request, note)


def merge_recently_viewed_on_login(sender, request, user, **kwargs) -> None:
    """What a visitor looked at before signing in joins the account's recently viewed products."""
    from shop import recs

    if request is not None:
        recs.merge_on_sign_in(request, user.pk)
