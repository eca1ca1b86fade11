#!/usr/bin/env bats
# gc.bats - garbage collection (SPEC §7): by age of the last read, by size
# quota, of dead writers' leftovers; in the mount's thread, through the
# mount, and on an unmounted store.

load helpers

setup() {
	setup_store
}

teardown() {
	teardown_store
}

# publish SYMBOL NAME [ROWS]: publish an entry keyed by NAME, print its key.
publish() {
	local k
	k=$(key_of "$2")
	make_parquet "$DATA/$2.parquet" "${3:-1000}" "${#2}"
	cp "$DATA/$2.parquet" "$MNT/$1/$k.parquet"
	wait_published "$MNT/$1/$k.parquet"
	echo "$k"
}

rows() {
	manifest_sql "select count(*) from entries where state='published'"
}

@test "age: entries not read for --older-than go; a recently read old one stays" {
	mount_store
	mkdir "$MNT/AAPL"
	a=$(publish AAPL a); b=$(publish AAPL b); c=$(publish AAPL c)
	# the longest age there is keeps everything, longer than the clock
	# has run since 1970 as it is
	for age in 5200w 3000w; do
		run "$FEATUREFS" gc --older-than $age "$MNT"
		[ "$status" -eq 0 ]
		[[ "$output" == "removed 0 entries"* ]]
	done
	sleep 3
	cat "$MNT/AAPL/$b.parquet" >/dev/null
	run "$FEATUREFS" gc --older-than 2s "$MNT"
	[ "$status" -eq 0 ]
	[[ "$output" == "removed 2 entries"* ]]
	[ "$(manifest_sql "select key from entries")" = "$b" ]
	[ ! -e "$STORE/objects/AAPL/$a.parquet" ]
	[ ! -e "$STORE/objects/AAPL/$c.parquet" ]
	[ -e "$STORE/objects/AAPL/$b.parquet" ]
	# the kernel forgot them: the next open is a miss
	[ "$(try_errno "open('$MNT/AAPL/$a.parquet', 'rb')")" = ENOENT ]
	[ "$(ls "$MNT/AAPL")" = "$b.parquet" ]
	[ "$(stats_get "['gc']['removed_entries']")" = 2 ]
	# the metric says when the pass ran as stats.json does, to the
	# microsecond (not rounded to 9 digits, seconds off)
	python3 - "$MNT/.featurefs" <<'PY'
import datetime, json, sys
d = sys.argv[1]
iso = json.load(open(d + "/stats.json"))["gc"]["last_run"]
when = datetime.datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()
for line in open(d + "/metrics"):
    if line.startswith("featurefs_gc_last_run_timestamp_seconds "):
        metric = float(line.split()[1])
assert abs(metric - when) < 1e-5, (metric, when, iso)
PY
}

@test "gc of a store whose manifest is missing or empty refuses, and makes none, as the other commands do" {
	mount_store
	mkdir "$MNT/AAPL"
	publish AAPL a >/dev/null
	unmount_store
	echo kept >"$STORE/tmp/left"
	mv "$STORE/manifest.db" "$DATA/manifest.db"
	run "$FEATUREFS" gc "$STORE"
	[ "$status" -eq 1 ]
	[[ "$output" == *"manifest.db is missing: restore it from a backup"* ]]
	[ ! -e "$STORE/manifest.db" ]
	: >"$STORE/manifest.db"
	run "$FEATUREFS" gc "$STORE"
	[ "$status" -eq 1 ]
	[[ "$output" == *"manifest.db is empty: restore it from a backup"* ]]
	[ ! -s "$STORE/manifest.db" ]
	[ -e "$STORE/tmp/left" ]
}

@test "an entry read since the last access flush is not idle to a pass, though its row says so" {
	require_faults
	mount_store
	mkdir "$MNT/AAPL"
	a=$(publish AAPL a)
	b=$(publish AAPL b)
	unmount_store
	# every flush fails, as while another process holds the manifest
	FEATUREFS_FAULT="access_flush=EIO@1+" mount_store
	sleep 2
	cat "$MNT/AAPL/$a.parquet" >/dev/null
	run "$FEATUREFS" gc --older-than 1s --json "$MNT"
	[ "$status" -eq 0 ]
	python3 -c "import json,sys; d=json.load(sys.stdin); assert d['removed_entries'] == 1 and d['skipped_busy'] == 1, d" <<<"$output"
	[ "$(manifest_sql "select key from entries")" = "$a" ]
	cmp "$DATA/a.parquet" "$MNT/AAPL/$a.parquet"
}

