#!/usr/bin/env python3
"""Container health check for Commons Node: exit 0 when the node answers over HTTP.

Standard library only (the slim image has no curl). It asks the address and port
that `commons-node serve` was started with: `--host`/`--port` from the command
line of the container's main process, else the host and port of the base URL in
DATA/config.toml, which is what `serve` falls back to. COMMONS_HEALTHCHECK_URL
overrides all of this.

/nodeinfo/2.1 is tried first (it reads the database, so a broken database shows
up); while a node has no NodeInfo route yet (404), /api/v1/openapi.json, which
only proves that the process serves HTTP, is used instead.
"""

from __future__ import annotations

import os
import sys
import tomllib
import urllib.error
import urllib.request
from urllib.parse import urlsplit

PATHS = ("/nodeinfo/2.1", "/api/v1/openapi.json")
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


def base_url() -> str:
    args = main_process_args()
    data = option(args, "--data") or os.environ.get("COMMONS_DATA", "/data")
    with open(os.path.join(data, "config.toml"), "rb") as f:
        config = tomllib.load(f)
    parts = urlsplit(str(config["base_url"]))
    host = option(args, "--host") or parts.hostname or "127.0.0.1"
    port = option(args, "--port") or parts.port or (443 if parts.scheme == "https" else 80)
    if host in ("0.0.0.0", ""):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host:
        host = f"[{host}]"
    # `serve` speaks plain HTTP; TLS is the reverse proxy's job.
    return f"http://{host}:{port}"


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
        urls = [override] if override else [base_url() + path for path in PATHS]
        for url in urls:
            status = check(url)
            if status == 200:
                return 0
            if status != 404:
                print(f"unhealthy: {url} answered {status}", file=sys.stderr)
                return 1
        print(f"unhealthy: {urls[-1]} answered 404", file=sys.stderr)
    except (OSError, KeyError, ValueError, tomllib.TOMLDecodeError) as exc:
        print(f"unhealthy: {exc}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
