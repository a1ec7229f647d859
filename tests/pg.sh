# A throwaway PostgreSQL server for tests. Source it, then call pg_start:
#
#     source tests/pg.sh && pg_start
#
# It runs initdb in a temporary directory, starts a server on a free port of
# 127.0.0.1 (and on a unix socket in that directory) and exports:
#
#   TASKER_PG_URL          libpq key=value string, user postgres (trusted, no password)
#   TASKER_PG_URI          the same as a postgresql:// URL (for TASKER_DB_URL)
#   TASKER_PG_SOCKET_URL   over the unix socket
#   TASKER_PG_CA           CA certificate (PEM) that signed the server's certificate
#   TASKER_PG_DIR          the temporary directory (server.log is there)
#   PGHOST PGPORT PGUSER PGDATABASE   for psql
#   PG_BIN                 the server's bin directory (pg_ctl, ...)
#
# TLS is on (ssl=on): the server's certificate is for DNS:localhost only, so
# host=localhost passes sslmode=verify-full and host=127.0.0.1 passes only
# verify-ca. User postgres is trusted; every other user must give its password
# (scram-sha-256). pg_stop (also run on EXIT) stops the server and removes the
# directory. Works as root (the server then runs as the postgres system user).
# pg_ctl_as ARGS... runs pg_ctl on this server (e.g. to stop it mid-test); a
# test program can do the same with TASKER_PG_RUNAS, PG_BIN, TASKER_PG_DIR and
# TASKER_PG_OPTS (see the end of pg_start, and core/tests/pg_reconnect.rs).

PG_BIN="${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)}"
PG_AS=()

pg_start() {
    [ -x "$PG_BIN/initdb" ] || { echo "pg.sh: no initdb (apt-get install postgresql)" >&2; return 1; }
    command -v openssl >/dev/null || { echo "pg.sh: no openssl (apt-get install openssl)" >&2; return 1; }
    PG_TMP="$(mktemp -d /tmp/tasker-pg.XXXXXX)"
    chmod 755 "$PG_TMP"
    PG_AS=()
    if [ "$(id -u)" = 0 ]; then            # initdb/postgres refuse to run as root
        id postgres >/dev/null 2>&1 || useradd --system --user-group --no-create-home --shell /usr/sbin/nologin postgres
        chown postgres: "$PG_TMP"
        PG_AS=(runuser -u postgres --)
    fi
    export PGPORT="${PGPORT:-$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}"
    (cd "$PG_TMP" && "${PG_AS[@]}" "$PG_BIN/initdb" -D "$PG_TMP/data" -U postgres --auth=trust -E UTF8 --no-sync -N) \
        >"$PG_TMP/initdb.log" 2>&1 || { cat "$PG_TMP/initdb.log" >&2; return 1; }

    # A CA and a server certificate for localhost, for the TLS tests.
    mkdir -p "$PG_TMP/tls"
    (
        cd "$PG_TMP/tls" &&
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
            -subj "/CN=tasker test CA" -keyout ca.key -out ca.pem \
            -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" &&
        openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
            -subj "/CN=localhost" -keyout server.key -out server.csr &&
        printf 'subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n' > server.ext &&
        openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
            -extfile server.ext -out server.pem &&
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
            -subj "/CN=some other CA" -keyout other-ca.key -out other-ca.pem
    ) >"$PG_TMP/tls.log" 2>&1 || { cat "$PG_TMP/tls.log" >&2; return 1; }
    cp "$PG_TMP/tls/server.pem" "$PG_TMP/tls/server.key" "$PG_TMP/data/"
    chmod 600 "$PG_TMP/data/server.key"
    [ "${#PG_AS[@]}" -gt 0 ] && chown -R postgres: "$PG_TMP/data" "$PG_TMP/tls"
    chmod 644 "$PG_TMP/tls/ca.pem" "$PG_TMP/tls/other-ca.pem"
    cat > "$PG_TMP/data/pg_hba.conf" <<'EOF'
local all postgres trust
host  all postgres 127.0.0.1/32 trust
host  all postgres ::1/128 trust
local all all scram-sha-256
host  all all 127.0.0.1/32 scram-sha-256
host  all all ::1/128 scram-sha-256
EOF

    PG_OPTS="-c listen_addresses=127.0.0.1 -c port=$PGPORT -c unix_socket_directories=$PG_TMP -c fsync=off -c full_page_writes=off -c max_connections=${PG_MAX_CONNECTIONS:-200} -c ssl=on -c ssl_cert_file=server.pem -c ssl_key_file=server.key"
    pg_ctl_as -l "$PG_TMP/server.log" -w -t 60 -o "$PG_OPTS" start >/dev/null \
        || { cat "$PG_TMP/server.log" >&2; return 1; }
    export PGHOST=127.0.0.1 PGUSER=postgres PGDATABASE=postgres
    export TASKER_PG_URL="host=127.0.0.1 port=$PGPORT user=postgres dbname=postgres"
    export TASKER_PG_URI="postgresql://postgres@127.0.0.1:$PGPORT/postgres"
    export TASKER_PG_SOCKET_URL="host=$PG_TMP port=$PGPORT user=postgres dbname=postgres"
    export TASKER_PG_CA="$PG_TMP/tls/ca.pem"
    export TASKER_PG_OTHER_CA="$PG_TMP/tls/other-ca.pem"
    export TASKER_PG_DIR="$PG_TMP"
    # For tests that stop and start the server themselves (outage tests):
    #   [runuser -u $TASKER_PG_RUNAS --] $PG_BIN/pg_ctl -D $TASKER_PG_DIR/data stop -m immediate
    #   [runuser -u $TASKER_PG_RUNAS --] $PG_BIN/pg_ctl -D $TASKER_PG_DIR/data -l $TASKER_PG_DIR/server.log -w -o "$TASKER_PG_OPTS" start
    export TASKER_PG_OPTS="$PG_OPTS"
    export TASKER_PG_RUNAS=""
    [ "${#PG_AS[@]}" -gt 0 ] && TASKER_PG_RUNAS=postgres
    export PG_BIN
    trap pg_stop EXIT
}

# Runs pg_ctl on the throwaway server, as the right user: pg_ctl_as stop -m immediate
pg_ctl_as() {
    (cd "$PG_TMP" && "${PG_AS[@]}" "$PG_BIN/pg_ctl" -D "$PG_TMP/data" "$@")
}

pg_stop() {
    [ -n "${PG_TMP:-}" ] && [ -d "$PG_TMP" ] || return 0
    (cd "$PG_TMP" && "${PG_AS[@]}" "$PG_BIN/pg_ctl" -D "$PG_TMP/data" -m fast -w stop) >/dev/null 2>&1 || true
    rm -rf "$PG_TMP"; PG_TMP=
}