@test "an entry held open is in use: GC leaves it to its reader until it is closed" {
	mount_store
	mkdir "$MNT/AAPL"
	k=$(publish AAPL big 200000)
	# opened once, then read for longer than --older-than (only an
	# open records a read); mapped, as a reader that closed its
	# descriptor still holds it
	exec 6<"$MNT/AAPL/$k.parquet"
	head -c 1000 <&6 >"$TEST_DIR/part1"
	sleep 2
	# a dry run says what the pass does
	run "$FEATUREFS" gc --dry-run --older-than 1s --json "$MNT"
	[ "$status" -eq 0 ]
	python3 -c "import json,sys; d=json.load(sys.stdin); assert d['removed_entries'] == 0 and d['skipped_busy'] == 1, d" <<<"$output"
	run "$FEATUREFS" gc --older-than 1s --json "$MNT"
	[ "$status" -eq 0 ]
	python3 -c "import json,sys; d=json.load(sys.stdin); assert d['removed_entries'] == 0 and d['skipped_busy'] == 1, d" <<<"$output"
	cat <&6 >"$TEST_DIR/part2"
	exec 6<&-
	cat "$TEST_DIR/part1" "$TEST_DIR/part2" | cmp - "$DATA/big.parquet"
	python3 - "$MNT/AAPL/$k.parquet" "$FEATUREFS" "$MNT" <<'PY'
import mmap, os, subprocess, sys, time
fd = os.open(sys.argv[1], os.O_RDONLY)
m = mmap.mmap(fd, 0, prot=mmap.PROT_READ)
os.close(fd)
time.sleep(1.5)
subprocess.run([sys.argv[2], "gc", "--older-than", "1s", sys.argv[3]],
               check=True, stdout=subprocess.DEVNULL)
assert os.path.exists(sys.argv[1])
assert m[:4] == b"PAR1"
m.close()
PY
	[ "$(rows)" = 1 ]
	# closed and idle, it goes
	sleep 1.5
	run "$FEATUREFS" gc --older-than 1s "$MNT"
	[ "$status" -eq 0 ]
	[ "$(rows)" = 0 ]
}

@test "quota: least recently read entries go until under 90% of max-size" {
	mount_store
	mkdir "$MNT/AAPL"
	for n in e1 e2 e3 e4 e5 e6; do keys+=("$(publish AAPL $n 20000)"); done
	# read in the order e4 e5 e6 e1 e2 e3: e4 is now the least recent
	for i in 3 4 5 0 1 2; do cat "$MNT/AAPL/${keys[$i]}.parquet" >/dev/null; sleep 0.05; done
	one=$(stat -c %s "$DATA/e1.parquet")
	total=$(manifest_sql "select sum(stored_size_bytes) from entries")
	quota=$((total * 3 / 4))
	run "$FEATUREFS" gc --older-than 4w --max-size "$quota" --json "$MNT"
	[ "$status" -eq 0 ]
	left=$(manifest_sql "select sum(stored_size_bytes) from entries")
	[ "$left" -le $((quota * 9 / 10)) ]
	# exactly the least recently read went, in order
	gone=$(python3 -c "import json,sys; print(' '.join(e['key'] for e in json.load(sys.stdin)['entries']))" <<<"$output")
	n=$(wc -w <<<"$gone")
	want=$(printf '%s ' "${keys[3]}" "${keys[4]}" "${keys[5]}" "${keys[0]}" | cut -d' ' -f1-"$n")
	[ "$gone" = "$want" ]
	[ "$n" -ge 2 ]
	[ "$(rows)" = $((6 - n)) ]
}

@test "quota: a row GC leaves alone does not count as freed; the rows after it make up for it" {
	mount_store
	mkdir "$MNT/AAPL"
	for n in e1 e2 e3; do publish AAPL $n 1000 >/dev/null; done
	unmount_store
	one=$(stat -c %s "$DATA/e1.parquet")
	# the oldest row of all is one no pass removes (a malformed key)
	sqlite3 "$STORE/manifest.db" "INSERT INTO entries (symbol, key, path, state, file_size_bytes, stored_size_bytes, created_ts) VALUES ('AAPL', 'bad/key', 'objects/AAPL/bad/key.parquet', 'published', $one, $one, 1)"
	# 90% of 3.5 entries: one valid entry must go
	quota=$((one * 7 / 2))
	run "$FEATUREFS" gc --older-than 0 --max-size "$quota" --dry-run --json "$STORE"
	[ "$status" -eq 0 ]
	python3 -c "import json,sys; d=json.load(sys.stdin); assert d['removed_entries'] == 1 and 'bad/key' not in [e['key'] for e in d['entries']], d" <<<"$output"
	out=$("$FEATUREFS" gc --older-than 0 --max-size "$quota" --json "$STORE" 2>"$TEST_DIR/gc.err")
	python3 -c "import json,sys; d=json.load(sys.stdin); assert d['removed_entries'] == 1 and d['stored_bytes_after'] <= $quota * 9 // 10, d" <<<"$out"
	grep -q "1 rows with malformed names left alone" "$TEST_DIR/gc.err"
	[ "$(rows)" = 3 ]
	[ "$(manifest_sql "select count(*) from entries where key = 'bad/key'")" = 1 ]
}

