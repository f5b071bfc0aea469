from django.apps import AppConfig
from django.conf import settings
from django.utils.translation import gettext_lazy as _

from media_relay import pacing, wakeups


class MediaRelayConfig(AppConfig):
    name = "media_relay"
    verbose_name = _("Media relay")

    def ready(self) -> None:
        pacing.configure(rate_bits_per_second=settings.HOMEROOM_RELAY_PACING_MBIT * 1_000_000)
        wakeups.configure(hold_seconds=settings.HOMEROOM_RELAY_READ_HOLD_MS / 1000)
