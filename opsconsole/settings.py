"""Django settings, driven by environment variables with working defaults.

Every setting an operator may change is read from the environment here and
nowhere else: ``OPSCONSOLE_DATA_DIR``, ``DATABASE_URL``, ``CELERY_BROKER_URL``,
``SECRET_KEY``, ``OPSCONSOLE_ENCRYPTION_KEY``, ``OPSCONSOLE_DEBUG``,
``OPSCONSOLE_ALLOWED_HOSTS``. Secrets that are not given are generated once
into the data directory, so a restart keeps sessions and encrypted values.
"""

import base64
import os
import secrets
from pathlib import Path
from urllib.parse import unquote, urlparse

from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("OPSCONSOLE_DATA_DIR", BASE_DIR / ".data")).resolve()
DATA_DIR.mkdir(parents=True, exist_ok=True)


def _secret_file(name: str, make) -> str:
    """Read a secret from the data directory, creating it (mode 0600) on first use."""
    path = DATA_DIR / name
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(make())
    return path.read_text().strip()


def _fernet_key() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()


SECRET_KEY = os.environ.get("SECRET_KEY") or _secret_file(
    "secret_key", lambda: secrets.token_urlsafe(50)
)
# Key for secrets at rest (vCenter password, generated credentials, variables).
ENCRYPTION_KEY = os.environ.get("OPSCONSOLE_ENCRYPTION_KEY") or _secret_file(
    "encryption_key", _fernet_key
)
# The data-dir file the key lives in (None when given by environment): `manage.py
# rotate_encryption_key` replaces it, and every process re-reads it (opsconsole.crypto).
ENCRYPTION_KEY_FILE = (
    None if os.environ.get("OPSCONSOLE_ENCRYPTION_KEY") else DATA_DIR / "encryption_key"
)

DEBUG = os.environ.get("OPSCONSOLE_DEBUG", "0").lower() in ("1", "true", "yes")
ALLOWED_HOSTS = [
    h
    for h in os.environ.get("OPSCONSOLE_ALLOWED_HOSTS", "127.0.0.1,localhost,testserver").split(",")
    if h
]

# --- HTTPS and response headers (opsconsole.security; the web server is gunicorn) ---
# HTTPS when a certificate is given (OPSCONSOLE_TLS_CERT + OPSCONSOLE_TLS_KEY) or
# OPSCONSOLE_TLS=self-signed (runstack generates one once into <data dir>/tls/).
TLS_CERT_FILE = os.environ.get("OPSCONSOLE_TLS_CERT", "")
TLS_KEY_FILE = os.environ.get("OPSCONSOLE_TLS_KEY", "")
TLS_SELF_SIGNED = os.environ.get("OPSCONSOLE_TLS", "").lower() == "self-signed"
TLS_ENABLED = bool(TLS_CERT_FILE and TLS_KEY_FILE) or TLS_SELF_SIGNED
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = TLS_ENABLED
SECURE_HSTS_SECONDS = (
    int(os.environ.get("OPSCONSOLE_HSTS_SECONDS", "31536000")) if TLS_ENABLED else 0
)
SESSION_COOKIE_HTTPONLY = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
CONTENT_SECURITY_POLICY = {
    "default-src": ["'self'"],
    "script-src": ["'self'"],
    "style-src": ["'self'", "'unsafe-inline'"],
    "img-src": ["'self'", "data:"],
    "connect-src": ["'self'"],
    "object-src": ["'none'"],
    "base-uri": ["'self'"],
    "form-action": ["'self'"],
    "frame-ancestors": ["'none'"],
}

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "django_htmx",
    "opsconsole",
    "director",
    "tiles",
    "console",  # the top layer (users, backup, runstack): it imports the apps listed before it
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "opsconsole.security.ContentSecurityPolicyMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "opsconsole.auth.LoginRequiredMiddleware",
    "opsconsole.uploads.UploadRedirectMiddleware",
]

ROOT_URLCONF = "opsconsole.urls"

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
                "opsconsole.context_processors.console",
                "tiles.context_processors.running_apply",
            ],
        },
    },
]

WSGI_APPLICATION = "opsconsole.wsgi.application"


def _database_from_url(url: str) -> dict:
    """Turn ``postgres://user:pass@host:port/name`` or ``sqlite:///path`` into a DATABASES entry."""
    parsed = urlparse(url)
    if parsed.scheme in ("postgres", "postgresql", "pgsql"):
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": unquote(parsed.path.lstrip("/")),
            "USER": unquote(parsed.username or ""),
            "PASSWORD": unquote(parsed.password or ""),
            "HOST": parsed.hostname or "",
            "PORT": str(parsed.port or ""),
            "CONN_MAX_AGE": 60,
        }
    if parsed.scheme == "sqlite":
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": unquote(parsed.path) or str(DATA_DIR / "db.sqlite3"),
        }
    raise ValueError(
        f"DATABASE_URL: unsupported scheme {parsed.scheme!r} (use postgres:// or sqlite:///)"
    )