@test "gc through a mount takes the mount's quota unless told, and --max-size 0 leaves it out" {
	mount_store -o gc_max_size=1K
	mkdir "$MNT/AAPL"
	for n in e1 e2 e3; do publish AAPL $n 1000 >/dev/null; done
	run "$FEATUREFS" gc --older-than 0 --max-size 0 --dry-run "$MNT"
	[ "$status" -eq 0 ]
	[[ "$output" == "would remove 0 entries"* ]]
	run "$FEATUREFS" gc --older-than 0 --dry-run "$MNT"
	[ "$status" -eq 0 ]
	[[ "$output" == *" size"* ]]
	[[ "$output" != "would remove 0 entries"* ]]
	[ "$(rows)" = 3 ]
}

@test "an in-flight entry is never collected; a dead writer's tmp file is" {
	mount_store
	mkdir "$MNT/AAPL"
	k=$(key_of inflight)
	exec 5>"$MNT/AAPL/$k.parquet"
	head -c 100 /dev/zero >&5
	echo junk >"$STORE/tmp/deadbeefdeadbeef.7.entry"
	sleep 2
	run "$FEATUREFS" gc --older-than 1s --json "$MNT"
	[ "$status" -eq 0 ]
	[ "$(python3 -c "import json,sys; print(json.load(sys.stdin)['tmp_removed'])" <<<"$output")" = 1 ]
	[ ! -e "$STORE/tmp/deadbeefdeadbeef.7.entry" ]
	[ "$(manifest_sql "select state from entries where key='$k'")" = writing ]
	[ "$(ls "$STORE/tmp" | wc -l)" = 1 ]
	exec 5>&-
}

@test "--dry-run lists what would go and changes nothing" {
	mount_store
	mkdir "$MNT/AAPL"
	publish AAPL a >/dev/null; publish AAPL b >/dev/null
	sleep 2
	"$FEATUREFS" ls --json "$STORE" >"$TEST_DIR/before"
	run "$FEATUREFS" gc --older-than 1s --dry-run --json "$MNT"
	[ "$status" -eq 0 ]
	python3 -c "import json,sys; d=json.load(sys.stdin); assert d['dry_run'] and d['removed_entries'] == 2 and len(d['entries']) == 2, d" <<<"$output"
	# the text form lists them too, one a line
	run "$FEATUREFS" gc --older-than 1s --dry-run "$MNT"
	[ "$status" -eq 0 ]
	[[ "$output" == *"would remove 2 entries"* ]]
	[ "$(grep -cE '^  AAPL/[0-9a-f]{64}\.parquet  [0-9]+  age$' <<<"$output")" = 2 ]
	"$FEATUREFS" ls --json "$STORE" >"$TEST_DIR/after"
	cmp "$TEST_DIR/before" "$TEST_DIR/after"
	[ "$(ls "$MNT/AAPL" | wc -l)" = 2 ]
}

@test "--dry-run counts dead writers' rows as a pass would: a write in flight is none, a complete object is adopted" {
	require_faults
	make_parquet "$DATA/a.parquet"
	# a dead writer whose object was in place: a pass adopts it
	FEATUREFS_FAULT="after_rename=crash" mount_store
	mkdir "$MNT/AAPL"
	write_entry "$MNT/AAPL/$(key_of dead).parquet" "$DATA/a.parquet" || true
	daemon_gone_detach
	run "$FEATUREFS" gc --older-than 4w --dry-run --json "$STORE"
	[ "$status" -eq 0 ]
	python3 -c "import json,sys; d=json.load(sys.stdin); assert (d['rows_removed'], d['rows_adopted']) == (0, 1), d" <<<"$output"
	[ "$(manifest_sql "select state from entries")" = writing ]
	# the mount's own write in flight is no dead writer's
	mount_store
	k=$(key_of inflight)
	exec 5>"$MNT/AAPL/$k.parquet"
	head -c 100 /dev/zero >&5
	run "$FEATUREFS" gc --older-than 4w --dry-run --json "$MNT"
	[ "$status" -eq 0 ]
	python3 -c "import json,sys; d=json.load(sys.stdin); assert (d['rows_removed'], d['rows_adopted']) == (0, 0), d" <<<"$output"
	exec 5>&-
}

