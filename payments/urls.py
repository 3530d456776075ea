from django.urls import path

from payments import views

app_name = "payments"

urlpatterns = [
    path("notify/<slug:gateway>/", views.notify, name="notify"),
    path("test-gateway/pay/<str:token>/", views.test_gateway_pay, name="test-gateway-pay"),
]
