# helpers.bash - what every featurefs bats suite shares.
#
# Each test gets its own store and mountpoint under a fresh temporary
# directory; teardown unmounts and removes it.  The daemon runs in the
# foreground (-f) in the background of the test, its log in $TEST_DIR.
#
# Environment (set by meson, see tests/meson.build):
#   FEATUREFS        the featurefs binary under test
#   FEATUREFS_TOOLS  tests/tools (DuckDB client, worker scripts)

: "${FEATUREFS:?FEATUREFS must point at the featurefs binary}"
: "${FEATUREFS_TOOLS:?FEATUREFS_TOOLS must point at tests/tools}"

# The interpreter itself, not a version-manager shim in front of it:
# tests start hundreds of Python processes.  Its directory goes first on
# PATH (not a shell function: `python3 ... &` must leave the interpreter's
# own pid in $!, for tests that kill it).
PYTHON3=${PYTHON3:-$(command python3 -c 'import sys; print(sys.executable)')}
PATH="$(dirname "$PYTHON3"):$PATH"

# A readiness wait, never a timing assertion: how long to wait for a
# daemon to come up or go away before calling it broken.
READY_TIMEOUT=${READY_TIMEOUT:-30}

require_fuse() {
	[ -c /dev/fuse ] || skip "no /dev/fuse"
	command -v fusermount3 >/dev/null || skip "no fusermount3"
}

# require_faults: skip unless the build honours FEATUREFS_FAULT.
require_faults() {
	[ -n "${FEATUREFS_FAULT_INJECTION:-}" ] ||
		skip "needs a -Dfault_injection=true build"
}

setup_store() {
	require_fuse
	TEST_DIR=$(mktemp -d "${TMPDIR:-/tmp}/featurefs-test.XXXXXX")
	STORE=$TEST_DIR/store
	MNT=$TEST_DIR/mnt
	DATA=$TEST_DIR/data
	mkdir -p "$MNT" "$DATA"
	DAEMON_PID=
}

# mount_store [-o OPTS]...: mount $STORE on $MNT in the foreground.
mount_store() {
	"$FEATUREFS" "$STORE" "$MNT" -f -o gc_interval=0 "$@" \
		>>"$TEST_DIR/daemon.log" 2>&1 3>&- &
	DAEMON_PID=$!
	wait_mounted
}

wait_mounted() {
	local i
	for ((i = 0; i < READY_TIMEOUT * 10; i++)); do
		if mountpoint -q "$MNT"; then
			return 0
		fi
		if [ -n "$DAEMON_PID" ] && ! kill -0 "$DAEMON_PID" 2>/dev/null; then
			echo "daemon exited; its log:" >&2
			cat "$TEST_DIR/daemon.log" >&2
			return 1
		fi
		sleep 0.1
	done
	echo "mount did not appear" >&2
	return 1
}

# unmount_store: umount and wait for the daemon to finish its teardown.
unmount_store() {
	if mountpoint -q "$MNT"; then
		fusermount3 -u "$MNT" || fusermount3 -uz "$MNT"
	fi
	wait_daemon_gone
}

wait_daemon_gone() {
	local i alive=0
	[ -n "$DAEMON_PID" ] || return 0
	for ((i = 0; i < READY_TIMEOUT * 10; i++)); do
		kill -0 "$DAEMON_PID" 2>/dev/null || break
		sleep 0.1
	done
	# a process that cannot finish dying would hold `wait` forever
	kill -0 "$DAEMON_PID" 2>/dev/null && alive=1
	[ "$alive" -eq 1 ] || wait "$DAEMON_PID" 2>/dev/null || true
	DAEMON_PID=
	[ "$alive" -eq 0 ]
}

# daemon_gone_detach: once the daemon dies or stops by itself (a fault
# injection, a signal), wait for it and detach the mount it left.
daemon_gone_detach() {
	wait_daemon_gone
	fusermount3 -uz "$MNT" 2>/dev/null || true
}

# kill_daemon: kill -9 the daemon and clean up the dead mount.
kill_daemon() {
	kill -9 "$DAEMON_PID"
	wait "$DAEMON_PID" 2>/dev/null || true
	DAEMON_PID=
	fusermount3 -uz "$MNT" 2>/dev/null || umount -l "$MNT" 2>/dev/null || true
}

# abort_connection: what `umount -f` does to the FUSE connection of the
# mount at $MNT, so that a test that found the daemon hung can go on.
abort_connection() {
	local c
	for c in $(awk -v m="$MNT" '$5 == m { split($3, d, ":"); print d[2] }' \
		/proc/self/mountinfo); do
		echo 1 >"/sys/fs/fuse/connections/$c/abort" || true
	done
}