@test "the GC thread removes idle entries on its own" {
	mount_store -o gc_interval=1s,gc_older_than=2s
	mkdir "$MNT/AAPL"
	k=$(publish AAPL a)
	for ((i = 0; i < READY_TIMEOUT * 10; i++)); do
		[ "$(rows)" = 0 ] && break
		sleep 0.1
	done
	[ "$(rows)" = 0 ]
	[ "$(try_errno "os.stat('$MNT/AAPL/$k.parquet')")" = ENOENT ]
	[ "$(stats_get "['gc']['runs']")" -ge 1 ]
	grep -q '^gc  .*removed 1 entry' "$MNT/.featurefs/stats"
}

@test "gc on an unmounted store locks it and collects" {
	mount_store
	mkdir "$MNT/AAPL"
	publish AAPL a >/dev/null
	unmount_store
	sleep 2
	run "$FEATUREFS" gc --older-than 1s --json "$STORE"
	[ "$status" -eq 0 ]
	python3 -c "import json,sys; d=json.load(sys.stdin); assert d['removed_entries'] == 1, d" <<<"$output"
	[ "$(rows)" = 0 ]
	[ -z "$(ls -A "$STORE/objects/AAPL")" ]
	run "$FEATUREFS" gc --older-than banana "$STORE"
	[ "$status" -eq 2 ]
	run "$FEATUREFS" gc "$TEST_DIR/nowhere"
	[ "$status" -eq 1 ]
}

# idle_rows N: N published rows of AAPL without objects, never read: a
# pass over them takes seconds.  The store is unmounted.
idle_rows() {
	mount_store
	mkdir "$MNT/AAPL"
	unmount_store
	sqlite3 "$STORE/manifest.db" "
		WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c
			WHERE x < $1)
		INSERT INTO entries (symbol, key, path, state, rows,
			file_size_bytes, stored_size_bytes, compression,
			hash_method, sha256, created_ts, last_accessed_ts,
			access_count, writer, mtime_ns, mode)
		SELECT 'AAPL', printf('%064x', x),
			'objects/AAPL/' || printf('%064x', x) || '.parquet',
			'published', 1, 10, 10, 'none', 'full', '', 1, 1, 0, 'x',
			0, 420 FROM c"
}

# gc_started N: wait until a pass has removed some of N rows.
gc_started() {
	while [ "$(sqlite3 -cmd '.timeout 10000' "$STORE/manifest.db" \
		"select count(*) from entries")" = "$1" ]; do
		sleep 0.1
	done
}

@test "gc through a mount that stops meanwhile says interrupted and exits 1" {
	idle_rows 200000
	mount_store
	"$FEATUREFS" gc --older-than 30d "$MNT" >"$TEST_DIR/gc.out" 2>&1 3>&- &
	gc=$!
	# once the pass has removed some, stop the mount under it
	gc_started 200000
	unmount_store
	st=0
	wait "$gc" || st=$?
	cat "$TEST_DIR/gc.out" >&2
	[ "$st" -eq 1 ]
	grep -q "entries (.*), interrupted" "$TEST_DIR/gc.out"
}

@test "stats answers while a gc pass asked through the mount runs" {
	idle_rows 200000
	mount_store
	"$FEATUREFS" gc --older-than 30d "$MNT" >"$TEST_DIR/gc.out" 2>&1 3>&- &
	gc=$!
	gc_started 200000
	run "$FEATUREFS" stats --json "$STORE"
	kill -0 "$gc" # the pass still runs
	[ "$status" -eq 0 ]
	[ "$(jq -r '.mountpoint' <<<"$output")" = "$MNT" ]
	wait "$gc"
	[ "$(manifest_sql "select count(*) from entries")" = 0 ]
}

