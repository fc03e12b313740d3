#!/bin/sh
# Stands for the redis image's docker-entrypoint.sh, which runs its arguments. Here REDIS_PORT and
# REDIS_BIND, when set, become redis-server's --port and --bind (compose.host.yml: host network).
set -eu
if [ "${1:-}" = redis-server ]; then
  shift
  set -- redis-server ${REDIS_PORT:+--port "$REDIS_PORT"} ${REDIS_BIND:+--bind "$REDIS_BIND"} "$@"
fi
exec "$@"
