"""REST endpoints of webhooks under /api/v1/ (private to the module; they call webhooks's services)."""

from django.urls import path

from webhooks.api import views

urlpatterns = [
    path("webhooks/endpoints/", views.EndpointListCreate.as_view(), name="api-webhook-endpoint-list"),
    path("webhooks/endpoints/<id:pk>/", views.EndpointDetail.as_view(), name="api-webhook-endpoint-detail"),
    path("webhooks/endpoints/<id:pk>/rotate-secret/", views.EndpointRotateSecret.as_view(),
         name="api-webhook-endpoint-rotate-secret"),
    path("webhooks/endpoints/<id:pk>/enable/", views.EndpointEnable.as_view(), name="api-webhook-endpoint-enable"),
    path("webhooks/endpoints/<id:pk>/ping/", views.EndpointPing.as_view(), name="api-webhook-endpoint-ping"),
    path("webhooks/endpoints/<id:pk>/messages/", views.EndpointMessages.as_view(),
         name="api-webhook-endpoint-messages"),
    path("webhooks/endpoints/<id:pk>/messages/<id:message_id>/attempts/", views.MessageAttempts.as_view(),
         name="api-webhook-message-attempts"),
    path("webhooks/endpoints/<id:pk>/messages/<id:message_id>/replay/", views.MessageReplay.as_view(),
         name="api-webhook-message-replay"),
]  # fmt: skip
