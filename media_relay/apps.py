from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class MediaRelayConfig(AppConfig):
    name = "media_relay"
    verbose_name = _("Media relay")
