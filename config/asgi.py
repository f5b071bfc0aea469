"""The ASGI application: Django for HTTP, Channels for the lesson and notification websockets.

Websockets are checked against ALLOWED_HOSTS by their Origin header and authenticated once, at
connect, by the Django session cookie. With `HOMEROOM_PERIODIC_IN_PROCESS_SECONDS` set (the
embedded default's `make demo`), the process also runs the periodic services itself.
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

# Django must be set up before anything imports models, hence the order below.
django_asgi_app = get_asgi_application()

from asgiref.typing import ASGI3Application  # noqa: E402
from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.conf import settings  # noqa: E402

from classrooms.notifications import routing as notification_routing  # noqa: E402
from classrooms.notifications.scheduler import PeriodicInProcess  # noqa: E402
from media_relay.routing import websocket_urlpatterns  # noqa: E402

application: ASGI3Application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(
                URLRouter(websocket_urlpatterns + notification_routing.websocket_urlpatterns)
            )
        ),
    }
)

if settings.HOMEROOM_PERIODIC_IN_PROCESS_SECONDS:
    application = PeriodicInProcess(
        application, every=settings.HOMEROOM_PERIODIC_IN_PROCESS_SECONDS
    )
