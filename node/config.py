"""A node's configuration: one TOML file in its data folder, environment overrides on top.

One typed model holds every setting. An unknown key in the file is an error
rather than something silently ignored (a misspelt `trusted_proxies` must not
leave sign-in throttling open), and every setting can be overridden by an
environment variable `COMMONS_<NAME>` (for example `COMMONS_DATABASE_URL`),
which is how containers and CI configure a node without editing the file.
"""

from __future__ import annotations

import os
import re
import secrets
import tomllib
from collections.abc import Mapping
from ipaddress import IPv4Network, IPv6Network
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import tomli_w
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
)

CONFIG_FILE = "config.toml"
ENV_PREFIX = "COMMONS_"
DATABASE_ENV = f"{ENV_PREFIX}DATABASE_URL"
ProxyNetwork = IPv4Network | IPv6Network


class ConfigError(Exception):
    """The data folder or its configuration is not usable; the message says why."""


def normalize_base_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"base URL must be http(s)://host[:port], got {url!r}")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ConfigError("base URL must not have a path, query or fragment")
    return f"{parts.scheme}://{parts.netloc.lower()}"


_TILE_HOST = re.compile(r"^(\{s\}\.)?[a-z0-9.-]+(:[0-9]{1,5})?$")


def tile_origin(template: str) -> str | None:
    """The origin a tile URL template loads from, as a CSP source (`{s}.` becomes `*.`),
    or None when the template is not an http(s) URL with `{z}`, `{x}` and `{y}`."""
    scheme, sep, rest = template.partition("://")
    netloc = rest.split("/", 1)[0].lower()
    if scheme not in ("http", "https") or not sep or not _TILE_HOST.match(netloc):
        return None
    if not all(part in rest for part in ("{z}", "{x}", "{y}")):
        return None
    return f"{scheme}://{netloc.replace('{s}.', '*.')}"


def _whole_number(value: Any) -> Any:
    """`true` is not a number, even though Python says it is 1."""
    if isinstance(value, bool):
        raise ValueError("must be a whole number, not true or false")
    return value


Count = Annotated[int, BeforeValidator(_whole_number), Field(ge=0)]
Positive = Annotated[int, BeforeValidator(_whole_number), Field(ge=1)]


