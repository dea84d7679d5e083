#!/usr/bin/env bash
# Start the local Redis and PostgreSQL the tests (and a scaled-out setup) talk to, when absent.
# Idempotent: services already answering are left alone.
set -uo pipefail

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

apt_install() {
  [ -n "${MINER_APT_UPDATED:-}" ] || { as_root apt-get update -qq; export MINER_APT_UPDATED=1; }
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

redis_up() { redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG; }
postgres_up() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }

if ! redis_up; then
  command -v redis-server >/dev/null || apt_install redis-server
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
  for _ in $(seq 50); do redis_up && break; sleep 0.2; done
fi
redis_up || { echo "services: Redis on 127.0.0.1:6379 did not start" >&2; exit 1; }

if ! postgres_up; then
  if ! command -v pg_ctlcluster >/dev/null; then
    apt_install postgresql
  fi
  version=$(ls /etc/postgresql | sort -V | tail -n 1)
  conf=/etc/postgresql/$version/main
  # The tests connect over TCP as postgres without a password, as on the development machines.
  if ! grep -q "mlflow-miner trust" "$conf/pg_hba.conf" 2>/dev/null; then
    { echo "host all all 127.0.0.1/32 trust # mlflow-miner trust"; echo "host all all ::1/128 trust # mlflow-miner trust"; cat "$conf/pg_hba.conf"; } > /tmp/pg_hba.conf.new
    as_root cp /tmp/pg_hba.conf.new "$conf/pg_hba.conf"
  fi
  as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  for _ in $(seq 50); do postgres_up && break; sleep 0.2; done
fi
postgres_up || { echo "services: PostgreSQL on 127.0.0.1:5432 did not start" >&2; exit 1; }
psql -h 127.0.0.1 -U postgres -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname='test'" | grep -q 1 \
  || psql -h 127.0.0.1 -U postgres -d postgres -c "CREATE DATABASE test" >/dev/null
echo "services: Redis and PostgreSQL are up"

# The confinement test traces mining's file writes with strace; the restart tests run private
# PostgreSQL clusters as the postgres user (runuser, from util-linux).
command -v strace >/dev/null || apt_install strace
command -v strace >/dev/null || { echo "services: strace could not be installed" >&2; exit 1; }

# The dashboard test drives Debian's chromium headless (never a downloaded browser build).
command -v chromium >/dev/null || apt_install chromium
command -v chromium >/dev/null || { echo "services: chromium could not be installed" >&2; exit 1; }