teardown_store() {
	local sanitizer=0
	if [ -n "${TEST_DIR:-}" ]; then
		# a dead mount too, which mountpoint(1) cannot stat
		fusermount3 -uz "$MNT" 2>/dev/null || true
		if [ -n "$DAEMON_PID" ]; then
			kill "$DAEMON_PID" 2>/dev/null || true
			# one a failed test left stalled (fault injection)
			# does not stop on SIGTERM
			local pid=$DAEMON_PID
			wait_daemon_gone || { kill -9 "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; } || true
		fi
		# a sanitizer build reports into the daemon's log: any report
		# fails the test that caused it
		if grep -Eq 'ERROR: (Address|Leak)Sanitizer|WARNING: ThreadSanitizer|runtime error:' \
			"$TEST_DIR/daemon.log" 2>/dev/null; then
			sanitizer=1
			cat "$TEST_DIR/daemon.log" >&2
		fi
		if [ -n "${BATS_TEST_COMPLETED:-}" ] || [ -z "${KEEP_FAILED:-}" ]; then
			rm -rf "$TEST_DIR"
		else
			echo "kept $TEST_DIR" >&2
		fi
	fi
	[ "$sanitizer" -eq 0 ]
}

# make_parquet OUT [ROWS] [SEED]: a DuckDB-written tick-like file.  The
# same (ROWS, SEED) always gives the same bytes, so files are made once per
# run and copied (starting node and DuckDB costs more than the test).
make_parquet() {
	local cache=${FEATUREFS_TEST_CACHE:-${TMPDIR:-/tmp}/featurefs-test-cache.$(id -u)}
	local f="$cache/${2:-1000}-${3:-1}.parquet"
	if [ ! -f "$f" ]; then
		mkdir -p "$cache"
		node "$FEATUREFS_TOOLS/duck.mjs" make "$f.$$" --rows "${2:-1000}" --seed "${3:-1}" &&
			mv "$f.$$" "$f"
	fi
	cp "$f" "$1"
}

duck_sql() {
	node "$FEATUREFS_TOOLS/duck.mjs" sql "$1"
}

# A valid key (SHA-256 hex of a string).
key_of() {
	printf '%s' "$1" | sha256sum | cut -c1-64
}

# wait_published PATH: block until an entry is published (a read-open
# waits while it is in flight), so manifest checks see the final state.
wait_published() {
	head -c 0 "$1"
}

# publish_file SYMBOL KEY FILE: write FILE as an entry through the mount
# and wait until it is published.
publish_file() {
	mkdir -p "$MNT/$1"
	cp "$3" "$MNT/$1/$2.parquet"
	wait_published "$MNT/$1/$2.parquet"
}

# write_entry PATH SOURCE: create PATH exclusively, write SOURCE in 64 KiB
# chunks, close; prints "ok", or "<call> <ERRNO>" for the first failing
# call (open, write, close).  With HOLE=N in the environment the file is
# sparse instead: SOURCE's first 4 bytes at 0, the rest at offset N
# (cheap to declare a huge size without writing it).  With PARTS="A:B
# C:D ..." only those slices of SOURCE (Python's: "-300000:" is the
# last 300000 bytes) are written, each at its own offset, in that order,
# as a download in parts writes them.
write_entry() {
	python3 - "$1" "$2" <<'PY'
import errno, os, sys
path, src = sys.argv[1:]
hole = int(os.environ.get("HOLE", "0"))
parts = os.environ.get("PARTS", "").split()
step = "open"
try:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    step = "write"
    if hole:
        data = open(src, "rb").read()
        os.pwrite(fd, data[:4], 0)
        os.pwrite(fd, data[4:], hole)
    elif parts:
        data = open(src, "rb").read()
        for part in parts:
            s = slice(*(int(x) if x else None for x in part.split(":")))
            os.pwrite(fd, data[s], s.indices(len(data))[0])
    else:
        with open(src, "rb") as f:
            while True:
                chunk = f.read(65536)
                if not chunk:
                    break
                os.write(fd, chunk)
    step = "close"
    os.close(fd)
    print("ok")
except OSError as e:
    print(step, errno.errorcode.get(e.errno, e.errno))
PY
}

# errno_of CMD...: run CMD and print the errno name its failure reported.
# Uses python3 so the errno is read from the system call, not parsed
# from a tool's message.
py() {
	python3 -c "$@"
}

# try_errno 'python expression doing one os call': prints OK or the
# errno name (ENOENT, EPERM, ...).
try_errno() {
	python3 - "$@" <<'PY'
import errno, os, sys
try:
    exec(sys.argv[1])
    print("OK")
except OSError as e:
    print(errno.errorcode.get(e.errno, str(e.errno)))
PY
}

# refute CMD...: fail when CMD succeeds.  A bare `! CMD` cannot: set -e
# ignores a negated command's status, so a test would go on past it.
refute() {
	! "$@"
}

# Count lines in the daemon log matching a pattern.
log_has() {
	grep -q -- "$1" "$TEST_DIR/daemon.log"
}

# manifest_sql SQL: query the SQLite manifest (read-only).
manifest_sql() {
	sqlite3 -readonly "$STORE/manifest.db" "$1"
}

# stat_json: the /.featurefs/stats.json value at a python path, e.g.
# stats_get "['symbols'][0]['hits']"
stats_get() {
	python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(d$1)" \
		"$MNT/.featurefs/stats.json"
}

# http_get PATH [METHOD]: "STATUS CONTENT-TYPE ALLOW" of a request to the
# mount's metrics endpoint, the body in $TEST_DIR/body.
http_get() {
	python3 - "$(sed -n 's/^metrics = //p' "$MNT/.featurefs/config")" "$1" "${2:-GET}" "$TEST_DIR/body" <<'PY'
import sys, urllib.error, urllib.request
where, path, method, out = sys.argv[1:]
req = urllib.request.Request(f"http://{where}{path}", method=method)
try:
    r = urllib.request.urlopen(req, timeout=30)
except urllib.error.HTTPError as e:
    r = e
open(out, "wb").write(r.read())
print(r.status, r.headers.get("Content-Type"), r.headers.get("Allow"))
PY
}
