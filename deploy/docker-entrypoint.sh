#!/bin/sh
# Entrypoint of the Commons Node image. Called as: docker-entrypoint.sh commons-node ARGS...
#
# Before `commons-node serve` (the default command), and only then:
#   1. If DATA/config.toml is missing and COMMONS_INIT_* variables are set, create
#      the node with `commons-node init`:
#        COMMONS_INIT_NAME, COMMONS_INIT_SLUG, COMMONS_INIT_BASE_URL,
#        COMMONS_INIT_STEWARD, COMMONS_INIT_PASSWORD (or COMMONS_INIT_PASSWORD_FILE,
#        e.g. a Docker secret) are required; COMMONS_INIT_LOCATION ("LAT,LON"),
#        COMMONS_INIT_DESCRIPTION and COMMONS_INIT_ALLOW_PRIVATE_ADDRESSES
#        (1/true/yes/on; development and demos only) are optional.
#      With neither, it stops with an explanation instead of serving nothing.
#   2. Run `commons-node migrate --data DATA` (set COMMONS_MIGRATE_ON_START=0 when
#      several containers share one PostgreSQL database and one of them, or a
#      one-off `docker run ... migrate --data /data`, does the migrating).
# Then it execs the command, so the node is PID 1 and receives SIGTERM itself.
#
# COMMONS_DATABASE_URL (read by commons-node itself) moves the database to
# PostgreSQL: postgresql+asyncpg://user:password@host:5432/dbname
set -eu

log() { printf 'docker-entrypoint: %s\n' "$*" >&2; }
die() {
    log "error: $*"
    exit 1
}
truthy() {
    case "$(printf '%s' "${1:-}" | tr '[:upper:]' '[:lower:]')" in
        1 | true | yes | on) return 0 ;;
        *) return 1 ;;
    esac
}

[ $# -gt 0 ] || die "no command given"

# Find the subcommand and --data in `commons-node [--log-level L] SUBCOMMAND ...`.
subcommand=""
data_dir="${COMMONS_DATA:-/data}"
if [ "$(basename -- "$1")" = "commons-node" ]; then
    expect=""
    first=1
    for arg in "$@"; do
        if [ "$first" = 1 ]; then
            first=0
            continue
        fi
        case "$expect" in
            data)
                data_dir=$arg
                expect=""
                continue
                ;;
            value)
                expect=""
                continue
                ;;
        esac
        case "$arg" in
            --data) expect=data ;;
            --data=*) data_dir=${arg#--data=} ;;
            --log-level) [ -n "$subcommand" ] || expect=value ;;
            -*) ;;
            *) [ -n "$subcommand" ] || subcommand=$arg ;;
        esac
    done
fi
commons_node=$1

init_node() {
    missing=""
    for name in NAME SLUG BASE_URL STEWARD; do
        eval "value=\${COMMONS_INIT_$name:-}"
        [ -n "$value" ] || missing="$missing COMMONS_INIT_$name"
    done
    password="${COMMONS_INIT_PASSWORD:-}"
    if [ -z "$password" ] && [ -n "${COMMONS_INIT_PASSWORD_FILE:-}" ]; then
        [ -r "$COMMONS_INIT_PASSWORD_FILE" ] || die "cannot read COMMONS_INIT_PASSWORD_FILE=$COMMONS_INIT_PASSWORD_FILE"
        password=$(cat "$COMMONS_INIT_PASSWORD_FILE")
    fi
    [ -n "$password" ] || missing="$missing COMMONS_INIT_PASSWORD"
    [ -z "$missing" ] || die "$data_dir holds no node yet and these are needed to create one:$missing"

    set -- init --data "$data_dir" \
        --name "$COMMONS_INIT_NAME" \
        --slug "$COMMONS_INIT_SLUG" \
        --base-url "$COMMONS_INIT_BASE_URL" \
        --steward "$COMMONS_INIT_STEWARD" \
        --password "$password"
    if [ -n "${COMMONS_INIT_LOCATION:-}" ]; then
        set -- "$@" --location "$COMMONS_INIT_LOCATION"
    fi
    if [ -n "${COMMONS_INIT_DESCRIPTION:-}" ]; then
        set -- "$@" --description "$COMMONS_INIT_DESCRIPTION"
    fi
    if truthy "${COMMONS_INIT_ALLOW_PRIVATE_ADDRESSES:-}"; then
        log "warning: allowing private addresses (development and demos only)"
        set -- "$@" --allow-private-addresses
    fi
    log "creating the node $COMMONS_INIT_SLUG at $COMMONS_INIT_BASE_URL in $data_dir"
    "$commons_node" "$@"
}

# Refuse to let `migrate` turn a missing or empty SQLite file into a new, empty
# node next to a config.toml whose node lives elsewhere (typically: the database
# is in PostgreSQL and COMMONS_DATABASE_URL was forgotten, or a restore is half done).
check_sqlite_database() {
    [ -z "${COMMONS_DATABASE_URL:-}" ] || return 0
    problem=$(python3 - "$data_dir/config.toml" <<'EOF'
import sqlite3, sys, tomllib
from pathlib import Path
from sqlalchemy.engine import make_url

with open(sys.argv[1], "rb") as f:
    url = make_url(str(tomllib.load(f).get("database_url", "")))
if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
    path = Path(url.database)
    if not path.exists():
        print(f"config.toml names the SQLite database {path}, which does not exist.")
    else:
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        found = db.execute("SELECT 1 FROM sqlite_master WHERE name = 'alembic_version'")
        if found.fetchone() is None:
            print(f"the SQLite database {path} is empty: no node was ever created in it.")
        db.close()
EOF
    ) || die "cannot check the database named in $data_dir/config.toml"
    if [ -n "$problem" ]; then
        die "$problem If this node's database is in PostgreSQL, set COMMONS_DATABASE_URL;" \
            "if you are restoring, put the backup in place first. Not creating an empty node."
    fi
}

if [ "$subcommand" = "serve" ]; then
    if [ ! -f "$data_dir/config.toml" ]; then
        if env | grep -q '^COMMONS_INIT_'; then
            init_node
        else
            die "$data_dir holds no node (no config.toml). Set COMMONS_INIT_NAME, COMMONS_INIT_SLUG," \
                "COMMONS_INIT_BASE_URL, COMMONS_INIT_STEWARD and COMMONS_INIT_PASSWORD to create one" \
                "on first start, or run the image with: init --data $data_dir ... (see deploy/README.md)"
        fi
    elif env | grep -q '^COMMONS_INIT_'; then
        log "$data_dir/config.toml exists: COMMONS_INIT_* ignored"
    fi
    unset COMMONS_INIT_PASSWORD

    if truthy "${COMMONS_MIGRATE_ON_START:-1}"; then
        check_sqlite_database
        "$commons_node" migrate --data "$data_dir"
    else
        log "COMMONS_MIGRATE_ON_START is off: not migrating (serve refuses an out-of-date schema)"
    fi
fi

exec "$@"
