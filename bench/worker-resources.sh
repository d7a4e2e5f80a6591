#!/usr/bin/env bash
# Peak RSS and CPU of `pool-reaper worker` while one pass reaps 150 Postgres + 50 Redis items
# (the resource requests in deploy/kubernetes). Needs `npm run build`, the local Postgres and
# Redis, and the Temporal CLI. Run under `flock /work/.locks/bench bench/worker-resources.sh`.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/usr/local/go/bin:/root/go/bin:$PATH
TPORT=17733
"${TEMPORAL_CLI_PATH:-temporal}" server start-dev --headless --port $TPORT --ui-port 0 --log-level error \
  --search-attribute ReapedPoolTokens=KeywordList >/tmp/pool-reaper-resources-tsrv.log 2>&1 &
TPID=$!
TAG=e19$(openssl rand -hex 4)
export POOL_TOKEN_TAG=$TAG
cleanup() {
  kill $WPID 2>/dev/null || true; kill $TPID 2>/dev/null || true
  for d in $(psql -h 127.0.0.1 -U postgres -Atc "select datname from pg_database where datname like 'db\_pool-%$TAG'"); do psql -h 127.0.0.1 -U postgres -qc "drop database if exists \"$d\" with (force)"; done
  for r in $(psql -h 127.0.0.1 -U postgres -Atc "select rolname from pg_roles where rolname like 'usr\_pool-%$TAG'"); do psql -h 127.0.0.1 -U postgres -qc "drop role if exists \"$r\""; done
  redis-cli --scan --pattern "pool-*$TAG:*" | xargs -r redis-cli unlink >/dev/null
  for u in $(redis-cli acl users | grep "$TAG"); do redis-cli acl deluser "$u" >/dev/null; done
  psql -h 127.0.0.1 -U postgres -qc "drop database if exists $DB with (force)"
}
WPID=0
trap cleanup EXIT
sleep 6
DB=prt_measure_$$
export DB
export TEMPORAL_ADDRESS=127.0.0.1:$TPORT PROVISIONER_DATABASE_URL=postgres://postgres@127.0.0.1:5432/$DB \
  TEMPORAL_TASK_QUEUE=measure-$$ REAPER_WORKFLOW_ID=measure-$$ METRICS_PORT=19464 REAPER_TICK=1h LOG_LEVEL=warn REAPER_BATCH_LIMIT=200
node dist/src/cli.js migrate --create-database
node dist/src/cli.js seed -t postgres -n 150 -s failed -a 1h >/dev/null
node dist/src/cli.js seed -t redis -n 50 -s failed -a 1h >/dev/null
node dist/src/cli.js worker >/tmp/pool-reaper-resources-measure-worker.log 2>&1 &
WPID=$!
for _ in $(seq 1 60); do node dist/src/cli.js status >/dev/null 2>&1 && break; sleep 1; done
sleep 3
idle=$(grep VmRSS /proc/$WPID/status)
c0=$(awk '{print $14+$15}' /proc/$WPID/stat)
t0=$(date +%s.%N)
node dist/src/cli.js reap-now --wait --json > /tmp/pool-reaper-resources-measure-summary.json || true
t1=$(date +%s.%N)
c1=$(awk '{print $14+$15}' /proc/$WPID/stat)
hz=$(getconf CLK_TCK)
echo "idle: $idle"
grep -E "VmHWM|VmRSS" /proc/$WPID/status
python3 -c "import json;s=json.load(open('/tmp/pool-reaper-resources-measure-summary.json'));print('reaped',s.get('reaped'),'listed',s.get('listed'))"
echo "worker CPU seconds during the pass: $(echo "($c1-$c0)/$hz" | bc -l | cut -c1-5) over $(echo "$t1-$t0" | bc -l | cut -c1-5) s wall"
