#!/usr/bin/env bash
# pool-reaper's Redis ACL user: only the commands the teardown sends (src/teardown/redis.ts),
# only on the pool's keys. Run once per Redis cluster as an admin:
#
#   REDIS_ADMIN_URL=redis://default:...@redis:6379 \
#   REAPER_REDIS_PASSWORD_FILE=/run/secrets/reaper-redis-password \
#     deploy/redis/reaper-acl.sh [user]            # user: pool-reaper by default
#
# then REDIS_URL=redis://pool-reaper:<password>@redis:6379 for the worker. With ACL files
# (aclfile in redis.conf), the script also runs ACL SAVE so the user survives a restart.
#
#   ~pool-*            the keys of pool items: every key is <pool token>:..., tokens are pool-<uuid>
#   +scan +unlink      find the item's keys, free them without blocking the server
#   +acl|getuser       read the item's user (its key patterns decide whether a legacy alias is its own)
#   +acl|deluser       delete the item's user; Redis closes that user's connections itself.
#                      Redis cannot limit which user: the reaper's name guard
#                      (src/teardown/drop-guard.ts) deletes only usr_<token> users.
#   +client|setname +info +ping +hello +auth +select   what the client library sends to connect
#   resetchannels      no pub/sub
set -euo pipefail
user="${1:-pool-reaper}"
admin_url="${REDIS_ADMIN_URL:-redis://127.0.0.1:6379}"
if [ -n "${REAPER_REDIS_PASSWORD_FILE:-}" ]; then
  password="$(cat "$REAPER_REDIS_PASSWORD_FILE")"
elif [ -n "${REAPER_REDIS_PASSWORD:-}" ]; then
  password="$REAPER_REDIS_PASSWORD"
else
  echo "reaper-acl.sh: set REAPER_REDIS_PASSWORD_FILE (or REAPER_REDIS_PASSWORD)" >&2
  exit 2
fi
# The password goes in as a SHA-256 (#<hex>), so it is on no command line and in no ACL LIST.
hash="$(printf '%s' "$password" | sha256sum | cut -d' ' -f1)"
cli() { redis-cli -u "$admin_url" --no-auth-warning "$@"; }
cli ACL SETUSER "$user" reset on "#$hash" '~pool-*' resetchannels -@all \
  +scan +unlink '+acl|getuser' '+acl|deluser' '+client|setname' +info +ping +hello +auth +select >/dev/null
# ACL SAVE fails without an aclfile: nothing to persist then (the user lives until a restart).
cli ACL SAVE >/dev/null 2>&1 || true
cli ACL GETUSER "$user" | tr '\n' ' ' | sed 's/$/\n/'
