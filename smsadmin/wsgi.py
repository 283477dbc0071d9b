"""The WSGI application gunicorn serves: Django, with Twilio's status callbacks answered
in front of it (see delivery.status_lane)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "smsadmin.settings")

django_application = get_wsgi_application()

from delivery.status_lane import StatusCallbackLane  # noqa: E402 - needs Django set up

application = StatusCallbackLane(django_application)
