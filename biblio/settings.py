"""Settings: every key declared once, with its default, type and help.

Precedence, lowest first: the declared defaults, the TOML settings file
(``settings.toml`` in the working directory, or the path in ``BIBLIO_SETTINGS``
or ``--settings``), ``BIBLIO_<SECTION>__<KEY>`` environment variables, and the
mapping given to ``create_app(settings=...)``. Secrets (the Zotero API key, the
Flask secret key, the SMTP password) are read from the environment only; a
settings file that carries one is refused, so they never land in a repository.

Free-form sections (``[prongs]``) are kept as parsed and validated by the module
that owns them. Every error is a :class:`SettingsError` whose message is one line
naming the file and the key.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ENV_PREFIX = "BIBLIO_"


class SettingsError(Exception):
    """A setting is missing, malformed or misplaced; the message names the key."""


@dataclass(frozen=True)
class Setting:
    section: str
    key: str
    default: Any
    type: type
    help: str
    required: bool = False
    choices: tuple[str, ...] | None = None
    minimum: float | None = None  # numbers only: the smallest value accepted


_S = Setting
DECLARED: tuple[Setting, ...] = (
    _S(
        "zotero",
        "base_url",
        "https://api.zotero.org",
        str,
        "Zotero Web API base URL (the local stand-in, or Zotero desktop's local API).",
    ),
    _S("zotero", "library_type", "group", str, "Library type.", choices=("group", "user")),
    _S("zotero", "library_id", None, int, "Numeric Zotero group (or user) ID.", required=True),
    _S("zotero", "timeout_seconds", 30.0, float, "HTTP timeout per request."),
    _S("zotero", "max_retries", 5, int, "Retries of one request on 429/5xx/network errors."),
    _S(
        "zotero",
        "max_wait_seconds",
        120.0,
        float,
        "Longest single wait honoured for Backoff/Retry-After before giving up.",
    ),
    _S(
        "zotero",
        "backoff_cap_seconds",
        3600.0,
        float,
        "Longest Backoff/Retry-After biblio accepts; a longer one is cut to this.",
    ),
    _S("zotero", "retry_base_seconds", 1.0, float, "First retry delay; doubles each retry."),
    _S(
        "database",
        "url",
        "sqlite:///instance/biblio.sqlite3",
        str,
        "SQLAlchemy URL. Relative SQLite paths are relative to the working directory.",
    ),
    _S(
        "database",
        "busy_timeout_seconds",
        30.0,
        float,
        "SQLite: how long a writer waits its turn for the write lock before failing.",
        minimum=0.0,
    ),
    _S("sync", "interval_minutes", 60, int, "Minutes between scheduled syncs."),
    _S(
        "sync",
        "max_restarts",
        3,
        int,
        "Restarts of a run when the library version changes mid-sync, before failing.",
    ),
    _S(
        "sync",
        "lock_file",
        "",
        str,
        "Lock file shared by every sync (default: next to the SQLite file, or instance/).",
    ),
    _S(
        "sync",
        "prerender",
        True,
        bool,
        "Pre-render citations after a sync: the default style and recently used ones.",
    ),
    _S(
        "sync",
        "concurrency",
        4,
        int,
        "Requests to Zotero in flight at once (one after a Backoff, Retry-After or 429).",
    ),
    _S("sync", "fulltext", True, bool, "Sync the indexed full text of attachments."),
    _S(
        "sync",
        "save_attempts",
        5,
        int,
        "Attempts at saving a run when the database stays busy past its timeout.",
    ),
    _S(
        "web",
        "env",
        "development",
        str,
        "development or production.",
        choices=("development", "production"),
    ),
    _S("web", "host", "127.0.0.1", str, "Address `biblio run` listens on."),
    _S("web", "port", 5000, int, "Port `biblio run` listens on."),
    _S(
        "web",
        "public_url",
        "",
        str,
        "Absolute URL of the site, the one source of links in emails and feeds "
        "(required in production, https://).",
    ),
    _S("web", "page_size", 50, int, "Default rows per page."),
    _S("web", "max_page_size", 1000, int, "Largest _size accepted."),
    _S(
        "web",
        "rate_limit_storage",
        "",
        str,
        'Where rate-limit counts live: "" = biblio\'s database (shared by every worker, and '
        'by every machine on PostgreSQL), "redis://host:port" (a shared Redis), or '
        '"memory://" (each process counts alone).',
    ),
    _S(
        "web",
        "trusted_proxies",
        0,
        int,
        "Reverse proxies in front of biblio (nginx: 1); their X-Forwarded-For/-Proto are "
        "believed, so limits key on the real client. 0 ignores those headers.",
    ),
    _S(
        "web",
        "render_rate_limit",
        "20 per minute",
        str,
        "Renders of uncached bibliographies (pages, reading lists, formatted exports) "
        "started per IP; answers from the cache never count.",
    ),
    _S(
        "web",
        "session_hours",
        12,
        int,
        "Hours an owner's login lasts; logout and a password change end it at once.",
    ),
    _S("mail", "enabled", True, bool, "Send email (queued in the outbox either way)."),
    _S("mail", "host", "localhost", str, "SMTP host."),
    _S("mail", "port", 25, int, "SMTP port."),
    _S(
        "mail",
        "security",
        "none",
        str,
        "none, starttls or ssl.",
        choices=("none", "starttls", "ssl"),
    ),
    _S("mail", "username", "", str, "SMTP user name (password: BIBLIO_MAIL_PASSWORD)."),
    _S("mail", "sender", "biblio@localhost", str, "From address."),
    _S("mail", "max_attempts", 8, int, "Delivery attempts per message before it is parked."),
    _S("join", "reminder_days", 7, int, "Requests pending longer than this go in the digest."),
    _S("join", "notify_owners", True, bool, "Email every owner when a new request arrives."),
    _S("join", "rate_limit", "5 per hour", str, "Join submissions allowed per IP."),
    _S("join", "email_rate_limit", "3 per day", str, "Join submissions allowed per email."),
    _S(
        "join",
        "zotero_oauth_key",
        "",
        str,
        "Client key of biblio's app at zotero.org/oauth/apps: offers “Sign in with Zotero” "
        "on /join (secret: BIBLIO_ZOTERO_OAUTH_SECRET). Empty: the ID form only.",
    ),
    _S(
        "join",
        "zotero_oauth_url",
        "https://www.zotero.org",
        str,
        "Where Zotero's OAuth endpoints are (/oauth/request, /oauth/authorize, /oauth/access).",
    ),
    _S("auth", "login_rate_limit", "10 per minute", str, "Login attempts per IP."),
    _S(
        "auth",
        "lockout_failures",
        5,
        int,
        "Failed logins in a row from one address that lock that address out of the account.",
    ),
    _S(
        "auth",
        "lockout_minutes",
        15,
        int,
        "How long a lockout lasts (it doubles for each lockout in a row, up to a day).",
    ),
    _S(
        "auth",
        "account_failures",
        50,
        int,
        "Failed logins to one account from anywhere, within lockout_minutes, after which "
        "only browsers that signed in to it before may try until it is quiet again.",
    ),
    _S("citations", "default_style", "apa", str, "Default CSL style."),
    _S("citations", "locale", "en-US", str, "Default CSL locale."),
    _S("citations", "styles_dir", "styles", str, "Folder of extra .csl files (wins on clash)."),
    _S(
        "citations",
        "prerender_recent_days",
        30,
        int,
        "After a sync, also pre-render every style (with its locale and format) requested "
        "within this many days, besides the default style ([sync] prerender).",
        minimum=0,
    ),
    _S(
        "citations",
        "prerender_max_styles",
        8,
        int,
        "At most this many recently requested styles are pre-rendered, most recent first.",
        minimum=0,
    ),
    _S(
        "citations",
        "prerender_workers",
        0,
        int,
        "Processes that pre-render a large change after a sync (0 = one per CPU).",
        minimum=0,
    ),
    _S(
        "citations",
        "render_budget_entries",
        250,
        int,
        "A request missing more rendered entries than this is answered at once (202, a "
        "page that refreshes itself) while they render in the background.",
        minimum=0,
    ),
    _S(
        "citations",
        "background_renders",
        1,
        int,
        "Background renders at once per web process, each in a process of lower priority.",
        minimum=1,
    ),
    _S("lists", "create_rate_limit", "10 per hour", str, "Reading lists created per IP."),
    _S(
        "health",
        "max_sync_age_minutes",
        0,
        int,
        "/-/health fails when the last good sync is older (0 = three sync intervals).",
        minimum=0,
    ),
    _S(
        "health",
        "outbox_overdue_minutes",
        60,
        int,
        "/-/health fails when a pending email has been due this long (mail enabled).",
        minimum=1,
    ),
    _S("demo", "zotero_port", 0, int, "Port of the demo's Zotero stand-in (0 = any free)."),
    _S(
        "demo",
        "mailbox",
        "",
        str,
        "Maildir of the demo's mail catcher (`biblio demo` sets it); owners read it at "
        "/-/admin/mail. Empty: no catcher.",
    ),
)

#: Sections whose contents are validated by their owning module, not here.
FREE_FORM_SECTIONS = frozenset({"prongs"})

#: Secrets, read from these environment variables only.
SECRETS = {
    ("zotero", "api_key"): ("ZOTERO_API_KEY",),
    ("web", "secret_key"): ("BIBLIO_SECRET_KEY", "SECRET_KEY"),
    ("mail", "password"): ("BIBLIO_MAIL_PASSWORD",),
    ("join", "zotero_oauth_secret"): ("BIBLIO_ZOTERO_OAUTH_SECRET",),
}

_BY_KEY = {(s.section, s.key): s for s in DECLARED}
_SECTIONS = {s.section for s in DECLARED}


class Settings(dict):
    """Nested ``{section: {key: value}}`` with ``settings["zotero"]["base_url"]`` access."""

    source: str = "<defaults>"

    def get_path(self, dotted: str, default: Any = None) -> Any:
        node: Any = self
        for part in dotted.split("."):
            if not isinstance(node, Mapping) or part not in node:
                return default
            node = node[part]
        return node


def _coerce(setting: Setting, value: Any, where: str) -> Any:
    name = f"{where}: [{setting.section}] {setting.key}"
    if setting.type is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in {"1", "true", "yes", "on"}:
            return True
        if isinstance(value, str) and value.strip().lower() in {"0", "false", "no", "off"}:
            return False
        raise SettingsError(f"{name} must be true or false, got {value!r}")
    if setting.type is int:
        if isinstance(value, bool):
            raise SettingsError(f"{name} must be an integer, got {value!r}")
        try:
            number: int | float = int(str(value).strip()) if not isinstance(value, int) else value
        except ValueError:
            raise SettingsError(f"{name} must be an integer, got {value!r}") from None
        return _at_least(setting, number, name)
    if setting.type is float:
        if isinstance(value, bool):
            raise SettingsError(f"{name} must be a number, got {value!r}")
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise SettingsError(f"{name} must be a number, got {value!r}") from None
        if number != number or number in (float("inf"), float("-inf")):
            raise SettingsError(f"{name} must be a finite number, got {value!r}")
        return _at_least(setting, number, name)
    if not isinstance(value, str):
        raise SettingsError(f"{name} must be a string, got {value!r}")
    if setting.choices and value not in setting.choices:
        raise SettingsError(f"{name} must be one of {', '.join(setting.choices)}, got {value!r}")
    return value


def _at_least(setting: Setting, number: int | float, name: str) -> int | float:
    if setting.minimum is not None and number < setting.minimum:
        raise SettingsError(f"{name} must be at least {setting.minimum:g}, got {number!r}")
    return number


def declared_default(section: str, key: str) -> Any:
    """The declared default of ``[section] key`` (for code that runs without settings)."""
    return _BY_KEY[(section, key)].default


def _check_public_url(result: Settings) -> None:
    """``[web] public_url`` is an absolute http(s) URL; in production it is required and
    https, since links in emails and feeds come from it alone, never from a request's
    Host header, and production cookies are Secure."""
    web, where = result["web"], result.source
    url = web["public_url"].strip()
    if url:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise SettingsError(
                f"{where}: [web] public_url must be an absolute http(s) URL "
                f"like https://biblio.example.org, got {url!r}"
            )
        if parts.query or parts.fragment or parts.username or parts.password:
            raise SettingsError(
                f"{where}: [web] public_url must have no user, query or fragment, got {url!r}"
            )
    if web["env"] != "production":
        return
    if not url:
        raise SettingsError(
            f'{where}: [web] public_url is required when [web] env = "production" '
            "(the site's https:// address; links in emails and feeds come from it)"
        )
    if urlsplit(url).scheme != "https":
        raise SettingsError(
            f'{where}: [web] public_url must be https:// when [web] env = "production" '
            f"(cookies are Secure and HSTS is sent), got {url!r}"
        )


def _merge_layer(result: Settings, layer: Mapping[str, Any], where: str) -> None:
    for section, values in layer.items():
        if section in FREE_FORM_SECTIONS:
            if not isinstance(values, Mapping):
                raise SettingsError(f"{where}: [{section}] must be a table")
            result[section] = _deep_merge(result.get(section, {}), values)
            continue
        if section not in _SECTIONS:
            raise SettingsError(f"{where}: unknown section [{section}]")
        if not isinstance(values, Mapping):
            raise SettingsError(f"{where}: [{section}] must be a table, got {values!r}")
        for key, value in values.items():
            if (section, key) in SECRETS:
                if where.startswith("create_app"):
                    continue  # applied after the environment, below
                env = " or ".join(SECRETS[(section, key)])
                raise SettingsError(
                    f"{where}: [{section}] {key} is a secret; set it in the environment ({env})"
                )
            setting = _BY_KEY.get((section, key))
            if setting is None:
                raise SettingsError(f"{where}: unknown key [{section}] {key}")
            result[section][key] = _coerce(setting, value, where)


def _deep_merge(base: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _env_layer(environ: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    layer: dict[str, dict[str, Any]] = {}
    for name, value in environ.items():
        if not name.startswith(ENV_PREFIX) or "__" not in name:
            continue
        parts = name[len(ENV_PREFIX) :].lower().split("__")
        section, key = parts[0], "__".join(parts[1:])
        if section in FREE_FORM_SECTIONS or (section, key) in SECRETS:
            continue  # free-form sections are file-only; secrets have their own names
        layer.setdefault(section, {})[key] = value
    return layer


def settings_path(
    explicit: str | os.PathLike[str] | None = None, environ: Mapping[str, str] | None = None
) -> Path | None:
    """The settings file to read: explicit, then ``BIBLIO_SETTINGS``, then ./settings.toml."""
    environ = os.environ if environ is None else environ
    if explicit:
        return Path(explicit)
    if environ.get("BIBLIO_SETTINGS"):
        return Path(environ["BIBLIO_SETTINGS"])
    default = Path("settings.toml")
    return default if default.exists() else None


def load_settings(
    path: str | os.PathLike[str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Build the settings from all layers; raise :class:`SettingsError` on any problem."""
    environ = os.environ if environ is None else environ
    result = Settings({section: {} for section in sorted(_SECTIONS)})
    for setting in DECLARED:
        result[setting.section][setting.key] = setting.default

    file = settings_path(path, environ)
    if file is not None:
        result.source = str(file)
        try:
            text = file.read_text(encoding="utf-8")
        except OSError as exc:
            raise SettingsError(f"{file}: cannot read settings file ({exc.strerror})") from None
        except UnicodeDecodeError:
            raise SettingsError(f"{file}: settings file is not UTF-8") from None
        try:
            parsed = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise SettingsError(f"{file}: not valid TOML ({exc})") from None
        _merge_layer(result, parsed, str(file))

    _merge_layer(result, _env_layer(environ), "environment")
    if overrides:
        _merge_layer(result, overrides, "create_app(settings=...)")

    for (section, key), names in SECRETS.items():
        value = next((environ[n] for n in names if environ.get(n)), None)
        if overrides and isinstance(overrides.get(section), Mapping):
            value = overrides[section].get(key, value)  # tests inject secrets directly
        result[section][key] = value

    for setting in DECLARED:
        if setting.required and result[setting.section][setting.key] is None:
            where = result.source
            raise SettingsError(
                f"{where}: [{setting.section}] {setting.key} is required ({setting.help})"
            )
    if result["web"]["env"] == "production" and not result["web"]["secret_key"]:
        raise SettingsError(
            'environment: BIBLIO_SECRET_KEY is required when [web] env = "production"'
        )
    _check_public_url(result)
    return result


def public_url(settings: Settings) -> str:
    """The site's absolute base URL for links in emails and feeds, without a trailing
    slash: ``[web] public_url``, else (development) the address ``biblio run`` serves.
    Never a request's ``Host`` header, which any client can set."""
    configured = str(settings["web"]["public_url"]).strip().rstrip("/")
    if configured:
        return configured
    host = str(settings["web"]["host"]) or "127.0.0.1"
    if host in ("0.0.0.0", "::"):  # noqa: S104 (a bind-all address names no host)
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{settings['web']['port']}"


def describe() -> str:
    """Every declared setting with its default and help, as TOML comments."""
    lines: list[str] = []
    section = None
    for s in DECLARED:
        if s.section != section:
            section = s.section
            lines.append(f"\n[{section}]")
        default = "(required)" if s.required else repr(s.default)
        lines.append(f"# {s.key} = {default}  -- {s.help}")
    for (sec, key), names in SECRETS.items():
        lines.append(f"# [{sec}] {key}: environment only ({' or '.join(names)})")
    return "\n".join(lines).strip() + "\n"