DATABASES = {
    "default": _database_from_url(os.environ["DATABASE_URL"])
    if os.environ.get("DATABASE_URL")
    else {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": str(DATA_DIR / "db.sqlite3"),
        # Worker threads and the web server write at once; wait instead of failing.
        "OPTIONS": {"timeout": 30, "transaction_mode": "IMMEDIATE"},
        "TEST": {"NAME": str(DATA_DIR / "db.sqlite3.test")},
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Every password set (Users page and API, ensure_admin's OPSCONSOLE_ADMIN_PASSWORD) passes these.
AUTH_PASSWORD_VALIDATORS = [
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 12},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
# whitenoise serves /static/ from the app's static folders as found at start (no
# collectstatic step, the same files in tests and under gunicorn); STATIC_ROOT is
# where a `collectstatic` would put them for a front proxy.
STATIC_ROOT = DATA_DIR / "staticfiles"
STATIC_ROOT.mkdir(exist_ok=True)
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

# --- Celery: JSON only, late acks so a killed worker's task is redelivered ---
CELERY_BROKER_URL = os.environ.get(
    "CELERY_BROKER_URL", f"redis://127.0.0.1:{os.environ.get('REDIS_PORT', '6379')}/0"
)
CELERY_RESULT_BACKEND = os.environ.get("CELERY_RESULT_BACKEND", CELERY_BROKER_URL)
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ALWAYS_EAGER = os.environ.get("CELERY_TASK_ALWAYS_EAGER", "0") == "1"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULE: dict = {}  # filled by apps (director.apps) at ready time

# --- REST API ---
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "opsconsole.auth.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["opsconsole.auth.RolePermission"],
    "DEFAULT_PAGINATION_CLASS": "opsconsole.apierrors.Pagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "opsconsole.apierrors.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "opsconsole API",
    "DESCRIPTION": "Ops Manager-shaped console API and BOSH-shaped director API",
    "VERSION": "0",
    "SERVE_INCLUDE_SCHEMA": False,
}

# --- Login throttle and API tokens (opsconsole.throttle, opsconsole.models.ApiToken) ---
# UAA's lockout policy: 5 failures for one user name within 1200 s lock it for 300 s.
# One client address may fail more often (several people behind one NAT) before it is locked.
LOGIN_FAILURES_PER_USER = int(os.environ.get("OPSCONSOLE_LOGIN_FAILURES_PER_USER", "5"))
LOGIN_FAILURES_PER_ADDRESS = int(os.environ.get("OPSCONSOLE_LOGIN_FAILURES_PER_ADDRESS", "20"))
LOGIN_FAILURE_WINDOW = int(os.environ.get("OPSCONSOLE_LOGIN_FAILURE_WINDOW", "1200"))
LOGIN_LOCKOUT_PERIOD = int(os.environ.get("OPSCONSOLE_LOGIN_LOCKOUT_PERIOD", "300"))
# Seconds an API token from POST /api/v0/auth/token lives (UAA's access token: 12 h).
API_TOKEN_LIFETIME = int(os.environ.get("OPSCONSOLE_API_TOKEN_LIFETIME", "43200"))

# --- Director ---
DIRECTOR_NAME = os.environ.get("OPSCONSOLE_DIRECTOR_NAME", "opsconsole")
TASK_LOG_DIR = DATA_DIR / "tasks"
BLOBSTORE_DIR = DATA_DIR / "blobstore"
# Uploaded tarballs (stemcells, releases, tiles) wait here until a task imports them.
UPLOAD_DIR = DATA_DIR / "uploads"


def _positive_int(name: str, default: str) -> int:
    raw = os.environ.get(name, default)
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value <= 0:
        raise ImproperlyConfigured(f"{name}: must be a positive whole number, not {raw!r}")
    return value


# Bounds on every archive an upload brings (director.archives): stemcell and release
# tarballs, the stemcell image, job and package tarballs, .pivotal zips. Bytes one archive
# may expand to, members it may hold, and times its own size it may expand to (past 64 MiB).
MAX_UPLOAD_EXPANDED_BYTES = _positive_int("OPSCONSOLE_MAX_UPLOAD_EXPANDED_BYTES", str(32 << 30))
MAX_ARCHIVE_FILES = _positive_int("OPSCONSOLE_MAX_ARCHIVE_FILES", "100000")
MAX_ARCHIVE_RATIO = _positive_int("OPSCONSOLE_MAX_ARCHIVE_RATIO", "100")
# The console's Stemcell Library: stemcell files kept for Apply Changes to upload (tiles).
STEMCELL_LIBRARY_DIR = DATA_DIR / "stemcell_library"
# A task whose checkpoint is older than this is reported as timed out (BOSH: 6 x 30 s).
TASK_CHECKPOINT_INTERVAL = int(os.environ.get("OPSCONSOLE_TASK_CHECKPOINT_INTERVAL", "30"))
TASK_TIMEOUT_FACTOR = 6


def _positive_seconds(name: str, default: str) -> float:
    raw = os.environ.get(name, default)
    try:
        value = float(raw)
    except ValueError:
        value = 0.0
    if not 0 < value < float("inf"):
        raise ImproperlyConfigured(f"{name}: must be a positive number of seconds, not {raw!r}")
    return value


# Celery beat records the timeout of tasks whose worker died this often (director.schedule).
TASK_TIMEOUT_SCAN_INTERVAL = _positive_seconds("OPSCONSOLE_TASK_TIMEOUT_SCAN_INTERVAL", "30")
# The Celery queue beat sends those scans to (empty: the default queue every worker reads).
# A deployment may give the housekeeping its own worker; the integration test does.
TASK_TIMEOUT_SCAN_QUEUE = os.environ.get("OPSCONSOLE_TASK_TIMEOUT_SCAN_QUEUE", "")
# The health monitor (director.health): Celery beat scans every managed VM this often (one
# vCenter round trip); an agent silent this long is unresponsive (BOSH agent_timeout: 60 s);
# a resurrection (scan and fix) that failed is retried after this long.
HM_SCAN_INTERVAL = _positive_seconds("OPSCONSOLE_HM_SCAN_INTERVAL", "10")
HM_AGENT_TIMEOUT = _positive_seconds("OPSCONSOLE_HM_AGENT_TIMEOUT", "60")
HM_RESURRECTION_RETRY_INTERVAL = _positive_seconds(
    "OPSCONSOLE_HM_RESURRECTION_RETRY_INTERVAL", "60"
)
# The local vcsim that `make run` starts, used when no vCenter is configured yet.
LOCAL_VCSIM_FILE = DATA_DIR / "vcsim.json"
# The message bus (BOSH's mbus: nats-server with TLS and client certificates). runstack
# starts it and hands its URL to the other parts; its CA, certificates, configuration and
# agent users live in NATS_DIR (director.agents.certs, director.agents.nats_auth).
NATS_URL = os.environ.get("OPSCONSOLE_NATS_URL", "")
NATS_DIR = DATA_DIR / "nats"
# The director's blobstore (director.blobstore): where release jobs and packages, compiled
# packages, rendered templates and fetched logs live. OPSCONSOLE_BLOBSTORE is `local` (files
# under BLOBSTORE_DIR) or the dotted path of another Blobstore class. Agents reach it over
# HTTP at OPSCONSOLE_BLOBSTORE_ENDPOINT (DAV under /blobstore/ of this web server). Its
# agent/director passwords and URL-signing secret are generated once into BLOBSTORE_AUTH_DIR.
BLOBSTORE = os.environ.get("OPSCONSOLE_BLOBSTORE", "local")
BLOBSTORE_ENDPOINT = os.environ.get("OPSCONSOLE_BLOBSTORE_ENDPOINT") or (
    f"{'https' if TLS_ENABLED else 'http'}://127.0.0.1:{os.environ.get('PORT', '8000')}/blobstore"
)
BLOBSTORE_AUTH_DIR = DATA_DIR / "blobstore_auth"
# Largest blob one PUT may store (bytes); a bigger one is refused (413) before it is read.
BLOBSTORE_MAX_BLOB_BYTES = _positive_int("OPSCONSOLE_BLOBSTORE_MAX_BLOB_BYTES", str(32 << 30))

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"redact": {"()": "opsconsole.redaction.RedactingFilter"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
        "syslog": {
            "format": "opsconsole-director[%(process)d]: %(levelname)s %(name)s: %(message)s"
        },
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["redact"]},
        # The Director tile's Syslog pane: off until an Apply Changes turns it on.
        "director_syslog": {
            "class": "director.syslog.DirectorSyslogHandler",
            "formatter": "syslog",
            "filters": ["redact"],
        },
    },
    "root": {"handlers": ["console"], "level": os.environ.get("OPSCONSOLE_LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        "director": {"handlers": ["director_syslog"]},
        "cpi": {"handlers": ["director_syslog"]},
    },
}
