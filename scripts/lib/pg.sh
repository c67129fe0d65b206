# A throwaway PostgreSQL cluster from Debian's packages: initdb in a temp dir as user
# postgres, unix socket only (no TCP port at all), trust auth for the local socket.
# Sourced by scripts/test and scripts/bench-server.
#
#   pg_cluster_start  sets $pgdata, $pgsock, $pgbin; stop with pg_cluster_stop.

pgbin="/usr/lib/postgresql/$(ls /usr/lib/postgresql 2>/dev/null | sort -V | tail -1)/bin"
pgroot=""
pgdata=""
pgsock=""

as_postgres() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

pg_cluster_start() {
  pgroot="$(mktemp -d -t creditbar-pg.XXXXXX)"
  chmod 755 "$pgroot"
  [ "$(id -u)" -ne 0 ] || chown postgres "$pgroot"
  pgdata="$pgroot/data"
  pgsock="$pgroot"
  as_postgres "$pgbin/initdb" -D "$pgdata" -U postgres --auth=trust -E UTF8 --no-locale >/dev/null
  as_postgres "$pgbin/pg_ctl" -D "$pgdata" -l "$pgroot/log" -w \
    -o "-c listen_addresses='' -c unix_socket_directories=$pgsock -c max_connections=400 -c fsync=on" \
    start >/dev/null
}

pg_cluster_stop() {
  if [ -n "$pgdata" ] && [ -f "$pgdata/postmaster.pid" ]; then
    as_postgres "$pgbin/pg_ctl" -D "$pgdata" -m immediate stop >/dev/null 2>&1 || true
  fi
  [ -z "$pgroot" ] || rm -rf "$pgroot"
  pgroot=""
  pgdata=""
}
