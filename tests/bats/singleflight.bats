#!/usr/bin/env bats
# singleflight.bats - create is the claim; readers of an in-flight key wait
# without polling and are woken by publish, discard or lock_timeout
# (SPEC §3 steps 2-3, §5 lock ids).

load helpers

setup() {
	setup_store
	K=$(key_of hot)
}

teardown() {
	# the second mount of a test that makes one
	[ -z "${TEST_DIR:-}" ] || fusermount3 -uz "$TEST_DIR/mnt2" 2>/dev/null || true
	teardown_store
}

# start_workers N PATH SOURCE DELAY: N claim-or-wait workers behind one
# gate; their outputs go to $TEST_DIR/out.<i>.
start_workers() {
	local n=$1 i
	rm -rf "$TEST_DIR/gate" && mkdir "$TEST_DIR/gate"
	WORKERS=()
	for ((i = 0; i < n; i++)); do
		python3 "$FEATUREFS_TOOLS/claim_or_wait.py" "$2" "$3" "$4" "$TEST_DIR/gate" \
			>"$TEST_DIR/out.$i" 2>&1 3>&- &
		WORKERS+=($!)
	done
}

# open_gate N: once N workers are ready behind the gate, let them all go.
open_gate() {
	local i
	for ((i = 0; i < READY_TIMEOUT * 10; i++)); do
		[ "$(ls "$TEST_DIR/gate" | wc -l)" -ge "$1" ] && break
		sleep 0.1
	done
	touch "$TEST_DIR/gate/go"
}

wait_workers() {
	local p
	for p in "${WORKERS[@]}"; do
		wait "$p" || true
	done
}

# waits_now: single-flight waits counted so far (from the text stats:
# cheap enough to poll).
waits_now() {
	awk '$1 == "single-flight" { print $2 }' "$MNT/.featurefs/stats"
}

# wait_for_waits N: block until N readers are parked on the entry.
wait_for_waits() {
	local i
	for ((i = 0; i < READY_TIMEOUT * 10; i++)); do
		[ "$(waits_now)" -ge "$1" ] && return 0
		sleep 0.1
	done
	echo "only $(waits_now) waits" >&2
	return 1
}

@test "32 workers that miss one key together compute it once" {
	mount_store
	mkdir "$MNT/AAPL"
	make_parquet "$DATA/src.parquet" 200000
	want=$(sha256sum <"$DATA/src.parquet" | cut -c1-64)
	start_workers 32 "$MNT/AAPL/$K.parquet" "$DATA/src.parquet" 0.02
	open_gate 32
	wait_workers
	cat "$TEST_DIR"/out.* >"$TEST_DIR/all"
	[ "$(grep -c '^computed$' "$TEST_DIR/all")" = 1 ]
	[ "$(grep -c "^read $want$" "$TEST_DIR/all")" = 31 ]
	cmp "$DATA/src.parquet" "$MNT/AAPL/$K.parquet"
	[ "$(stats_get "['singleflight']['waits']")" -ge 1 ]
	grep -q '^single-flight  ' "$MNT/.featurefs/stats"
	unmount_store
	[ "$(manifest_sql "select count(*) from entries")" = 1 ]
	[ "$(manifest_sql "select access_count >= 31 from entries where key='$K'")" = 1 ]
}

@test "8 threads of one process that miss one key: one computes, the others wait and read it whole" {
	mount_store
	mkdir "$MNT/AAPL"
	make_parquet "$DATA/src.parquet" 200000
	# docs/computing-once.md's open_feature() in threads: a thread of
	# the writer's process that finds the key in flight is a reader
	run python3 - "$MNT/AAPL/$K.parquet" "$DATA/src.parquet" <<'PY'
import os, sys, threading, time
path, src = sys.argv[1], sys.argv[2]
data = open(src, "rb").read()
def compute(out):
    for i in range(0, len(data), 65536):
        out.write(data[i:i + 65536]); out.flush(); time.sleep(0.01)
def open_feature(path, compute):
    while True:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            try:
                return open(path, "rb")
            except FileNotFoundError:
                continue
        with os.fdopen(fd, "wb") as out:
            compute(out)
        return open(path, "rb")
whole = []
def run():
    with open_feature(path, compute) as f:
        whole.append(f.read() == data)
threads = [threading.Thread(target=run) for _ in range(8)]
[t.start() for t in threads]
[t.join() for t in threads]
print(sum(whole), "of", len(whole))
PY
	[ "$status" -eq 0 ]
	[ "$output" = "8 of 8" ]
	[ "$(stats_get "['singleflight']['waits']")" -ge 1 ]
}

