"""Settings, all read from the environment (see the README's table of variables)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from imsite.env import env_bool, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("VAR_DIR", str(BASE_DIR / "var")))

DEBUG = env_bool("DEBUG", False)

SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off (or set SECRET_KEY_FILE)")
    SECRET_KEY = "dev-only-insecure-secret-key-change-me-0123456789abcdef"

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "imsite",
    "accounts",
    "friends",
    "messaging",
    "realtime",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "imsite.middleware.RequestIdMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "imsite.urls"
WSGI_APPLICATION = "imsite.wsgi.application"
ASGI_APPLICATION = "imsite.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database: SQLite under var/ by default, PostgreSQL (psycopg 3) through DATABASE_URL.
DATABASE_URL = env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'db.sqlite3'}")
_db = dj_database_url.parse(DATABASE_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 60, minimum=0))
if _db["ENGINE"].endswith("sqlite3"):
    # Long-lived processes write concurrently: wait for the lock instead of failing at once.
    _db.setdefault("OPTIONS", {})["timeout"] = 20
    # Take the write lock when a transaction begins: two writers that both read first would
    # otherwise collide on upgrade with "database is locked" instead of waiting their turn.
    _db["OPTIONS"]["transaction_mode"] = "IMMEDIATE"
    # A file, not memory, so that worker processes started by system tests share the test database.
    _db["TEST"] = {"NAME": str(VAR_DIR / "test-db.sqlite3")}
    # SQLite keeps no column or table comments; PostgreSQL gets them all.
    SILENCED_SYSTEM_CHECKS = ["fields.W163", "models.W046"]
    _db["CONN_MAX_AGE"] = 0
else:
    _db["CONN_HEALTH_CHECKS"] = True
    _db.setdefault("TEST", {})["NAME"] = env_str("DATABASE_TEST_NAME", "") or None
DATABASES = {"default": _db}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: unset means no Redis anywhere (local-memory cache, embedded presence).
REDIS_URL = env_str("REDIS_URL")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env_str("CACHE_KEY_PREFIX", "im"),
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "im"}}

# The channel layer, for Channels features other than chat delivery: the /ws consumer gets its pushes
# from NATS, never through the layer (realtime/websocket.py says why).
if REDIS_URL:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {"hosts": [REDIS_URL]}}}
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

NATS_URL = env_str("NATS_URL", "nats://127.0.0.1:4222")
# The access-node id of a daphne process serving /ws ("" = ws-<host>-<pid>); unique per process.
WS_NODE_ID = env_str("WS_NODE_ID", "")
# Access nodes ("host:udp-port", comma-separated) handed to clients by GET /api/v1/realtime/endpoints,
# and the certificate they serve ("" = the development certificate made under VAR_DIR/certs).
ACCESS_NODES = env_list("ACCESS_NODES", ["127.0.0.1:4433"])
ACCESS_CERTIFICATE = env_str("ACCESS_CERTIFICATE", "")
HEARTBEAT_SECONDS = env_int("HEARTBEAT_SECONDS", 30, minimum=1)
HEARTBEAT_TIMEOUT_SECONDS = env_int("HEARTBEAT_TIMEOUT_SECONDS", 90, minimum=2)
# Per-session limit on rate-limited frames (sends, typing, receipts, syncs): sustained per second, and burst.
# Benchmarks raise it: their senders are load generators, not people.
SESSION_RATE_PER_SECOND = env_int("SESSION_RATE_PER_SECOND", 50, minimum=1)
SESSION_RATE_BURST = env_int("SESSION_RATE_BURST", 100, minimum=1)
# Most SendMessage frames a session publishes in one envelope; one envelope is out at a time, which keeps
# each sender's order across several logic workers (realtime/session_limits.py).
SESSION_SEND_WINDOW = env_int("SESSION_SEND_WINDOW", 32, minimum=1)
# A presence entry lives this long without a refresh (a dead node's users go offline after it).
PRESENCE_TTL_SECONDS = env_int("PRESENCE_TTL_SECONDS", 90, minimum=2)
SNOWFLAKE_WORKER_ID = env_int("SNOWFLAKE_WORKER_ID", -1, minimum=-1, maximum=1023)

AUTH_USER_MODEL = "accounts.User"
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 8}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
# Static files (admin, Swagger UI) are served by WhiteNoise; in DEBUG straight from the apps.
# Served from the apps' own static folders (scanned once at start): no collectstatic step to forget.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG
# The SQLite file and collected static files live here; both need the folder to exist.
(VAR_DIR / "static").mkdir(parents=True, exist_ok=True)

# --- REST API
THROTTLE_RATES = {
    "auth": env_str("THROTTLE_AUTH", "30/min"),
    "user": env_str("THROTTLE_USER", "600/min"),
    "anon": env_str("THROTTLE_ANON", "120/min"),
}
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["accounts.authentication.SessionJWTAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["imsite.api.envelope.EnvelopeJSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["imsite.api.parsers.StrictCamelCaseJSONParser"],
    "DEFAULT_THROTTLE_CLASSES": ["imsite.api.throttling.UserRateThrottle"],
    "EXCEPTION_HANDLER": "imsite.api.exceptions.envelope_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    "JSON_UNDERSCOREIZE": {"no_underscore_before_number": True},
    # 0: the client IP is REMOTE_ADDR; behind N trusted proxies, X-Forwarded-For is read N deep.
    "NUM_PROXIES": env_int("NUM_PROXIES", 0, minimum=0),
}

SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(seconds=env_int("JWT_ACCESS_SECONDS", 15 * 60, minimum=30)),
    "REFRESH_TOKEN_LIFETIME": timedelta(seconds=env_int("JWT_REFRESH_SECONDS", 30 * 24 * 3600, minimum=60)),
    "ROTATE_REFRESH_TOKENS": True,
    "UPDATE_LAST_LOGIN": False,
    "ALGORITHM": "HS256",
    "SIGNING_KEY": env_str("JWT_SIGNING_KEY") or SECRET_KEY,
    "AUTH_HEADER_TYPES": ("Bearer",),
    "USER_ID_FIELD": "id",
    "USER_ID_CLAIM": "uid",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "IM platform API",
    "DESCRIPTION": "REST API of the instant-messaging platform. Every response is wrapped in "
    '{"code": 0, "message": "success", "data": ...}; errors carry a non-zero code.',
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "CAMELIZE_NAMES": False,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.contrib.djangorestframework_camel_case.camelize_serializer_fields",
        "imsite.api.schema.wrap_in_envelope",
    ],
    "ENUM_NAME_OVERRIDES": {},
}

# --- Messaging rules
DIRECT_MESSAGES_REQUIRE_FRIENDSHIP = env_bool("DIRECT_MESSAGES_REQUIRE_FRIENDSHIP", True)
GROUP_MAX_MEMBERS = env_int("GROUP_MAX_MEMBERS", 2000, minimum=2)
# How long POST /conversations/{id}/messages waits for a logic worker to store the message.
REST_SEND_TIMEOUT_SECONDS = env_int("REST_SEND_TIMEOUT_SECONDS", 5, minimum=1)
MESSAGE_MAX_BODY_BYTES = env_int("MESSAGE_MAX_BODY_BYTES", 16 * 1024, minimum=1, maximum=60 * 1024)
USER_SEARCH_LIMIT = env_int("USER_SEARCH_LIMIT", 20, minimum=1, maximum=100)

LOG_LEVEL = env_str("LOG_LEVEL", "INFO").upper()
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"context": {"()": "imsite.logging.ContextFilter"}},
    "formatters": {"structured": {"()": "imsite.logging.StructuredFormatter"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "structured", "filters": ["context"]},
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.request": {"level": "ERROR"},
        "django.server": {"level": "WARNING"},
        "quic": {"level": "WARNING"},  # aioquic logs every connection at INFO
    },
}

if not DEBUG:
    SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", False)
    CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", False)
