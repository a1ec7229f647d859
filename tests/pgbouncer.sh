# A throwaway PgBouncer in transaction mode in front of the throwaway PostgreSQL
# server of tests/pg.sh (source both, call pg_start, then pgbouncer_start).
# Exports:
#   TASKER_BOUNCER_PORT    where PgBouncer listens (127.0.0.1)
#   TASKER_BOUNCER_URI     postgresql://postgres@127.0.0.1:PORT/postgres?pooler=transaction
#   TASKER_BOUNCER_DIR     its config, log and pid file
# Knobs: BOUNCER_POOL_SIZE (server connections, default 10), BOUNCER_MAX_CLIENTS
# (default 2000).

pgbouncer_start() {
    command -v pgbouncer >/dev/null || [ -x /usr/sbin/pgbouncer ] \
        || { echo "pgbouncer.sh: no pgbouncer (apt-get install pgbouncer)" >&2; return 1; }
    local bin
    bin="$(command -v pgbouncer || echo /usr/sbin/pgbouncer)"
    [ -n "${PGPORT:-}" ] || { echo "pgbouncer.sh: start PostgreSQL first (pg_start)" >&2; return 1; }
    BOUNCER_TMP="$(mktemp -d /tmp/tasker-pgbouncer.XXXXXX)"
    chmod 755 "$BOUNCER_TMP"
    export TASKER_BOUNCER_PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
    cat > "$BOUNCER_TMP/pgbouncer.ini" <<EOF2
[databases]
postgres = host=127.0.0.1 port=$PGPORT dbname=postgres user=postgres

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $TASKER_BOUNCER_PORT
unix_socket_dir =
auth_type = trust
auth_file = $BOUNCER_TMP/users.txt
pool_mode = transaction
default_pool_size = ${BOUNCER_POOL_SIZE:-10}
max_client_conn = ${BOUNCER_MAX_CLIENTS:-2000}
server_tls_sslmode = disable
logfile = $BOUNCER_TMP/pgbouncer.log
pidfile = $BOUNCER_TMP/pgbouncer.pid
admin_users = postgres
EOF2
    echo '"postgres" ""' > "$BOUNCER_TMP/users.txt"
    local as=()
    if [ "$(id -u)" = 0 ]; then                 # pgbouncer refuses to run as root
        chown -R postgres: "$BOUNCER_TMP"
        as=(runuser -u postgres --)
    fi
    # One descriptor per client and per server connection.
    (ulimit -n 8192 2>/dev/null; cd "$BOUNCER_TMP" && "${as[@]}" "$bin" -d "$BOUNCER_TMP/pgbouncer.ini") \
        || { cat "$BOUNCER_TMP/pgbouncer.log" >&2; return 1; }
    for _ in $(seq 1 100); do
        python3 -c "import socket,sys; socket.create_connection(('127.0.0.1', $TASKER_BOUNCER_PORT), 1)" 2>/dev/null && break
        sleep 0.05
    done
    export TASKER_BOUNCER_URI="postgresql://postgres@127.0.0.1:$TASKER_BOUNCER_PORT/postgres?pooler=transaction"
    export TASKER_BOUNCER_DIR="$BOUNCER_TMP"
}

pgbouncer_stop() {
    [ -n "${BOUNCER_TMP:-}" ] && [ -d "$BOUNCER_TMP" ] || return 0
    [ -f "$BOUNCER_TMP/pgbouncer.pid" ] && kill "$(cat "$BOUNCER_TMP/pgbouncer.pid")" 2>/dev/null
    sleep 0.2
    rm -rf "$BOUNCER_TMP"; BOUNCER_TMP=
}
