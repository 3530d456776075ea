"""REST endpoints of orders under /api/v1/ (private to the module; they call orders's services)."""

from django.urls import path

from orders.api import views

urlpatterns = [
    path("orders/", views.OrderList.as_view(), name="api-order-list"),
    path("orders/<code:number>/", views.OrderDetail.as_view(), name="api-order-detail"),
    path("orders/<code:number>/shipments/", views.ShipmentCreate.as_view(), name="api-order-shipment-create"),
    path("orders/<code:number>/shipments/<id:shipment_number>/ship/", views.ShipmentShip.as_view(),
         name="api-order-shipment-ship"),
    path("orders/<code:number>/shipments/<id:shipment_number>/deliver/", views.ShipmentDeliver.as_view(),
         name="api-order-shipment-deliver"),
    path("orders/<code:number>/ship/", views.OrderShip.as_view(), name="api-order-ship"),
    path("orders/<code:number>/deliver/", views.OrderDeliver.as_view(), name="api-order-deliver"),
    path("orders/<code:number>/cancel/", views.OrderCancel.as_view(), name="api-order-cancel"),
    path("orders/<code:number>/refund/", views.OrderRefund.as_view(), name="api-order-refund"),
    path("orders/<code:number>/returns/", views.ReturnCreate.as_view(), name="api-order-return-create"),
    path("orders/<code:number>/returns/<id:return_number>/receive/", views.ReturnReceive.as_view(),
         name="api-order-return-receive"),
    path("orders/<code:number>/returns/<id:return_number>/refund/", views.ReturnRefund.as_view(),
         name="api-order-return-refund"),
]  # fmt: skip
