#!/bin/bash
# The official redis image's entrypoint contract: options alone (or a .conf first) mean redis-server; the server runs
# as the redis user and owns /data; protected mode is off unless the command line turns it on.
set -Eeuo pipefail
if [ "${1:0:1}" = '-' ] || [ "${1%.conf}" != "$1" ]; then set -- redis-server "$@"; fi
if [ "$1" = redis-server ]; then
  shift
  set -- redis-server --protected-mode no "$@"
  if [ "$(id -u)" = 0 ]; then
    chown -R redis:redis /data 2>/dev/null || true
    exec setpriv --reuid=redis --regid=redis --init-groups "$@"
  fi
fi
exec "$@"
