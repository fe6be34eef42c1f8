#!/usr/bin/env bash
# A throwaway PostgreSQL for the leaderboard's tests, from Debian's postgresql package: installs it (apt, as root) if
# missing, creates and starts a cluster "bench" on port $BENCH_PG_PORT (default 54329, loopback only), a login role
# with CREATEDB (the tests create and drop their own database) and a database, and prints the URL on stdout:
#   export BENCH_TEST_POSTGRES_URL="$(.ci/postgres.sh)"
# Idempotent: a second run reuses the cluster. Stop it with: pg_ctlcluster <version> bench stop
set -euo pipefail
PORT="${BENCH_PG_PORT:-54329}"
ROLE=bench
PASSWORD=bench
DB=bench_test
CLUSTER=bench
log() { echo "postgres.sh: $*" >&2; }

if ! command -v pg_createcluster >/dev/null 2>&1; then
    log "installing Debian's postgresql"
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
fi
VERSION="$(ls /usr/lib/postgresql | sort -V | tail -n 1)"
if ! pg_lsclusters -h | awk '{print $1 "/" $2}' | grep -qx "$VERSION/$CLUSTER"; then
    log "creating cluster $VERSION/$CLUSTER on port $PORT"
    pg_createcluster --port "$PORT" "$VERSION" "$CLUSTER" -- --auth-local=peer --auth-host=scram-sha-256 >&2
fi
if ! pg_lsclusters -h | awk -v v="$VERSION" -v c="$CLUSTER" '$1 == v && $2 == c {print $4}' | grep -qx online; then
    log "starting cluster $VERSION/$CLUSTER"
    # Without systemd (containers, CI) pg_ctlcluster runs pg_ctl as the postgres user itself.
    pg_ctlcluster "$VERSION" "$CLUSTER" start -o "-c listen_addresses=127.0.0.1" >&2
fi
for _ in $(seq 1 60); do
    if su postgres -c "pg_isready -q -h 127.0.0.1 -p $PORT"; then break; fi
    sleep 0.5
done
su postgres -c "pg_isready -h 127.0.0.1 -p $PORT" >&2
psql_admin() { su postgres -c "psql -v ON_ERROR_STOP=1 -q -p $PORT -tAc \"$1\""; }
if [ "$(psql_admin "SELECT 1 FROM pg_roles WHERE rolname = '$ROLE'")" != "1" ]; then
    psql_admin "CREATE ROLE $ROLE LOGIN CREATEDB PASSWORD '$PASSWORD'" >&2
fi
if [ "$(psql_admin "SELECT 1 FROM pg_database WHERE datname = '$DB'")" != "1" ]; then
    psql_admin "CREATE DATABASE $DB OWNER $ROLE" >&2
fi
echo "postgresql://$ROLE:$PASSWORD@127.0.0.1:$PORT/$DB"
