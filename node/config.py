"""A node's configuration: one TOML file in its data folder, environment overrides on top."""

from __future__ import annotations

import os
import secrets
import tomllib
from dataclasses import dataclass, field
from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path
from urllib.parse import urlsplit

CONFIG_FILE = "config.toml"
DATABASE_ENV = "COMMONS_DATABASE_URL"
ProxyNetwork = IPv4Network | IPv6Network


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
    # Reverse proxies whose X-Forwarded-For the node believes (sign-in throttling).
    trusted_proxies: tuple[ProxyNetwork, ...] = ()
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


def parse_trusted_proxies(value: object) -> tuple[ProxyNetwork, ...]:
    """`trusted_proxies = ["127.0.0.1", "10.0.0.0/8"]`: addresses or networks."""
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ConfigError("trusted_proxies must be a list of addresses or networks, as strings")
    try:
        return tuple(ip_network(item.strip(), strict=False) for item in value)
    except ValueError as exc:
        raise ConfigError(f"trusted_proxies: {exc}") from exc


def load_config(data_dir: Path) -> NodeConfig:
    path = data_dir / CONFIG_FILE
    if not path.is_file():
        raise ConfigError(f"{data_dir} is not a Commons Node data folder (no {CONFIG_FILE})")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    known = {
        "base_url",
        "slug",
        "name",
        "database_url",
        "secret_key",
        "allow_private_addresses",
        "trusted_proxies",
    }
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
            trusted_proxies=parse_trusted_proxies(raw.get("trusted_proxies", [])),
            extra={k: v for k, v in raw.items() if k not in known},
        )
    except KeyError as exc:
        raise ConfigError(f"{path}: missing setting {exc.args[0]}") from exc
