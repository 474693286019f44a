#!/usr/bin/env bash
# A private PostgreSQL for the tests: its own directory and port on 127.0.0.1,
# never the system's cluster.
#
#   tests/pg/pg.sh start DIR [PORT]   initdb (first time) + start; prints the URL
#   tests/pg/pg.sh stop DIR           fast shutdown (the directory stays)
#   tests/pg/pg.sh url DIR            the URL of a started cluster
#   tests/pg/pg.sh conninfo DIR       the same as libpq key=value, without dbname
#
# PostgreSQL refuses to run as root: as root (CI) every server command runs as
# the `postgres` user (DIR is chown'd to it); as anyone else, as that user.
# Password login (scram) for user scribed / password scribed, database scribed;
# the superuser `postgres` logs in over the socket in DIR only.
set -euo pipefail
cmd=${1:?usage: pg.sh start|stop|url DIR [PORT]}
dir=${2:?usage: pg.sh start|stop|url DIR [PORT]}
port=${3:-}
bin=${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)}
[ -x "$bin/initdb" ] || { echo "pg.sh: no PostgreSQL server binaries (apt install postgresql)" >&2; exit 1; }

as_owner() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

free_port() {
    /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

case $cmd in
start)
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    [ "$(id -u)" = 0 ] && chown postgres: "$dir" && chmod 700 "$dir"
    if [ ! -f "$dir/data/PG_VERSION" ]; then
        as_owner "$bin/initdb" -D "$dir/data" -U postgres -A trust --no-sync >"$dir/initdb.log" 2>&1 \
            || { cat "$dir/initdb.log" >&2; exit 1; }
        # TCP logins need a password; the socket (in DIR, mode 700) is the superuser's
        as_owner tee "$dir/data/pg_hba.conf" >/dev/null <<HBA
local all all trust
host all all 127.0.0.1/32 scram-sha-256
HBA
    fi
    port=${port:-$(free_port)}
    as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start \
        -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off -c max_connections=200" >/dev/null \
        || { cat "$dir/server.log" >&2; exit 1; }
    echo "$port" | as_owner tee "$dir/port" >/dev/null
    psql_() { as_owner psql -h "$dir" -p "$port" -U postgres -d postgres -qAtX -v ON_ERROR_STOP=1 "$@"; }
    if [ "$(psql_ -c "SELECT 1 FROM pg_roles WHERE rolname = 'scribed'")" != 1 ]; then
        psql_ -c "CREATE ROLE scribed LOGIN PASSWORD 'scribed' CREATEDB"
        psql_ -c "CREATE DATABASE scribed OWNER scribed"
    fi
    echo "postgres://scribed:scribed@127.0.0.1:$port/scribed"
    ;;
stop)
    [ -f "$dir/data/postmaster.pid" ] || exit 0
    as_owner "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null
    ;;
url)
    echo "postgres://scribed:scribed@127.0.0.1:$(cat "$dir/port")/scribed"
    ;;
conninfo)
    echo "host=127.0.0.1 port=$(cat "$dir/port") user=scribed password=scribed"
    ;;
*)
    echo "pg.sh: unknown command $cmd" >&2; exit 2 ;;
esac
