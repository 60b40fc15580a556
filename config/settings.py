"""Settings for the loyalty backend: one module, configured by environment variables.

Without any variable set it runs embedded: SQLite in the project folder and
Celery tasks executed in-process. `DATABASE_URL` and `REDIS_URL` switch to
PostgreSQL and a real broker.
"""

import os
import sys
from datetime import timedelta
from pathlib import Path

import dj_database_url
from csp.constants import NONE, SELF, UNSAFE_INLINE
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("DEBUG")
# The demo and the test suite may run with a throw-away key; a real deployment must set one.
INSECURE_KEY_ALLOWED = DEBUG or env_bool("LOYALTY_ALLOW_INSECURE_KEY") or "pytest" in sys.modules
SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not INSECURE_KEY_ALLOWED:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. Set it in the environment (or DEBUG=1 for local development)."
        )
    SECRET_KEY = "insecure-development-key-do-not-use-in-production"

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "config.apps.LoyaltyAdminConfig",  # django.contrib.admin with the site of config/admin.py
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "axes",
    "csp",
    "members",
    "events",
    "loyalty",
    "rewards",
    "analytics",
    "demo",
]

MIDDLEWARE = [
    # First: every request gets its id and its log line, whatever the layers below answer.
    "config.observability.RequestLogMiddleware",
    "config.api.problems.RequestSizeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "config.api.problems.ProblemJsonMiddleware",
    # Last, as django-axes asks: turns a locked-out admin sign-in into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
# The largest request body read (bytes): more answers 413 request_too_large (config.api.problems.RequestSizeMiddleware).
DATA_UPLOAD_MAX_MEMORY_SIZE = int(os.environ.get("MAX_REQUEST_BODY_BYTES", str(1024 * 1024)))

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "config" / "templates"],
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

WSGI_APPLICATION = "config.wsgi.application"

