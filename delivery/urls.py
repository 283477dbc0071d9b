from django.urls import path

from delivery import webhooks

app_name = "delivery"

urlpatterns = [
    path("twilio/status", webhooks.twilio_status, name="twilio-status"),
    path("twilio/inbound", webhooks.twilio_inbound, name="twilio-inbound"),
]
