#!/usr/bin/env python3
"""Container health check for Commons Node: exit 0 when the node is ready.

Standard library only (the slim image has no curl). It asks `GET /readyz`, which
answers 200 only when the database answers and is at the schema the code expects,
on the address and port the container's main process listens on: for `serve`,
`--host`/`--port` from its command line, else the host and port of the base URL
in DATA/config.toml (what `serve` falls back to); for `worker`, its
`--metrics-host`/`--metrics-port` (a worker started without --metrics-port has
nothing to ask, and counts as healthy while it runs). COMMONS_HEALTHCHECK_URL
overrides all of this.
"""

from __future__ import annotations

import os
import sys
import tomllib
import urllib.error
import urllib.request
from urllib.parse import urlsplit

PATH = "/readyz"
TIMEOUT_SECONDS = 4


def main_process_args() -> list[str]:
    try:
        with open("/proc/1/cmdline", "rb") as f:
            raw = f.read()
    except OSError:
        return []
    return [part.decode("utf-8", "replace") for part in raw.split(b"\0") if part]


def option(args: list[str], name: str) -> str | None:
    for i, arg in enumerate(args):
        if arg == name and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return None


def base_url() -> str | None:
    """Where to ask, or None for a worker that answers no HTTP."""
    args = main_process_args()
    if "worker" in args:
        port = option(args, "--metrics-port")
        host = option(args, "--metrics-host") or "127.0.0.1"
        return f"http://{_address(host)}:{port}" if port else None
    data = option(args, "--data") or os.environ.get("COMMONS_DATA", "/data")
    with open(os.path.join(data, "config.toml"), "rb") as f:
        config = tomllib.load(f)
    parts = urlsplit(str(config["base_url"]))
    host = option(args, "--host") or parts.hostname or "127.0.0.1"
    port = option(args, "--port") or parts.port or (443 if parts.scheme == "https" else 80)
    # `serve` speaks plain HTTP; TLS is the reverse proxy's job.
    return f"http://{_address(host)}:{port}"


def _address(host: str) -> str:
    if host in ("0.0.0.0", ""):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    return f"[{host}]" if ":" in host else host


def check(url: str) -> int:
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    # No proxy: an HTTP(S)_PROXY set for the container must not see loopback checks.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=TIMEOUT_SECONDS) as response:
            response.read(1024 * 1024)
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def main() -> int:
    override = os.environ.get("COMMONS_HEALTHCHECK_URL")
    try:
        base = None if override else base_url()
        if not override and base is None:
            return 0  # a worker without --metrics-port: running is all it can show
        url = override or f"{base}{PATH}"
        status = check(url)
        if status == 200:
            return 0
        print(f"unhealthy: {url} answered {status}", file=sys.stderr)
    except (OSError, KeyError, ValueError, tomllib.TOMLDecodeError) as exc:
        print(f"unhealthy: {exc}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
