# shellcheck shell=bash
# Sourced by .ci/run before the go test steps: makes sure ZOF_TEST_POSTGRES_URL
# names a PostgreSQL the store tests can use. When it is already set, it is left
# alone. Otherwise a throwaway server is started: Debian's postgresql package is
# installed if initdb/pg_ctl are missing, a cluster is initialised in a
# temporary directory as the unprivileged postgres user, started on 127.0.0.1 on
# a free port with its socket in that directory, and stopped (the directory
# removed) when the sourcing shell exits. It also exports ZOF_TEST_PG_BIN and
# ZOF_TEST_PG_USER (initdb/pg_ctl and the user to run them as), with which the
# database restart script starts a server of its own to stop and start.
#
# Tests that need PostgreSQL fail (not skip) when the variable is missing and
# CI or ZOF_REQUIRE_POSTGRES is set; this script sets the latter, so a server
# that could not start fails the tests instead of skipping them.
export ZOF_REQUIRE_POSTGRES=1

zof_pg_bindir() {
  local d
  if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
    dirname "$(readlink -f "$(command -v pg_ctl)")"
    return 0
  fi
  for d in /usr/lib/postgresql/*/bin; do
    if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && [ -x "$d/createdb" ]; then
      echo "$d"
      return 0
    fi
  done
  return 1
}

zof_pg_start() {
  local bindir pgdir port started_at user
  started_at=$(date +%s.%N)
  if ! bindir=$(zof_pg_bindir); then
    echo "== installing PostgreSQL (Debian's postgresql package) for the store tests"
    if command -v apt-get >/dev/null 2>&1; then
      (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql) >/dev/null 2>&1 || true
    fi
    if ! bindir=$(zof_pg_bindir); then
      echo "error: PostgreSQL could not be installed (apt-get install postgresql); the PostgreSQL store tests will fail" >&2
      return 0
    fi
  fi

  # initdb refuses to run as root: use the package's postgres user, or make one.
  user=$(id -un)
  if [ "$(id -u)" = 0 ]; then
    user=postgres
    if ! id "$user" >/dev/null 2>&1; then
      useradd --system --no-create-home --shell /usr/sbin/nologin "$user" >/dev/null 2>&1 || true
    fi
  fi
  zof_pg_as() {
    if [ "$(id -un)" = "$user" ]; then "$@"; else runuser -u "$user" -- "$@"; fi
  }

  pgdir=$(mktemp -d /tmp/zof-pg.XXXXXX)
  chown "$user" "$pgdir" 2>/dev/null || true
  chmod 700 "$pgdir"
  # A free port: bind port 0 and read what the kernel chose.
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' 2>/dev/null \
    || echo $((20000 + RANDOM % 20000)))

  ZOF_PG_DIR=$pgdir
  ZOF_PG_BIN=$bindir
  ZOF_PG_USER=$user
  # What a test needs to run a PostgreSQL of its own that it may stop and start
  # (the database restart script, internal/cli/pgcluster_test.go): restarting
  # this shared server would break the tests using it at the same time.
  export ZOF_TEST_PG_BIN=$bindir ZOF_TEST_PG_USER=$user
  if ! zof_pg_as "$bindir/initdb" -D "$pgdir/data" -U zof --auth=trust -E UTF8 --no-sync >"$pgdir/initdb.log" 2>&1; then
    echo "error: initdb failed; the PostgreSQL store tests will fail:" >&2
    cat "$pgdir/initdb.log" >&2
    return 0
  fi
  if ! zof_pg_as "$bindir/pg_ctl" -D "$pgdir/data" -l "$pgdir/server.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $pgdir -c fsync=off -c max_connections=200" start >/dev/null 2>&1; then
    echo "error: PostgreSQL did not start; the PostgreSQL store tests will fail:" >&2
    cat "$pgdir/server.log" >&2
    return 0
  fi
  if ! zof_pg_as "$bindir/createdb" -h 127.0.0.1 -p "$port" -U zof zof_test; then
    echo "error: createdb failed; the PostgreSQL store tests will fail" >&2
    return 0
  fi
  export ZOF_TEST_POSTGRES_URL="postgres://zof@127.0.0.1:$port/zof_test?sslmode=disable"
  echo "PostgreSQL $("$bindir/pg_ctl" --version | awk '{print $3}') on 127.0.0.1:$port (started in $(awk -v a="$started_at" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}') s)"
}

zof_pg_stop() {
  if [ -n "${ZOF_PG_DIR:-}" ]; then
    if [ -f "$ZOF_PG_DIR/data/postmaster.pid" ]; then
      runuser -u "$ZOF_PG_USER" -- "$ZOF_PG_BIN/pg_ctl" -D "$ZOF_PG_DIR/data" -m immediate -w stop >/dev/null 2>&1 \
        || "$ZOF_PG_BIN/pg_ctl" -D "$ZOF_PG_DIR/data" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    rm -rf "$ZOF_PG_DIR"
  fi
}

# zof_pg_trap_cmd prints the command of a `trap -p` line's arguments.
zof_pg_trap_cmd() { printf '%s' "${2:-}"; }

if [ -z "${ZOF_TEST_POSTGRES_URL:-}" ]; then
  echo "== PostgreSQL for the store tests (ZOF_TEST_POSTGRES_URL not set: starting one)"
  # Keep whatever EXIT trap the caller set (.ci/run removes its build dir) and
  # stop the server first.
  zof_pg_prev_trap=$(trap -p EXIT)
  zof_pg_prev_trap=${zof_pg_prev_trap#trap }
  zof_pg_prev_trap=$(eval "zof_pg_trap_cmd $zof_pg_prev_trap")
  # shellcheck disable=SC2064 # expand the previous command now
  trap "zof_pg_stop; $zof_pg_prev_trap" EXIT
  zof_pg_start
fi