class NodeConfig(BaseModel):
    """Every setting a node reads; the defaults suit a small community's node."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    data_dir: Path
    base_url: str
    slug: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=200)
    database_url: str
    secret_key: str = Field(min_length=16)
    allow_private_addresses: bool = False
    signature_max_skew_seconds: Positive = 300

    # Reverse proxies whose X-Forwarded-For the node believes (sign-in throttling).
    trusted_proxies: tuple[ProxyNetwork, ...] = ()

    # What one remote host may send our inboxes: Follows (partnership proposals
    # included) at a steward's pace, everything else at a busy server's; past
    # that, 429 with Retry-After.
    follow_rate_burst: Count = 20
    follow_rate_per_minute: Count = 10
    activity_rate_burst: Count = 300
    activity_rate_per_minute: Count = 1200
    max_pending_proposals_per_host: Count = 3
    # How many remote servers' activities the inbox processor handles side by side
    # (each server's stay in order). 0 picks for the database: 1 on SQLite, whose
    # single writer gains nothing from more, 4 on PostgreSQL.
    inbox_handler_concurrency: Count = 0
    # Activities stored and not yet handled past which the inbox waits (up to a
    # second a commit) for the processor to catch up, so a sender slows to the
    # pace we handle at instead of growing the backlog. 0: never wait.
    inbox_backlog_limit: Count = 500

    # What one sync may take from one remote collection (see node.protocol.mirror):
    # room for a large partner (50,000 listings, 20 a page as outboxes serve them,
    # about 4 KiB each), still a bound on what a stranger's collection costs us.
    backfill_max_pages: Positive = 2_500
    backfill_max_items: Positive = 50_000
    backfill_max_bytes: Positive = 200 * 1024 * 1024
    reconcile_interval_seconds: Positive = 3600

    # Background map tiles for the map pages, fetched by members' browsers (never by
    # the node). `{z}/{x}/{y}` are required, `{s}` picks a subdomain; an empty value
    # draws maps without tiles. The page's CSP allows images from this origin only.
    map_tile_url: str = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
    map_tile_attribution: str = Field(default="© OpenStreetMap contributors", max_length=300)
    map_tile_attribution_url: str = "https://www.openstreetmap.org/copyright"

    # Learning the network from peers' peer lists (see node.protocol.crawl):
    # how many hops from a peer a steward added, how many new nodes one crawl
    # may add, how many communities it reads from one node, the pause between
    # the crawls it queues, how often known nodes and actors are refreshed,
    # how many known nodes one refresh round reads again, and how many nodes
    # this node keeps at most.
    discovery_max_depth: Count = 2
    discovery_hosts_per_round: Count = 10
    discovery_communities_per_node: Positive = 50
    discovery_crawl_spacing_seconds: Count = 5
    discovery_refresh_interval_seconds: Positive = 6 * 3600
    discovery_crawls_per_round: Positive = 25
    discovery_max_known_peers: Positive = 1000
    # Operations: who may read /metrics besides loopback (a bearer token), how
    # logs are written ("text" or "json", one object per line), whether `serve`
    # also runs the background workers, and how long a rotated key still verifies.
    metrics_token: str | None = Field(default=None, min_length=16)
    log_format: Literal["text", "json"] = "text"
    run_workers: bool = True
    worker_poll_seconds: Annotated[float, Field(gt=0, le=60)] = 1.0
    # How long a worker holds the deliveries it claimed: a worker that dies lets
    # them go to another after this. Far longer than a batch takes to send.
    delivery_lease_seconds: Annotated[int, BeforeValidator(_whole_number), Field(ge=5)] = 300
    # How many deliveries one worker sends at once, and at most to one host: a
    # slow or dead host holds that many and never holds up the others.
    delivery_concurrency: Annotated[int, BeforeValidator(_whole_number), Field(ge=1, le=1000)] = 64
    delivery_per_host: Annotated[int, BeforeValidator(_whole_number), Field(ge=1, le=256)] = 16
    key_grace_days: Positive = 7
    # Where listing photos are kept (re-encoded, in a few sizes); relative to the
    # data folder, which holds them in `media/` when this is unset.
    media_dir: Path | None = None
    # How many photos of one other community's listings this node keeps at most.
    remote_images_per_source: Positive = 2000
    # Relays (see node.protocol.relays): how many objects one relay may make us
    # fetch in a minute, and how many public listings of one community that none
    # of ours follows or partners with the mirror keeps from relays.
    relay_fetches_per_minute: Positive = 60
    relay_max_listings_per_origin: Positive = 500

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        try:
            return normalize_base_url(value)
        except ConfigError as exc:
            raise ValueError(str(exc)) from exc

    @field_validator("map_tile_url")
    @classmethod
    def _tile_url(cls, value: str) -> str:
        if value and tile_origin(value) is None:
            raise ValueError(
                "must be an http(s) URL template with {z}, {x} and {y}, "
                "like https://tile.openstreetmap.org/{z}/{x}/{y}.png, or empty for no tiles"
            )
        return value

    @field_validator("map_tile_attribution_url")
    @classmethod
    def _attribution_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if value and (parts.scheme not in ("http", "https") or not parts.hostname):
            raise ValueError("must be an http(s) URL, or empty")
        return value

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _proxies(cls, value: Any) -> Any:
        """A TOML list, or (from the environment) a comma-separated string."""
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
            raise ValueError("must be a list of addresses or networks, written as strings")
        return value

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


SETTINGS = tuple(name for name in NodeConfig.model_fields if name != "data_dir")


def default_database_url(data_dir: Path) -> str:
    return f"sqlite+aiosqlite:///{(data_dir / 'commons.db').resolve()}"


def _environment(environ: Mapping[str, str]) -> dict[str, str]:
    return {
        name: environ[f"{ENV_PREFIX}{name.upper()}"]
        for name in SETTINGS
        if f"{ENV_PREFIX}{name.upper()}" in environ
    }


def _describe(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors(include_url=False):
        where = ".".join(str(part) for part in error["loc"]) or "config"
        message = "unknown setting" if error["type"] == "extra_forbidden" else error["msg"]
        problems.append(f"{where}: {message}")
    return "; ".join(problems)


def config_from(
    data_dir: Path, values: Mapping[str, Any], environ: Mapping[str, str] | None = None
) -> NodeConfig:
    """Validate `values` (the file's) with environment overrides on top."""
    merged = {**values, **_environment(os.environ if environ is None else environ)}
    try:
        return NodeConfig(data_dir=data_dir, **merged)
    except ValidationError as exc:
        raise ConfigError(f"{data_dir / CONFIG_FILE}: {_describe(exc)}") from exc


def write_config(
    data_dir: Path,
    *,
    base_url: str,
    slug: str,
    name: str,
    database_url: str | None,
    allow_private_addresses: bool,
) -> NodeConfig:
    values: dict[str, Any] = {
        "base_url": normalize_base_url(base_url),
        "slug": slug,
        "name": name,
        "database_url": database_url or default_database_url(data_dir),
        "secret_key": secrets.token_urlsafe(32),
        "allow_private_addresses": allow_private_addresses,
    }
    config_from(data_dir, values, environ={})  # refuse to write what could not be read
    text = "# Commons Node configuration, written by `commons-node init`.\n" + tomli_w.dumps(values)
    path = data_dir / CONFIG_FILE
    path.write_text(text, encoding="utf-8")
    path.chmod(0o600)
    return load_config(data_dir)


def load_config(data_dir: Path, environ: Mapping[str, str] | None = None) -> NodeConfig:
    path = data_dir / CONFIG_FILE
    if not path.is_file():
        raise ConfigError(f"{data_dir} is not a Commons Node data folder (no {CONFIG_FILE})")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    return config_from(data_dir, raw, environ)
