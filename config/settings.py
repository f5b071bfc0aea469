"""Homeroom's one settings module, driven by environment variables.

With no environment at all it is the embedded default that `make demo` runs: SQLite in `var/`,
the in-memory channel layer, Celery tasks run in-process, mail printed to the console, DEBUG on and
a secret generated once per checkout. `DJANGO_DEBUG=0` switches to production, where
`DJANGO_SECRET_KEY`, `DJANGO_ALLOWED_HOSTS`, `DATABASE_URL` and `REDIS_URL` are required and a
missing one stops start-up with a message naming it (see docs/deployment.md).
"""

from __future__ import annotations

import sys
from pathlib import Path

import django_stubs_ext

from config import env

django_stubs_ext.monkeypatch()

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(env.text("HOMEROOM_DATA_DIR") or BASE_DIR / "var")

DEBUG = env.flag("DJANGO_DEBUG", default=True)

_secret = env.text("DJANGO_SECRET_KEY")
if _secret:
    SECRET_KEY = _secret
elif DEBUG:
    SECRET_KEY = env.dev_secret_key(DATA_DIR / "dev-secret-key")
    # Logging is not configured yet while settings load, so say it on stderr directly.
    sys.stderr.write(
        "WARNING: DJANGO_SECRET_KEY is not set; using a development secret kept in "
        f"{DATA_DIR / 'dev-secret-key'}. Production sets DJANGO_SECRET_KEY and DJANGO_DEBUG=0.\n"
    )
else:
    raise env.MissingSetting("DJANGO_SECRET_KEY", "it signs sessions and CSRF tokens")

ALLOWED_HOSTS = env.split_list(
    env.required(
        "DJANGO_ALLOWED_HOSTS",
        debug=DEBUG,
        why="a comma-separated list of the host names this site answers to",
        default="localhost,127.0.0.1,[::1]",
    )
)
CSRF_TRUSTED_ORIGINS = env.split_list(env.text("DJANGO_CSRF_TRUSTED_ORIGINS"))

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "channels",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "accounts",
    "classrooms",
    "media_relay",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
ASGI_APPLICATION = "config.asgi.application"
WSGI_APPLICATION = None

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.i18n",
                "classrooms.notifications.context_processors.header",
            ],
        },
    },
]

# --- Database ------------------------------------------------------------------------------------
DATABASES = {
    "default": env.database_from_url(
        env.required(
            "DATABASE_URL",
            debug=DEBUG,
            why="postgres://USER:PASSWORD@HOST:PORT/NAME (or sqlite:///PATH)",
            default=f"sqlite:///{DATA_DIR / 'homeroom.sqlite3'}",
        ),
        base_dir=BASE_DIR,
    )
}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # Daphne serves requests from several threads; wait for a writer instead of failing at once.
    DATABASES["default"]["OPTIONS"] = {"timeout": 20, "transaction_mode": "IMMEDIATE"}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Channels and Celery --------------------------------------------------------------------------
REDIS_URL = env.required(
    "REDIS_URL",
    debug=DEBUG,
    why="redis://HOST:PORT/DB carries the channel layer between processes and Celery's queue",
)
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL], "prefix": env.text("HOMEROOM_CHANNEL_PREFIX", "hr")},
        }
    }
    CELERY_BROKER_URL = REDIS_URL
    CELERY_TASK_ALWAYS_EAGER = False
else:
    # One process holds every lesson: the in-memory layer is enough, and tasks run in-process.
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    CELERY_BROKER_URL = "memory://"
    CELERY_TASK_ALWAYS_EAGER = True
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_RESULT_BACKEND = None
CELERY_TIMEZONE = "UTC"
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BEAT_SCHEDULE = {
    "lessons-end-finished": {"task": "classrooms.lessons_end_finished", "schedule": 60.0},
    "reminders-send": {"task": "classrooms.reminders_send", "schedule": 60.0},
}

# --- Accounts -------------------------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "classrooms:home"
LOGOUT_REDIRECT_URL = "accounts:login"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# --- Internationalisation -------------------------------------------------------------------------
LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("fr", "Français")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Static files ---------------------------------------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = Path(env.text("DJANGO_STATIC_ROOT") or DATA_DIR / "static")
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}
WHITENOISE_USE_FINDERS = DEBUG
WHITENOISE_AUTOREFRESH = DEBUG

