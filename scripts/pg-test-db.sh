#!/usr/bin/env bash
# Makes sure a PostgreSQL server answers on 127.0.0.1:5432 with a superuser role
# livetape/livetape (starting Debian's cluster if needed), then prints the admin URL the
# catalogue tests take in TEST_DATABASE_URL. Each test creates and drops its own database.
set -euo pipefail
host=127.0.0.1 port=5432 role=livetape
url="postgres://$role:$role@$host:$port/postgres"

ready() { pg_isready -q -h "$host" -p "$port" 2>/dev/null; }

if ! ready; then
  if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
    # The newest installed cluster (Debian 12: 15/main).
    version=$(ls /etc/postgresql | sort -n | tail -1)
    pg_ctlcluster "$version" main start >&2 || service postgresql start >&2
  else
    service postgresql start >&2
  fi
  for _ in $(seq 1 50); do ready && break; sleep 0.2; done
  ready || { echo "PostgreSQL did not come up on $host:$port" >&2; exit 1; }
fi

# Create the role over the local socket as the postgres OS user, once.
if ! PGPASSWORD=$role PGCONNECT_TIMEOUT=5 psql "$url" -Atqc 'SELECT 1' >/dev/null 2>&1; then
  as_postgres() { if [ "$(id -u)" = 0 ]; then su postgres -c "$1"; else sudo -u postgres sh -c "$1"; fi; }
  as_postgres "psql -v ON_ERROR_STOP=1 -qc \"DO \\\$\\\$ BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$role') THEN
      CREATE ROLE $role LOGIN SUPERUSER PASSWORD '$role';
    ELSE
      ALTER ROLE $role LOGIN SUPERUSER PASSWORD '$role';
    END IF;
  END \\\$\\\$;\"" >&2
  PGCONNECT_TIMEOUT=5 psql "$url" -Atqc 'SELECT 1' >/dev/null \
    || { echo "cannot log in as $role on $host:$port" >&2; exit 1; }
fi
echo "$url"
