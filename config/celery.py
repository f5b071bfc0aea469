"""Homeroom's Celery application.

With `REDIS_URL` set, tasks go through Redis to a worker (`celery -A config worker -B`). Without it
(the embedded default) tasks run in-process, eagerly, so nothing needs a broker.
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("homeroom")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
