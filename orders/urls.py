from django.urls import path

from orders import views

app_name = "orders"

urlpatterns = [
    path("carrier/<slug:carrier>/", views.carrier_update, name="carrier-update"),
]
