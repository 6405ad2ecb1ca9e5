#!/usr/bin/env bash
# Make sure the services the tests need are installed and running: PostgreSQL on 127.0.0.1:5432
# reachable as `postgres` without a password, with a database `test`.
set -euo pipefail

PGHOST=127.0.0.1
PGPORT=5432

have() { command -v "$1" >/dev/null 2>&1; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

pg_up() { have pg_isready && pg_isready -q -h "$PGHOST" -p "$PGPORT"; }

if ! pg_up; then
  if ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
    echo "services: installing PostgreSQL"
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq postgresql >/dev/null
  fi
  version=$(ls /etc/postgresql | sort -V | tail -n 1)
  if [ -z "$version" ]; then
    version=$(ls /usr/lib/postgresql | sort -V | tail -n 1)
    as_root pg_createcluster "$version" main
  fi
  hba=/etc/postgresql/$version/main/pg_hba.conf
  # Local test server: trust connections from this machine only.
  if ! grep -q '^host all all 127.0.0.1/32 trust' "$hba"; then
    as_root sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust\nlocal all all trust' "$hba"
  fi
  echo "services: starting PostgreSQL $version"
  as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  for _ in $(seq 1 60); do pg_up && break; sleep 0.5; done
  pg_up || { echo "services: PostgreSQL did not start" >&2; exit 1; }
  as_root pg_ctlcluster --skip-systemctl-redirect "$version" main reload >/dev/null 2>&1 || true
fi

if ! psql -h "$PGHOST" -p "$PGPORT" -U postgres -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname='test'" | grep -q 1; then
  psql -h "$PGHOST" -p "$PGPORT" -U postgres -d postgres -qc "CREATE DATABASE test"
fi
echo "services: PostgreSQL ready on $PGHOST:$PGPORT"

# Redis on 127.0.0.1:6379 (the Celery executor's default broker and its report store).
redis_up() { have redis-cli && redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG; }
if ! redis_up; then
  if ! have redis-server; then
    echo "services: installing Redis"
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq redis-server >/dev/null
  fi
  echo "services: starting Redis"
  as_root mkdir -p /var/lib/redis /var/log/redis
  as_root redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" \
    --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log
  for _ in $(seq 1 50); do redis_up && break; sleep 0.1; done
  redis_up || { echo "services: Redis did not start" >&2; exit 1; }
fi
echo "services: Redis ready on 127.0.0.1:6379"

# RabbitMQ on 127.0.0.1:5672, guest/guest (one Celery test runs through it).
amqp_up() { (exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null; }
if ! amqp_up; then
  if ! have rabbitmq-server; then
    echo "services: installing RabbitMQ"
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq rabbitmq-server >/dev/null
  fi
  echo "services: starting RabbitMQ"
  as_root rabbitmq-server -detached || true
  for _ in $(seq 1 120); do amqp_up && break; sleep 0.5; done
  amqp_up || { echo "services: RabbitMQ did not start" >&2; exit 1; }
fi
echo "services: RabbitMQ ready on 127.0.0.1:5672"

# bubblewrap and useradd: the local executor's sandbox and the user it runs jobs as.
if ! have bwrap; then
  echo "services: installing bubblewrap"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq bubblewrap >/dev/null
fi
if ! have useradd && [ ! -x /usr/sbin/useradd ]; then
  echo "services: installing passwd (useradd)"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq passwd >/dev/null
fi
echo "services: bubblewrap $(bwrap --version | cut -d' ' -f2) ready"

# A one-node Slurm cluster (the Slurm executor's and the TSM face's tests).
bash "$(dirname "$0")/slurm.sh" >/dev/null
echo "services: Slurm ready (SLURM_CONF=${GNOMON_SLURM_DIR:-/tmp/gnomon-slurm}/slurm.conf)"