# --- Mail -----------------------------------------------------------------------------------------
EMAIL_BACKEND = env.text("DJANGO_EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env.text("DJANGO_DEFAULT_FROM_EMAIL", "Homeroom <homeroom@localhost>")

# --- REST framework -------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "rest_framework.authentication.TokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Homeroom API",
    "VERSION": "1",
    # Swagger UI and Redoc are served from the app (drf-spectacular-sidecar): no CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# --- Homeroom -------------------------------------------------------------------------------------
# The relay asks this class whether a user may join a lesson (media_relay.ports.LessonAccessPolicy).
HOMEROOM_LESSON_ACCESS_POLICY = "classrooms.access.RosterLessonAccess"
# The relay records attendance, grants, removals, chat and lesson ends through this class
# (media_relay.ports.LessonRecorder).
HOMEROOM_LESSON_RECORDER = "classrooms.live.recorder.LessonRecords"
# STUN/TURN servers for browsers and the relay, as a JSON list of RTCIceServer dictionaries, e.g.
# [{"urls": "turn:turn.example.org:3478", "username": "u", "credential": "c"}]. Empty: host
# candidates only, which is enough on one network.
HOMEROOM_ICE_SERVERS = env.json_list("HOMEROOM_ICE_SERVERS")
# The relay refuses loopback, link-local and similar ICE candidates from the network; tests and a
# demo on one machine may allow them.
HOMEROOM_RELAY_ALLOW_LOOPBACK = env.flag("HOMEROOM_RELAY_ALLOW_LOOPBACK", default=DEBUG)
# The relay paces its video within this budget (Mbit/s, all lessons of the process together) so
# that one class's keyframes do not delay another's audio; keep it below the server's uplink.
# 0 turns pacing off.
HOMEROOM_RELAY_PACING_MBIT = int(env.text("HOMEROOM_RELAY_PACING_MBIT", "300"))
# While the relay is busy, its event loop waits this long (ms) after a wakeup before it reads again,
# so the datagrams of that time are read in one turn: less CPU, at most this much latency. 0 turns
# it off.
HOMEROOM_RELAY_READ_HOLD_MS = float(env.text("HOMEROOM_RELAY_READ_HOLD_MS", "2"))
# How long before its start a lesson's Join button goes live.
HOMEROOM_JOIN_OPENS_MINUTES = 10
# The largest OneRoster bundle (zip, or all its files together) an upload or import accepts.
HOMEROOM_ROSTER_MAX_BYTES = int(env.text("HOMEROOM_ROSTER_MAX_BYTES", str(50 * 1024 * 1024)))
# How long an invitation link stays valid.
HOMEROOM_INVITATION_DAYS = int(env.text("HOMEROOM_INVITATION_DAYS", "14"))
# Where emails and calendar feeds link to (scheme, host and port, no trailing slash). Production
# defaults to HTTPS on the first allowed host.
HOMEROOM_SITE_URL = env.text(
    "HOMEROOM_SITE_URL", "http://127.0.0.1:8000" if DEBUG else f"https://{ALLOWED_HOSTS[0]}"
).rstrip("/")
# Run the periodic services (reminders, ending lessons) inside the web process every this many
# seconds; 0 turns it off. `make demo` sets it, having no Celery beat; production leaves it at 0.
HOMEROOM_PERIODIC_IN_PROCESS_SECONDS = int(env.text("HOMEROOM_PERIODIC_IN_PROCESS_SECONDS", "0"))

# --- Security -------------------------------------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
if not DEBUG:
    # Production sits behind a TLS-terminating proxy that sets X-Forwarded-Proto.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env.flag("DJANGO_SECURE_SSL_REDIRECT", default=True)
    SECURE_HSTS_SECONDS = int(env.text("DJANGO_HSTS_SECONDS", "31536000"))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = env.flag("DJANGO_HSTS_PRELOAD", default=True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.text("DJANGO_LOG_LEVEL", "INFO")},
    "loggers": {
        "django.channels.server": {"level": "WARNING"},
        "daphne": {"level": "WARNING"},
    },
}
