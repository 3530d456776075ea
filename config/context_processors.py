from django.conf import settings
from django.http import HttpRequest


def shop(request: HttpRequest) -> dict:
    return {"SHOP_NAME": settings.SHOP_NAME}
