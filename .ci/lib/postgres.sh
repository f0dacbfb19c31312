# Sourced by the PostgreSQL steps (10-postgres.sh, 11-postgres-tls.sh): a throwaway server in a
# temporary folder on a free loopback port. The caller defines `step`; then
#   pg_setup PREFIX [COMMAND…]  finds the server binaries (installing Debian's postgresql package,
#                               and the packages of the COMMANDs, when any is missing) and sets
#                               PGBIN, AS (the prefix that runs a command as the server's user),
#                               PGTMP (mode 755), PGPORT and PGDATA;
#   pg_initdb                   creates the cluster (trust authentication, superuser postgres);
#   pg_cleanup RC               stops the server, prints the end of its log when RC is not 0,
#                               removes PGTMP and exits with RC (for the step's EXIT trap).

# A free TCP port on the loopback interface.
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Debian keeps the server binaries off PATH, under /usr/lib/postgresql/VERSION/bin.
pg_bin_dir() {
  if command -v initdb >/dev/null && command -v pg_ctl >/dev/null; then
    dirname "$(readlink -f "$(command -v initdb)")"
    return
  fi
  ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1
}

pg_setup() {
  local prefix=$1 tool missing= own_policy=
  local packages=(postgresql)
  shift
  PGBIN=$(pg_bin_dir || true)
  if [ -z "$PGBIN" ] || [ ! -x "$PGBIN/initdb" ]; then
    missing=1
  fi
  for tool in "$@"; do
    command -v "$tool" >/dev/null || missing=1
    # psql comes with the postgresql package; other commands are their own package.
    [ "$tool" = psql ] || packages+=("$tool")
  done
  if [ -n "$missing" ]; then
    step "installing Debian's ${packages[*]} packages"
    # Keep the package from starting a server of its own: the step starts the one it uses.
    if [ ! -e /usr/sbin/policy-rc.d ]; then
      printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && own_policy=1
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${packages[@]}" >/dev/null
    [ -n "$own_policy" ] && rm -f /usr/sbin/policy-rc.d
    PGBIN=$(pg_bin_dir)
  fi
  echo "PostgreSQL binaries: $PGBIN ($("$PGBIN/postgres" --version))"

  # initdb refuses to run as root: run the server as the postgres user then.
  AS=()
  if [ "$(id -u)" = 0 ]; then
    id postgres >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin postgres
    AS=(runuser -u postgres --)
  fi

  PGTMP=$(mktemp -d "/tmp/$prefix.XXXXXX")
  chmod 755 "$PGTMP"
  if [ ${#AS[@]} -gt 0 ]; then
    chown postgres "$PGTMP"
  fi
  PGPORT=$(free_port)
  PGDATA="$PGTMP/data"
}

pg_initdb() {
  "${AS[@]}" "$PGBIN/initdb" -D "$PGDATA" -A trust -U postgres --no-sync >/dev/null
}

pg_cleanup() {
  local rc=$1
  if [ -f "$PGDATA/postmaster.pid" ]; then
    "${AS[@]}" "$PGBIN/pg_ctl" -D "$PGDATA" -m immediate -w stop >/dev/null 2>&1 || true
  fi
  if [ "$rc" != 0 ] && [ -f "$PGTMP/server.log" ]; then
    echo "--- last lines of the PostgreSQL log"
    tail -n 30 "$PGTMP/server.log"
  fi
  rm -rf "$PGTMP"
  exit "$rc"
}