@test "gc and stats on a mount whose daemon is stopped say so instead of waiting forever" {
	mount_store
	mkdir "$MNT/AAPL"
	k=$(publish AAPL a)
	cat "$MNT/AAPL/$k.parquet" >/dev/null
	kill -STOP "$DAEMON_PID"
	run "$FEATUREFS" gc --older-than 1s "$STORE"
	gc_status=$status gc_output=$output
	# named by its mountpoint too: found without asking the mount
	run "$FEATUREFS" ls "$MNT"
	ls_status=$status
	# and by a bare relative name
	ls_rel_status=$(cd "$TEST_DIR" && timeout 20 "$FEATUREFS" ls mnt >/dev/null 2>&1; echo $?)
	run "$FEATUREFS" stats --json "$MNT"
	kill -CONT "$DAEMON_PID"
	[ "$ls_status" -eq 0 ]
	[ "$ls_rel_status" -eq 0 ]
	[ "$gc_status" -eq 1 ]
	[[ "$gc_output" == *"(pid $DAEMON_PID) is stopped and cannot answer: continue it (kill -CONT $DAEMON_PID)"* ]]
	# stats falls back to the manifest, and says that it did
	[ "$status" -eq 0 ]
	[[ "${lines[0]}" == *"(pid $DAEMON_PID) is stopped: figures from the manifest"* ]]
	[ "$(jq -r '.symbols[0].entries' <<<"${lines[1]}")" = 1 ]
	[ "$(jq -r '[.mounted, .mountpoint, .daemon_answering] | join(" ")' <<<"${lines[1]}")" = "true $MNT false" ]
	# the withdrawn gc request is not carried out once it continues; the
	# live figures are back
	run "$FEATUREFS" stats --json "$STORE"
	[ "$status" -eq 0 ]
	[ "$(jq -r '.mountpoint' <<<"$output")" = "$MNT" ]
	[ "$(rows)" = 1 ]
	log_has "control socket: a gc request was withdrawn before it could start"
}

@test "orphans are reported by gc and left to fsck" {
	mount_store
	mkdir "$MNT/AAPL"
	mkdir -p "$STORE/objects/AAPL"
	make_parquet "$STORE/objects/AAPL/$(key_of orphan).parquet"
	run "$FEATUREFS" gc --orphans --json "$MNT"
	[ "$status" -eq 0 ]
	[ "$(python3 -c "import json,sys; print(json.load(sys.stdin)['orphans'])" <<<"$output")" = 1 ]
	[ -e "$STORE/objects/AAPL/$(key_of orphan).parquet" ]
}

@test "scratch files and directories left idle are removed; a file still open is kept" {
	mount_store
	mkdir "$MNT/AAPL"
	echo left >"$MNT/AAPL/.rsync-died.XYZ"
	mkdir "$MNT/AAPL/.~tmp~" "$MNT/AAPL/.empty"
	echo left >"$MNT/AAPL/.~tmp~/$(key_of left).parquet"
	exec 7>"$MNT/AAPL/.still-writing"
	echo busy >&7
	sleep 2
	run "$FEATUREFS" gc --older-than 1s --json "$MNT"
	[ "$status" -eq 0 ]
	[ "$(python3 -c "import json,sys; print(json.load(sys.stdin)['tmp_removed'])" <<<"$output")" = 2 ]
	[ ! -e "$MNT/AAPL/.rsync-died.XYZ" ]
	[ -z "$(ls -A "$MNT/AAPL/.~tmp~")" ]
	# a scratch directory left empty goes too
	[ ! -e "$MNT/AAPL/.empty" ]
	[ -e "$MNT/AAPL/.still-writing" ]
	exec 7>&-
	[ "$(ls "$STORE/tmp" | wc -l)" = 1 ]
}

@test "the systemd timer example runs featurefs gc on the mountpoint" {
	unit=$FEATUREFS_SOURCE/mount-helpers/featurefs-gc@.service
	[ -f "$unit" ] && [ -f "$FEATUREFS_SOURCE/mount-helpers/featurefs-gc@.timer" ]
	grep -q '^Unit=featurefs-gc@%i.service$' "$FEATUREFS_SOURCE/mount-helpers/featurefs-gc@.timer"
	# the pass applies the mount's own gc_older_than
	mount_store -o gc_older_than=1s
	mkdir "$MNT/AAPL"
	publish AAPL a >/dev/null
	sleep 2
	# run the unit's command line as systemd would for instance $MNT
	cmd=$(sed -n 's/^ExecStart=//p' "$unit")
	[ "$cmd" = "featurefs gc %f" ]
	cmd=${cmd//%f/$MNT}
	run $FEATUREFS ${cmd#featurefs }
	[ "$status" -eq 0 ]
	[ "$(rows)" = 0 ]
}