DATABASES = {
    "default": dj_database_url.config(
        default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}",
        conn_max_age=int(os.environ.get("DB_CONN_MAX_AGE", "60")),
        # A `SELECT 1` before a request's first query, about 0.03 ms of CPU: without it the first
        # request on a connection the server dropped (restart, failover) fails instead of reconnecting.
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # SQLite serialises writers; waiting beats failing with "database is locked". WAL lets readers
    # go on while one request writes, and synchronous=NORMAL is durable across application crashes.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    DATABASES["default"]["CONN_MAX_AGE"] = 0
elif DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and env_bool("DB_PREPARED_STATEMENTS", True):
    # Parameters bound by the server, and a statement a connection has run 5 times is
    # prepared, so PostgreSQL parses and plans the ORM's repeated statements once per connection
    # (about half of its CPU per purchase, docs/benchmarks.md). Turn off (DB_PREPARED_STATEMENTS=0)
    # behind a pooler in transaction mode that does not keep prepared statements.
    DATABASES["default"].setdefault("OPTIONS", {}).update(server_side_binding=True, prepare_threshold=5)
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # A database host that does not answer (failover, network) fails a request with 503 after this
    # many seconds instead of holding a gunicorn worker until its timeout kills it.
    DATABASES["default"].setdefault("OPTIONS", {})["connect_timeout"] = int(os.environ.get("DB_CONNECT_TIMEOUT", "5"))

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# Admin sign-in lockout (django-axes, docs/operations.md "Admin sign-in lockout"): after
# ADMIN_LOGIN_FAILURE_LIMIT failures for one username from one client address, that pair is refused
# (429, the lockout page) for ADMIN_LOGIN_COOLOFF_MINUTES; `manage.py axes_reset` lifts it early.
# The backend goes first so a locked-out pair is refused before any password is checked.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = int(os.environ.get("ADMIN_LOGIN_FAILURE_LIMIT", "5"))
AXES_COOLOFF_TIME = timedelta(minutes=int(os.environ.get("ADMIN_LOGIN_COOLOFF_MINUTES", "15")))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_CLIENT_IP_CALLABLE = "config.observability.client_ip"  # the throttles' address: X-Forwarded-For per NUM_PROXIES
AXES_LOCKOUT_TEMPLATE = "admin/lockout.html"
AXES_RESET_ON_SUCCESS = True
AXES_VERBOSE = False

LANGUAGE_CODE = "en-us"
FORMAT_MODULE_PATH = ["config.formats"]  # short dates as 2026-12-07, not the US 12/07/2026
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
# WhiteNoise serves the admin's and the API docs' static files from gunicorn: no CDN, no extra server.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

REDIS_URL = os.environ.get("REDIS_URL", "")

# Tests run in parallel workers that clear the cache between tests: each keeps its own, in memory
# (clearing a shared Redis would wipe the other worker's throttle counters mid-test).
if REDIS_URL and "pytest" not in sys.modules:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# Sign-in tokens of the member app and the manager API (members.tokens) end this many hours after
# they were issued (401, sign in again), at sign-out, or when their user's password changes.
ACCESS_TOKEN_LIFETIME_HOURS = int(os.environ.get("ACCESS_TOKEN_LIFETIME_HOURS", "720"))

# How long an authenticated API key (with its program) is kept in the cache: a key revoked in
# another process, or a change of the program's settings, is seen within this time when the cache
# is per process (no REDIS_URL); with Redis a revocation takes effect at once. 0: read on every request.
API_KEY_CACHE_SECONDS = int(os.environ.get("API_KEY_CACHE_SECONDS", "10"))

# Celery: a real broker when REDIS_URL is set, otherwise tasks run in-process.
CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_RESULT_BACKEND = None
CELERY_TASK_ALWAYS_EAGER = not REDIS_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# A task taken by a worker that died (acks_late) goes back to the queue after this many seconds; no countdown
# may exceed it (DESIGN.md section 11). Webhook deliveries do not wait for it: see WEBHOOK_* and docs/webhooks.md.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": int(os.environ.get("CELERY_VISIBILITY_TIMEOUT", "3600"))}
CELERY_TIMEZONE = "UTC"

# Behind N load balancers/proxies that append to X-Forwarded-For: the client address of the per-IP throttles,
# the admin lockout and the request log is the N-th address from the right of the header
# (config.observability.client_ip). 0 or unset: REMOTE_ADDR; the header, which the client writes, is ignored.
NUM_PROXIES = int(os.environ.get("NUM_PROXIES") or 0)
if NUM_PROXIES < 0:
    raise ImproperlyConfigured("NUM_PROXIES must be 0 or more.")

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["config.api.parsing.JSONParser"],
    "DEFAULT_METADATA_CLASS": "config.api.parsing.ApiMetadata",
    "DEFAULT_FILTER_BACKENDS": ["config.api.filters.FilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "config.api.openapi.LoyaltyAutoSchema",
    "EXCEPTION_HANDLER": "config.api.problems.problem_exception_handler",
    "DEFAULT_THROTTLE_RATES": {
        "pos": os.environ.get("THROTTLE_POS", "6000/min"),
        "manage": os.environ.get("THROTTLE_MANAGE", "1200/min"),
        "app": os.environ.get("THROTTLE_APP", "600/min"),
    },
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
    "COERCE_DECIMAL_TO_STRING": True,
    # DRF's own get_ident() agrees with config.observability.client_ip (0: REMOTE_ADDR, never the header).
    "NUM_PROXIES": NUM_PROXIES,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Loyalty backend API",
    "DESCRIPTION": (
        "Three surfaces: the integration API for tills and e-shops (`/api/pos/v1/`), "
        "the member app API (`/api/app/v1/`) and the manager API (`/api/manage/v1/`). "
        "Errors are RFC 9457 `application/problem+json` documents with a stable `code`. "
        "Writes accept an `Idempotency-Key` header."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI's files come with the drf-spectacular-sidecar package: no CDN, the page works offline.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": r"/api/(pos|app|manage)/v[0-9]+",
    # Several models have a field called "kind": each choice set gets its own name.
    "ENUM_NAME_OVERRIDES": {
        "EntryKindEnum": "loyalty.models.ledger.EntryKind",
        "RewardKindEnum": "rewards.models.RewardKind",
        "VoucherStatusEnum": "rewards.models.VoucherStatus",
        "HoldStatusEnum": "rewards.models.HoldStatus",
    },
    # The schema's shared components (the recursive FieldErrors of problem documents): config.api.openapi.
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums", "config.api.openapi.add_components"],
    "APPEND_COMPONENTS": {
        "securitySchemes": {
            "ApiKeyAuth": {
                "type": "apiKey",
                "in": "header",
                "name": "Authorization",
                "description": "`Api-Key <key>`: a key of one program, created with `create_api_key`.",
            }
        }
    },
}

# Ledger and job settings.
LOYALTY_JOB_BATCH_SIZE = int(os.environ.get("LOYALTY_JOB_BATCH_SIZE", "1000"))
IDEMPOTENCY_KEY_TTL_HOURS = int(os.environ.get("IDEMPOTENCY_KEY_TTL_HOURS", "48"))
# A request that holds an idempotency key longer than this is taken as crashed.
IDEMPOTENCY_IN_FLIGHT_TIMEOUT_SECONDS = 60

# Webhooks (docs/webhooks.md): how long one attempt may take, how often and for how long a failing delivery
# is retried (exponential backoff with jitter from BASE up to MAX between attempts), how often the scheduler
# looks for due deliveries, and whether endpoints may point at loopback/private addresses (tests, on-premise).
WEBHOOK_TIMEOUT_SECONDS = float(os.environ.get("WEBHOOK_TIMEOUT_SECONDS", "10"))
WEBHOOK_MAX_ATTEMPTS = int(os.environ.get("WEBHOOK_MAX_ATTEMPTS", "12"))
WEBHOOK_RETRY_BASE_SECONDS = float(os.environ.get("WEBHOOK_RETRY_BASE_SECONDS", "30"))
WEBHOOK_RETRY_MAX_SECONDS = float(os.environ.get("WEBHOOK_RETRY_MAX_SECONDS", "7200"))
WEBHOOK_POLL_SECONDS = float(os.environ.get("WEBHOOK_POLL_SECONDS", "5"))
# Deliveries of one endpoint sent by one task over one kept-alive connection and recorded together.
WEBHOOK_BATCH_SIZE = int(os.environ.get("WEBHOOK_BATCH_SIZE", "20"))
WEBHOOK_ALLOW_PRIVATE_TARGETS = env_bool("WEBHOOK_ALLOW_PRIVATE_TARGETS")

# GET /health/ready/: how long the broker check may take (config/health.py).
HEALTH_CHECK_TIMEOUT_SECONDS = float(os.environ.get("HEALTH_CHECK_TIMEOUT_SECONDS", "2"))

# One JSON object per line in production (log shippers parse it), readable text for the demo.
# Every record carries the request id (or the Celery task id): config/observability.py.
LOG_FORMAT = os.environ.get("LOG_FORMAT", "text" if DEBUG else "json")
if LOG_FORMAT not in {"json", "text"}:
    raise ImproperlyConfigured(f"LOG_FORMAT must be json or text, not {LOG_FORMAT!r}.")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "config.observability.RequestIdFilter"}},
    "formatters": {
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(levelname)s %(name)s %(message)s %(request_id)s",
            "rename_fields": {"levelname": "level", "name": "logger"},
            "timestamp": "time",  # ISO 8601 in UTC
        },
        "text": {"format": "%(asctime)s %(levelname)s [%(request_id)s] %(name)s: %(message)s"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "filters": ["request_id"], "formatter": LOG_FORMAT},
    },
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "INFO"}},
}

