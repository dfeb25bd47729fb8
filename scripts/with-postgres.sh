#!/usr/bin/env bash
# Run a command with BORNE_TEST_POSTGRES_URL pointing at a PostgreSQL server the tests may use:
# the one given, or the local one (127.0.0.1:5432, database test), or else a throw-away cluster made
# by pg_virtualenv (Debian package postgresql-common, with postgresql), dropped afterwards.
set -euo pipefail
url=${BORNE_TEST_POSTGRES_URL:-postgresql://postgres@127.0.0.1:5432/test}
if command -v psql >/dev/null 2>&1 && psql "$url" -qtAc 'select 1' >/dev/null 2>&1; then
  export BORNE_TEST_POSTGRES_URL=$url
  exec "$@"
fi
if command -v pg_virtualenv >/dev/null 2>&1; then
  echo "with-postgres: no server at $url; starting a temporary cluster with pg_virtualenv" >&2
  # shellcheck disable=SC2016 # expanded by the inner shell, where pg_virtualenv has set PG*
  exec pg_virtualenv sh -c \
    'export BORNE_TEST_POSTGRES_URL="postgresql://$PGUSER:$PGPASSWORD@$PGHOST:$PGPORT/$PGDATABASE"; exec "$@"' \
    sh "$@"
fi
echo "with-postgres: no PostgreSQL server at $url and no pg_virtualenv;" \
  "install the Debian packages postgresql and postgresql-common (make setup does it as root)" >&2
exit 1