@test "a process given the pid of a writer that has exited is a reader: it waits for the whole entry" {
	[ -w /proc/sys/kernel/ns_last_pid ] || skip "needs root to choose a pid"
	mount_store
	mkdir "$MNT/AAPL"
	make_parquet "$DATA/src.parquet" 20000
	# the claimant writes half, leaves its descriptor to a child that
	# writes the rest, and exits; a new process takes its pid
	run python3 - "$MNT/AAPL/$K.parquet" "$DATA/src.parquet" <<'PY'
import os, subprocess, sys, time
path, data = sys.argv[1], open(sys.argv[2], "rb").read()
creator = os.fork()
if creator == 0:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    os.write(fd, data[:len(data) // 2])
    if os.fork() == 0:
        time.sleep(2)
        os.write(fd, data[len(data) // 2:])
        os._exit(0)
    os._exit(0)
os.waitpid(creator, 0)
reader = "import sys; print(len(open(sys.argv[1], 'rb').read()))"
for _ in range(50):
    with open("/proc/sys/kernel/ns_last_pid", "w") as f:
        f.write(str(creator - 1))
    p = subprocess.Popen([sys.executable, "-c", reader, path],
                         stdout=subprocess.PIPE, text=True)
    if p.pid == creator:
        break
    p.kill()
    p.wait()
else:
    print("no pid reuse")
    sys.exit(0)
print(int(p.communicate(timeout=60)[0]) == len(data))
PY
	echo "$output" >&2
	[ "$output" = "no pid reuse" ] && skip "the pid was not given again"
	[ "$output" = True ]
	cmp "$DATA/src.parquet" "$MNT/AAPL/$K.parquet"
}

@test "readers park without holding threads: other keys stay served" {
	mount_store -o lock_timeout=10m
	mkdir "$MNT/AAPL" "$MNT/MSFT"
	make_parquet "$DATA/src.parquet" 3000
	other=$(key_of other)
	cp "$DATA/src.parquet" "$MNT/MSFT/$other.parquet"
	exec 5>"$MNT/AAPL/$K.parquet"
	for i in $(seq 64); do
		# 5>&-: a reader holding the writer's descriptor would keep
		# the entry from ever being finished
		cat "$MNT/AAPL/$K.parquet" >"$TEST_DIR/r.$i" 2>&1 3>&- 5>&- &
		readers+=($!)
	done
	wait_for_waits 64
	# 64 opens parked, and a published key still opens and reads
	for i in $(seq 20); do
		cmp "$DATA/src.parquet" "$MNT/MSFT/$other.parquet"
	done
	for p in "${readers[@]}"; do kill -0 "$p"; done
	cat "$DATA/src.parquet" >&5
	exec 5>&-
	for p in "${readers[@]}"; do wait "$p"; done
	for i in $(seq 64); do cmp "$DATA/src.parquet" "$TEST_DIR/r.$i"; done
	[ "$(stats_get "['singleflight']['lock_wait_seconds']['count']")" -ge 64 ]
	python3 -c "import json; d=json.load(open('$MNT/.featurefs/stats.json')); s={x['symbol']: x for x in d['symbols']}; assert s['AAPL']['waits'] == 64, s['AAPL']"
}

@test "a writer killed mid-write: waiters get ENOENT, the key can be claimed again" {
	mount_store
	mkdir "$MNT/AAPL"
	make_parquet "$DATA/src.parquet" 200000
	python3 "$FEATUREFS_TOOLS/claim_or_wait.py" "$MNT/AAPL/$K.parquet" "$DATA/src.parquet" 0.5 \
		>"$TEST_DIR/writer" 2>&1 3>&- &
	writer=$!
	for ((i = 0; i < 100; i++)); do [ -e "$MNT/AAPL/$K.parquet" ] && break; sleep 0.1; done
	start_workers 8 "$MNT/AAPL/$K.parquet" "$DATA/src.parquet" 0
	open_gate 8
	wait_for_waits 8
	kill -9 "$writer"
	wait "$writer" || true
	wait_workers
	[ "$(cat "$TEST_DIR"/out.* | sort -u)" = "error ENOENT" ]
	[ "$(manifest_sql "select count(*) from entries")" = 0 ]
	[ -z "$(ls -A "$STORE/tmp")" ]
	[ "$(stats_get "['load_failures']['truncated']")" = 1 ]
	run python3 "$FEATUREFS_TOOLS/claim_or_wait.py" "$MNT/AAPL/$K.parquet" "$DATA/src.parquet" 0
	[ "$output" = computed ]
	cmp "$DATA/src.parquet" "$MNT/AAPL/$K.parquet"
}

@test "a writer of invalid content: its close gets EIO, waiters get ENOENT" {
	mount_store
	mkdir "$MNT/AAPL"
	head -c 300000 /dev/urandom >"$DATA/noise"
	# the writer holds its file open until told to close it
	python3 - "$MNT/AAPL/$K.parquet" "$DATA/noise" "$TEST_DIR/release" \
		>"$TEST_DIR/writer" 2>&1 3>&- <<'PY' &
import errno, os, sys, time
path, src, release = sys.argv[1:]
fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
os.write(fd, open(src, "rb").read())
while not os.path.exists(release):
    time.sleep(0.01)
try:
    os.close(fd)
    print("closed")
except OSError as e:
    print("error", errno.errorcode[e.errno])
PY
	writer=$!
	for ((i = 0; i < 100; i++)); do [ -e "$MNT/AAPL/$K.parquet" ] && break; sleep 0.1; done
	start_workers 4 "$MNT/AAPL/$K.parquet" "$DATA/noise" 0
	open_gate 4
	wait_for_waits 4
	touch "$TEST_DIR/release"
	wait "$writer"
	wait_workers
	[ "$(cat "$TEST_DIR/writer")" = "error EIO" ]
	[ "$(cat "$TEST_DIR"/out.* | sort -u)" = "error ENOENT" ]
	[ "$(manifest_sql "select count(*) from entries")" = 0 ]
}

@test "after a close that failed with EIO, the name is gone to stat() at once" {
	mount_store
	mkdir "$MNT/AAPL"
	# the discard's invalidation of the name comes a moment later: the
	# name of an entry in flight is not cached meanwhile
	run python3 - "$MNT/AAPL" <<'PY'
import errno, os, sys
seen = 0
for i in range(300):
    p = "%s/%064x.parquet" % (sys.argv[1], i)
    fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    os.write(fd, b"not parquet")
    try:
        os.close(fd)
        sys.exit("close returned 0")
    except OSError as e:
        assert e.errno == errno.EIO, e
    try:
        os.stat(p)
        seen += 1
    except FileNotFoundError:
        pass
print(seen)
PY
	[ "$output" = 0 ]
}

@test "docs/computing-once.md's bash recipe publishes valid content and reports invalid content" {
	mount_store
	mkdir "$MNT/AAPL"
	make_parquet "$DATA/a.parquet" 1000
	# the recipe as the document gives it, on this mount
	sed -n '/^```bash$/,/^```$/p' "$FEATUREFS_SOURCE/docs/computing-once.md" |
		sed '1d;$d' | sed "s|/features/|$MNT/|" >"$TEST_DIR/recipe.bash"
	grep -q 'compute_features >&3' "$TEST_DIR/recipe.bash"
	good=$(key_of recipe-good) bad=$(key_of recipe-bad)
	run env key="$good" bash -c "compute_features() { cat '$DATA/a.parquet'; }
		$(cat "$TEST_DIR/recipe.bash")"
	[ "$status" -eq 0 ]
	cmp "$DATA/a.parquet" "$MNT/AAPL/$good.parquet"
	run env key="$bad" bash -c "compute_features() { echo not parquet; }
		$(cat "$TEST_DIR/recipe.bash")"
	[ "$status" -eq 1 ]
	[[ "$output" == *"not published: invalid Parquet"* ]]
	[ ! -e "$MNT/AAPL/$bad.parquet" ]
	# a second run of the good one reads what the first computed
	run env key="$good" bash -c "compute_features() { exit 3; }
		$(cat "$TEST_DIR/recipe.bash")"
	[ "$status" -eq 0 ]
	# a worker that waits for a writer that fails computes the key
	local again
	again=$(key_of recipe-again)
	exec 5>"$MNT/AAPL/$again.parquet"
	env key="$again" bash -c "compute_features() { cat '$DATA/a.parquet'; }
		$(cat "$TEST_DIR/recipe.bash")" 5>&- &
	waiter=$!
	for ((i = 0; i < READY_TIMEOUT * 10; i++)); do
		[ "$(stats_get "['singleflight']['waits']")" = 1 ] && break
		sleep 0.1
	done
	echo not parquet >&5
	exec 5>&- || true
	wait "$waiter"
	cmp "$DATA/a.parquet" "$MNT/AAPL/$again.parquet"
	# DuckDB told to write to /dev/stdout opens the claimed entry again:
	# it holds it for writing, so that is the same write, not a second
	local duck
	duck=$(key_of recipe-duck)
	run env key="$duck" bash -c "compute_features() { node '$FEATUREFS_TOOLS/duck.mjs' make /dev/stdout --rows 1000 --seed 1; }
		$(cat "$TEST_DIR/recipe.bash")"
	[ "$status" -eq 0 ]
	cmp "$DATA/a.parquet" "$MNT/AAPL/$duck.parquet"
}

@test "a process holding an entry in flight for writing may open it again; no other process may" {
	mount_store
	mkdir "$MNT/AAPL"
	make_parquet "$DATA/a.parquet" 1000
	local k1 k2
	k1=$(key_of reopen-one) k2=$(key_of reopen-two)
	# /proc/self/fd/N is the entry: a new open of it, truncating
	run python3 - "$MNT/AAPL/$k1.parquet" "$DATA/a.parquet" <<'PY'
import os, sys, subprocess
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
os.write(fd, b"junk that the truncating open drops")
again = os.open("/proc/self/fd/%d" % fd, os.O_WRONLY | os.O_TRUNC)
os.write(again, open(sys.argv[2], "rb").read())
# another process that does not hold it: EEXIST
r = subprocess.run(["python3", "-c", "import os, sys; os.open(sys.argv[1], os.O_WRONLY)", sys.argv[1]],
                   stderr=subprocess.PIPE, text=True)
print("other:", r.returncode, "File exists" in r.stderr)
os.close(again)
os.close(fd)
PY
	[ "$status" -eq 0 ]
	[[ "$output" == *"other: 1 True"* ]]
	cmp "$DATA/a.parquet" "$MNT/AAPL/$k1.parquet"
	log_has "open AAPL/$k1.parquet for writing: in flight, written by another process (EEXIST"
	# a published entry stays closed to writes, with a line that says why
	run python3 -c "open('$MNT/AAPL/$k1.parquet', 'wb')"
	[ "$status" -ne 0 ]
	[[ "$output" == *"File exists"* ]]
	log_has "open AAPL/$k1.parquet for writing: published, and entries are immutable (EEXIST"
	# the second open's close in a child the writer started publishes
	# nothing early: the writer's own close does
	python3 - "$MNT/AAPL/$k2.parquet" "$DATA/a.parquet" <<'PY'
import os, sys, subprocess
data = open(sys.argv[2], "rb").read()
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
os.set_inheritable(fd, True)
subprocess.run(["python3", "-c", "import os, sys; f = os.open('/proc/self/fd/%s' % sys.argv[1], os.O_WRONLY);"
                " os.write(f, sys.stdin.buffer.read()); os.close(f)", str(fd)],
               input=data, close_fds=False, check=True)
assert os.path.getsize(sys.argv[1]) == len(data)
os.close(fd)
PY
	cmp "$DATA/a.parquet" "$MNT/AAPL/$k2.parquet"
	[ "$(manifest_sql "select state from entries where key = '$k2'")" = published ]
}

@test "a claimant that moves its descriptor (dup2, close) while others stat the name keeps its claim" {
	make_parquet "$DATA/a.parquet"
	mount_store
	mkdir "$MNT/AAPL"
	python3 -c "
import hashlib
print(' '.join(hashlib.sha256(b'moved%d' % i).hexdigest() for i in range(200)))" >"$TEST_DIR/keys"
	# what waiting workers and ls -l do; a lookup that races the claim
	# has the name invalidated, and /proc then shows the claimant's
	# descriptor as "... (deleted)"
	for i in 1 2 3 4; do
		python3 - "$MNT/AAPL" "$TEST_DIR/stop" "$TEST_DIR/keys" <<'PY' 3>&- &
import os, sys
d, stop, keys = sys.argv[1], sys.argv[2], open(sys.argv[3]).read().split()
while not os.path.exists(stop):
    for k in keys:
        try:
            os.stat(os.path.join(d, k + ".parquet"))
        except OSError:
            pass
PY
		STATTERS+=($!)
	done
	# as bash does for `exec 3>"$f"` with fd 3 taken
	run python3 - "$MNT/AAPL" "$DATA/a.parquet" "$TEST_DIR/keys" <<'PY'
import os, sys
d, src, kf = sys.argv[1:]
data = open(src, "rb").read()
bad = []
for k in open(kf).read().split():
    fd = os.open(os.path.join(d, k + ".parquet"), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    os.dup2(fd, 9)
    try:
        os.close(fd)
        os.write(9, data)
        os.close(9)
    except OSError as e:
        bad.append("%s %s" % (k, e))
print(len(bad), bad[:3])
PY
	touch "$TEST_DIR/stop"
	wait "${STATTERS[@]}"
	echo "$output" >&2
	[ "$output" = "0 []" ]
	refute log_has "discard"
	[ "$(manifest_sql "select count(*) from entries where state = 'published'")" = 200 ]
}

@test "a descriptor kept on an earlier, discarded life of a key is no write of its next life" {
	mount_store
	mkdir "$MNT/AAPL"
	run python3 - "$MNT/AAPL/$K.parquet" <<'PY'
import errno, os, subprocess, sys
p = sys.argv[1]
def attempt(f):
    try:
        f()
        return "0"
    except OSError as e:
        return errno.errorcode[e.errno]
# life 1, removed by another process while its descriptor stays open
old = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
os.write(old, b"old bytes")
subprocess.run(["rm", "-f", p], check=True)
# life 2, claimed by another process: this one may not join it
b = subprocess.Popen([sys.executable, "-c", """
import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
os.write(fd, b"PAR1" + b"B" * 100)
print("claimed", flush=True)
sys.stdin.read()
""", p], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
assert b.stdout.readline().strip() == "claimed"
print("join", attempt(lambda: os.open(p, os.O_WRONLY)))
b.kill(); b.wait()
# life 3, its own: invalid content gets EIO at close, the old descriptor
# being no writer of it that may still finish it (the old one's close
# is 0: this process had rm remove it)
fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
os.write(fd, b"not parquet")
print("close", attempt(lambda: os.close(fd)))
print("old", attempt(lambda: os.close(old)))
PY
	echo "$output" >&2
	[ "$output" = "$(printf 'join EEXIST\nclose EIO\nold 0')" ]
	[ ! -e "$MNT/AAPL/$K.parquet" ]
}

@test "writing the same name on another mount is no key to an entry in flight here" {
	mount_store
	mkdir "$MNT/AAPL" "$TEST_DIR/mnt2"
	"$FEATUREFS" "$TEST_DIR/store2" "$TEST_DIR/mnt2" -f -o gc_interval=0 \
		>>"$TEST_DIR/daemon2.log" 2>&1 3>&- &
	local i pid2=$!
	for ((i = 0; i < READY_TIMEOUT * 10; i++)); do
		mountpoint -q "$TEST_DIR/mnt2" && break
		sleep 0.1
	done
	mkdir "$TEST_DIR/mnt2/AAPL"
	# the same name has the same inode number on both mounts
	run python3 - "$MNT/AAPL/$K.parquet" "$TEST_DIR/mnt2/AAPL/$K.parquet" <<'PY'
import errno, os, subprocess, sys
here, there = sys.argv[1:]
mine = os.open(there, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
other = subprocess.Popen(["python3", "-c", "import os, sys; os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_EXCL);"
                          " print('claimed', flush=True); sys.stdin.read()", here],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
assert other.stdout.readline() == "claimed\n"
try:
    os.open(here, os.O_WRONLY | os.O_TRUNC)
    print("joined")
except OSError as e:
    print(errno.errorcode[e.errno])
other.stdin.close()
other.wait()
try:
    os.close(mine)  # empty: EIO
except OSError:
    pass
PY
	fusermount3 -u "$TEST_DIR/mnt2"
	wait "$pid2" || true
	[ "$output" = EEXIST ]
	log_has "open AAPL/$K.parquet for writing: in flight, written by another process (EEXIST"
}

@test "lock_timeout: readers get ETIMEDOUT; the writer still publishes later" {
	mount_store -o lock_timeout=2s
	mkdir "$MNT/AAPL"
	make_parquet "$DATA/src.parquet" 1000
	exec 5>"$MNT/AAPL/$K.parquet"
	head -c 10 "$DATA/src.parquet" >&5
	[ "$(try_errno "open('$MNT/AAPL/$K.parquet', 'rb')")" = ETIMEDOUT ]
	[ "$(try_errno "open('$MNT/AAPL/$K.parquet', 'rb')")" = ETIMEDOUT ]
	[ "$(stats_get "['singleflight']['timeouts']")" = 2 ]
	tail -c +11 "$DATA/src.parquet" >&5
	exec 5>&-
	wait_published "$MNT/AAPL/$K.parquet"
	cmp "$DATA/src.parquet" "$MNT/AAPL/$K.parquet"
	# said once a minute, as readers retrying would repeat it
	[ "$(grep -c "still being written after lock_timeout" "$TEST_DIR/daemon.log")" = 1 ]
}

@test "a write another process unlinks: every close of it says EIO, as nothing is published" {
	make_parquet "$DATA/src.parquet" 1000
	mount_store
	mkdir "$MNT/AAPL"
	# the remover is no process the writer started: it could not know
	python3 - "$MNT/AAPL/$K.parquet" "$DATA/src.parquet" "$TEST_DIR" >"$TEST_DIR/out" <<'PY' &
import errno, os, sys, time
p, src, d = sys.argv[1:]
data = open(src, "rb").read()
fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
dup = os.dup(fd)
os.write(fd, data[:100])
open(d + "/written", "w").close()
for _ in range(600):
    if not os.path.exists(p):
        break
    time.sleep(0.05)
os.write(fd, data[100:])
for f in (dup, fd):
    try:
        os.close(f)
        print("0")
    except OSError as e:
        print(errno.errorcode[e.errno])
PY
	writer=$!
	for ((i = 0; i < READY_TIMEOUT * 10; i++)); do
		[ -e "$TEST_DIR/written" ] && break
		sleep 0.1
	done
	rm -f "$MNT/AAPL/$K.parquet"
	wait "$writer"
	[ "$(cat "$TEST_DIR/out")" = "$(printf 'EIO\nEIO')" ]
	log_has "close AAPL/$K.parquet: its write was discarded: unlinked while being written (EIO)"
	[ ! -e "$MNT/AAPL/$K.parquet" ]
}

@test "a writer that unlinks its own entry in flight (cleaning up a failure), or has rm do it, closes it with 0" {
	mount_store
	mkdir "$MNT/AAPL"
	run python3 - "$MNT/AAPL/$K.parquet" <<'PY'
import os, subprocess, sys
p = sys.argv[1]
with open(p, "wb") as f:
    f.write(b"partial")
    f.flush()
    os.remove(p)
with open(p, "wb") as f:
    f.write(b"partial")
    f.flush()
    subprocess.run(["rm", "-f", p], check=True)
print("closed")
PY
	[ "$status" -eq 0 ]
	[ "$output" = closed ]
	[ ! -e "$MNT/AAPL/$K.parquet" ]
	# and the key is free again
	make_parquet "$DATA/src.parquet" 1000
	cp "$DATA/src.parquet" "$MNT/AAPL/$K.parquet"
	cmp "$DATA/src.parquet" "$MNT/AAPL/$K.parquet"
}

@test "a waiting reader can be interrupted" {
	mount_store -o lock_timeout=10m
	mkdir "$MNT/AAPL"
	exec 5>"$MNT/AAPL/$K.parquet"
	# Ctrl-C's signal, which a background job of a script ignores
	python3 -c "
import signal, sys
signal.signal(signal.SIGINT, signal.SIG_DFL)
open(sys.argv[1], 'rb')" "$MNT/AAPL/$K.parquet" 2>/dev/null 3>&- 5>&- &
	reader=$!
	wait_for_waits 1
	kill -INT "$reader"
	local status=0
	wait "$reader" || status=$?
	[ "$status" = 130 ] # killed by it: the open ended
	# no retry takes the wait up: it ended at the signal, and its time
	# goes into the lock-wait histogram once the retry's window passes
	local i
	for ((i = 0; i < READY_TIMEOUT * 10; i++)); do
		[ "$(stats_get "['singleflight']['lock_wait_seconds']['count']")" = 1 ] && break
		sleep 0.1
	done
	[ "$(stats_get "['singleflight']['lock_wait_seconds']['count']")" = 1 ]
	exec 5>&-
}

@test "a reader that catches signals while it waits still times out at lock_timeout, counted once" {
	mount_store -o lock_timeout=2s
	mkdir "$MNT/AAPL"
	make_parquet "$DATA/src.parquet" 1000
	exec 5>"$MNT/AAPL/$K.parquet"
	head -c 10 "$DATA/src.parquet" >&5
	# each signal ends the wait with EINTR, and Python opens again
	python3 - "$MNT/AAPL/$K.parquet" >"$TEST_DIR/reader" 2>&1 3>&- 5>&- <<'PY' &
import errno, signal, sys
signal.signal(signal.SIGALRM, lambda s, f: None)
signal.setitimer(signal.ITIMER_REAL, 0.3, 0.3)
try:
    open(sys.argv[1], "rb")
    print("opened")
except OSError as e:
    print(errno.errorcode[e.errno])
PY
	reader=$!
	for ((i = 0; i < READY_TIMEOUT * 10; i++)); do
		kill -0 "$reader" 2>/dev/null || break
		sleep 0.1
	done
	tail -c +11 "$DATA/src.parquet" >&5
	exec 5>&-
	wait "$reader"
	[ "$(cat "$TEST_DIR/reader")" = ETIMEDOUT ]
	[ "$(stats_get "['singleflight']['waits']")" = 1 ]
	[ "$(stats_get "['singleflight']['timeouts']")" = 1 ]
	sleep 1.5 # past the window a retry has: no wait left to end
	[ "$(stats_get "['singleflight']['lock_wait_seconds']['count']")" = 1 ]
}

@test "16 keys, 5 racing workers each: one computation per key, nothing lost" {
	mount_store
	mkdir "$MNT/AAPL"
	make_parquet "$DATA/src.parquet" 20000
	want=$(sha256sum <"$DATA/src.parquet" | cut -c1-64)
	rm -rf "$TEST_DIR/gate" && mkdir "$TEST_DIR/gate"
	pids=()
	for k in $(seq 16); do
		for w in $(seq 5); do
			python3 "$FEATUREFS_TOOLS/claim_or_wait.py" "$MNT/AAPL/$(key_of k$k).parquet" \
				"$DATA/src.parquet" 0.005 "$TEST_DIR/gate" >"$TEST_DIR/k$k.w$w" 2>&1 3>&- &
			pids+=($!)
		done
	done
	open_gate 80
	for p in "${pids[@]}"; do wait "$p" || true; done
	for k in $(seq 16); do
		[ "$(cat "$TEST_DIR"/k$k.w* | grep -c '^computed$')" = 1 ]
		[ "$(cat "$TEST_DIR"/k$k.w* | grep -c "^read $want$")" = 4 ]
	done
	[ "$(manifest_sql "select count(*) from entries where state='published'")" = 16 ]
	[ "$(ls "$MNT/AAPL" | wc -l)" = 16 ]
}

@test "featurefs lock-key prints SHA-256-derived signed 64-bit ids" {
	expect() {
		local hex
		hex=$(printf '%s' "$1" | sha256sum | cut -c1-16)
		echo $((16#$hex))
	}
	# an entry's path under a mount names the same lock
	run "$FEATUREFS" lock-key "AAPL/$K" "MSFT/0123456789abcdef" "/features/AAPL/$K.parquet"
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = "$(expect "AAPL/$K")" ]
	[ "${lines[1]}" = "$(expect MSFT/0123456789abcdef)" ]
	[ "${lines[2]}" = "$(expect "AAPL/$K")" ]
	# both signs occur: the top bit is the sign
	run "$FEATUREFS" lock-key $(for k in a b c d e f g h; do echo "S/$(key_of $k)"; done)
	[ "$status" -eq 0 ]
	[[ "$output" == *-* ]]
	run "$FEATUREFS" lock-key
	[ "$status" -eq 2 ]
	# what names no entry is refused, not hashed
	for bad in AAPL "" ../x "AAPL/ab" "AAPL/$K.csv" "a b/$K"; do
		run "$FEATUREFS" lock-key "$bad"
		[ "$status" -eq 2 ]
		[[ "$output" == *"is not SYMBOL/KEY or a path ending in SYMBOL/KEY.parquet"* ]]
	done
}