# --- HTTPS and browser protections (docs/operations.md "HTTPS and browser security") ------------------
# A deployment (a real SECRET_KEY, DEBUG off) serves HTTPS only: plain HTTP is redirected, browsers are told
# to remember that (HSTS), cookies are secure. The demo, tests and benchmarks (DEBUG or the insecure key)
# speak plain HTTP. Behind TLS-terminating proxies (NUM_PROXIES > 0) their X-Forwarded-Proto says whether the
# client used HTTPS. Health probes are never redirected: load balancers probe over plain HTTP.
PRODUCTION = not INSECURE_KEY_ALLOWED
if not DEBUG:
    SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", True)
    CSRF_COOKIE_SECURE = env_bool("SECURE_COOKIES", True)
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", PRODUCTION)
SECURE_REDIRECT_EXEMPT = [r"^health/"]
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if NUM_PROXIES else None
SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS") or (31536000 if PRODUCTION else 0))
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", True)

# Content-Security-Policy (django-csp) on every answer: scripts, styles, images, fonts and requests come from
# this site only, no plugins, no framing, forms post here only. No inline scripts: the admin's scripts are
# static files. Inline styles stay allowed ('unsafe-inline' in style-src): Django's admin and these templates
# use style attributes, which no nonce covers. The API docs page adds the CDN of Swagger UI (config/urls.py).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF, UNSAFE_INLINE],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}
