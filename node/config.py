"""A node's configuration: one TOML file in its data folder, environment overrides on top."""

from __future__ import annotations

import os
import secrets
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

CONFIG_FILE = "config.toml"
DATABASE_ENV = "COMMONS_DATABASE_URL"


class ConfigError(Exception):
    """The data folder or its configuration is not usable; the message says why."""


@dataclass(frozen=True)
class NodeConfig:
    data_dir: Path
    base_url: str
    slug: str
    name: str
    database_url: str
    secret_key: str
    allow_private_addresses: bool = False
    signature_max_skew_seconds: int = 300
    # What one remote host may send our inboxes: Follows (partnership
    # proposals included) at a steward's pace, everything else at a busy
    # server's; past that, 429 with Retry-After.
    follow_rate_burst: int = 20
    follow_rate_per_minute: int = 10
    activity_rate_burst: int = 300
    activity_rate_per_minute: int = 1200
    max_pending_proposals_per_host: int = 3
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def host(self) -> str:
        """Host as it appears in handles: `host:port` when the port is not the default."""
        return urlsplit(self.base_url).netloc

    @property
    def listen_host(self) -> str:
        return urlsplit(self.base_url).hostname or "127.0.0.1"

    @property
    def listen_port(self) -> int:
        parts = urlsplit(self.base_url)
        return parts.port or (443 if parts.scheme == "https" else 80)


LIMIT_SETTINGS = (
    "follow_rate_burst",
    "follow_rate_per_minute",
    "activity_rate_burst",
    "activity_rate_per_minute",
    "max_pending_proposals_per_host",
)
"""Optional whole-number settings, read from config.toml when present."""


def _limits(raw: dict[str, object], path: Path) -> dict[str, int]:
    limits: dict[str, int] = {}
    for name in LIMIT_SETTINGS:
        value = raw.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ConfigError(f"{path}: {name} must be a whole number >= 0, got {value!r}")
        limits[name] = value
    return limits


def default_database_url(data_dir: Path) -> str:
    return f"sqlite+aiosqlite:///{(data_dir / 'commons.db').resolve()}"


def normalize_base_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"base URL must be http(s)://host[:port], got {url!r}")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ConfigError("base URL must not have a path, query or fragment")
    return f"{parts.scheme}://{parts.netloc.lower()}"


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'


def write_config(
    data_dir: Path,
    *,
    base_url: str,
    slug: str,
    name: str,
    database_url: str | None,
    allow_private_addresses: bool,
) -> NodeConfig:
    values: dict[str, object] = {
        "base_url": normalize_base_url(base_url),
        "slug": slug,
        "name": name,
        "database_url": database_url or default_database_url(data_dir),
        "secret_key": secrets.token_urlsafe(32),
        "allow_private_addresses": allow_private_addresses,
    }
    text = "# Commons Node configuration, written by `commons-node init`.\n" + "".join(
        f"{key} = {_toml_value(value)}\n" for key, value in values.items()
    )
    path = data_dir / CONFIG_FILE
    path.write_text(text, encoding="utf-8")
    path.chmod(0o600)
    return load_config(data_dir)


def load_config(data_dir: Path) -> NodeConfig:
    path = data_dir / CONFIG_FILE
    if not path.is_file():
        raise ConfigError(f"{data_dir} is not a Commons Node data folder (no {CONFIG_FILE})")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    known = {"base_url", "slug", "name", "database_url", "secret_key", "allow_private_addresses"}
    known |= set(LIMIT_SETTINGS)
    try:
        return NodeConfig(
            data_dir=data_dir,
            base_url=normalize_base_url(str(raw["base_url"])),
            slug=str(raw["slug"]),
            name=str(raw["name"]),
            database_url=os.environ.get(DATABASE_ENV) or str(raw["database_url"]),
            secret_key=str(raw["secret_key"]),
            allow_private_addresses=bool(raw.get("allow_private_addresses", False)),
            signature_max_skew_seconds=int(raw.get("signature_max_skew_seconds", 300)),
            **_limits(raw, path),
            extra={k: v for k, v in raw.items() if k not in known},
        )
    except KeyError as exc:
        raise ConfigError(f"{path}: missing setting {exc.args[0]}") from exc
