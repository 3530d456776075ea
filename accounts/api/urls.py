"""REST endpoints of accounts under /api/v1/ (private to the module)."""

from django.urls import path

from accounts.api import views

urlpatterns = [
    path("customers/", views.CustomerList.as_view(), name="api-customer-list"),
    path("customers/<id:pk>/", views.CustomerDetail.as_view(), name="api-customer-detail"),
]
