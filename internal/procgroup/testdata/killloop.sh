#!/bin/sh
# Issue 9 item 2, measured: SIGKILL `zof serve` at a random point inside a 3s run step that
# appends a line, forks a grandchild that appends, both sleep and append again; restart the
# server on the same data; count the kills after which an interrupted attempt still made its
# second append (a side effect twice) and the orphans left. Needs curl and pgrep; Linux.
#   go build -o /tmp/zof ./cmd/zof && sh internal/procgroup/testdata/killloop.sh /tmp/zof 5
# A kill that lands after the step ended (its result not yet stored) re-runs a step that
# completed: that is counted apart ("after the step ended"), it is not an orphan.
ZOF=$1; N=${2:-5}
dup=0; orphans=0; late=0
export ZOF_TOKEN_A=tenant-a-runner-token-0001 ZOF_TOKEN=tenant-a-runner-token-0001
for i in $(seq 1 "$N"); do
  W=$(mktemp -d "${TMPDIR:-/tmp}/zof-killloop.XXXXXX"); export WORK=$W
  cat > "$W/server.yaml" <<Y
tenants:
  team-a:
    allow_commands: true
    allowed_targets: ["http://127.0.0.1:*"]
    tokens:
      - {name: ci, role: runner, env: ZOF_TOKEN_A}
Y
  cat > "$W/side.yaml" <<Y
version: 1
project: orphans
environments:
  local: {url: "http://127.0.0.1:1"}
cases:
  - id: side
    steps:
      - run: sh \$WORK/zof-side-marker.sh
Y
  cat > "$W/zof-side-marker.sh" <<'Y'
id=$$
echo "begin $id" >> $WORK/side.log
(echo "child-begin $id" >> $WORK/side.log; sleep 3; echo "child-end $id" >> $WORK/side.log) &
touch $WORK/started
sleep 3
echo "end $id" >> $WORK/side.log
wait
Y
  PORT=$((20000 + $$ % 10000 + i))
  export ZOF_SERVER=http://127.0.0.1:$PORT
  cd "$W"
  "$ZOF" serve --data data --config server.yaml --listen 127.0.0.1:$PORT 2>serve1.log & S=$!
  until curl -sf "$ZOF_SERVER/readyz" >/dev/null; do sleep 0.05; done
  "$ZOF" run --suite side.yaml >follow.log 2>&1 & F=$!
  until [ -e started ]; do sleep 0.01; done
  delay=$(awk -v s="$(od -An -N2 -tu2 /dev/urandom)" 'BEGIN{printf "%.2f", (s%200)/100}')
  sleep "$delay"; kill -KILL $S; wait $S 2>/dev/null
  "$ZOF" serve --data data --config server.yaml --listen 127.0.0.1:$PORT 2>serve2.log & S=$!
  wait $F; rc=$?
  sleep 3.5  # let an orphan (3s step) finish its second append if it survived
  ends=$(grep -c '^end ' side.log); cends=$(grep -c '^child-end ' side.log)
  left=$(pgrep -f "$W/zof-side-marker" | wc -l)
  kill -INT $S; wait $S
  first=$(sed -n 's/^begin //p' side.log | head -1)
  # Did attempt 1 end before attempt 2 began? Then the kill came after the step was over.
  over=$(awk -v id="$first" '$1=="end" && $2==id {print "yes"; exit} $1=="begin" && $2!=id {exit}' side.log)
  d=0; [ "$ends" -gt 1 ] || [ "$cends" -gt 1 ] && d=1
  if [ "$over" = yes ]; then late=$((late + 1)); d=0; fi
  dup=$((dup + d)); [ "$left" -gt 0 ] && orphans=$((orphans + 1))
  echo "kill $i at +${delay}s: run exit $rc, 'end' lines $ends, 'child-end' lines $cends, orphans $left${over:+, after the step ended}"
  pkill -KILL -f "$W/zof-side-marker" 2>/dev/null
  cd / && rm -rf "$W"
done
echo "$dup of $((N - late)) kills inside the step produced a duplicate side effect; $orphans left an orphan; $late landed after the step ended"
