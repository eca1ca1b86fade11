#!/usr/bin/env bats
# stress.bats - everything at once for a bounded time (issue 12): writers
# (create and scratch-then-rename), readers, listers, unlinks, writers
# killed mid-write, GC passes through the mount and featurefs stats, on a
# few hundred keys.  Afterwards every published entry reads back whole and
# matches its checksum (content vs user.featurefs.sha256 vs the manifest),
# the manifest and the objects agree (fsck -n and --verify exit 0 after
# unmount), and no descriptor or tmp file leaked.  Last, one GC pass over
# hundreds of idle entries, mounted and not, whose unlinks run in parallel.
#
#   FEATUREFS_STRESS_SECONDS  how long the load runs (default 20; the
#                             issue's full run is 60)
#   FEATUREFS_STRESS_KEYS     how many keys (default 300)
#
# Any failure of the load itself (a partial read, a wrong checksum, an
# errno a client must never see) is printed with the operation that saw it.

load helpers

setup() {
	setup_store
	SECONDS_RUN=${FEATUREFS_STRESS_SECONDS:-20}
	NKEYS=${FEATUREFS_STRESS_KEYS:-300}
}

teardown() {
	teardown_store
}

fd_count() {
	ls "/proc/$DAEMON_PID/fd" | wc -l
}

# write_driver: the load generator and the checker, as one Python file.
write_driver() {
	cat >"$TEST_DIR/stress.py" <<'PY'
"""stress.py run|verify MNT SRCDIR SECONDS NKEYS FEATUREFS

Key i lives in symbol SYMS[i % 3] and always holds source i % 3, so any
successful read of it must be exactly that source."""
import errno, hashlib, json, os, random, signal, subprocess, sys, time
import urllib.request
from multiprocessing import Process, Queue

SYMS = ["AAPL", "MSFT", "BRK.B"]
mnt, srcdir, seconds, nkeys, featurefs = sys.argv[2:7]
seconds, nkeys = float(seconds), int(nkeys)
srcs = [open(os.path.join(srcdir, "s%d.parquet" % j), "rb").read() for j in range(3)]
shas = [hashlib.sha256(s).hexdigest() for s in srcs]


def key(i):
    return hashlib.sha256(b"stress-%d" % i).hexdigest()


def path(i):
    return os.path.join(mnt, SYMS[i % 3], key(i) + ".parquet")


def name(e):
    return errno.errorcode.get(e.errno, str(e.errno))


class Role:
    def __init__(self, role, q):
        self.role, self.q = role, q
        self.counts, self.bad = {}, []
        self.rng = random.Random(os.getpid())

    def count(self, what):
        self.counts[what] = self.counts.get(what, 0) + 1

    def fail(self, what):
        if len(self.bad) < 20:
            self.bad.append(what)
        self.count("UNEXPECTED")

    def done(self):
        self.q.put((self.role, self.counts, self.bad))


def write_all(fd, data, rng):
    for off in range(0, len(data), 65536):
        os.write(fd, data[off:off + 65536])
        if rng.random() < 0.05:
            time.sleep(0.01)


def writer(r, deadline):
    while time.time() < deadline:
        i = r.rng.randrange(nkeys)
        try:
            fd = os.open(path(i), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except OSError as e:
            if e.errno == errno.EEXIST:
                r.count("exists")
            else:
                r.fail("create %s: %s" % (key(i)[:8], name(e)))
            continue
        try:
            write_all(fd, srcs[i % 3], r.rng)
        except OSError as e:
            r.fail("write %s: %s" % (key(i)[:8], name(e)))
        try:
            os.close(fd)
            r.count("published")
        except OSError as e:
            if e.errno == errno.EIO:
                r.count("discarded")  # by an unlinker, checked below
            else:
                r.fail("close %s: %s" % (key(i)[:8], name(e)))


def scratch_writer(r, deadline):
    n = 0
    while time.time() < deadline:
        i = r.rng.randrange(nkeys)
        # half in a scratch directory, under the entry's own name, as
        # rsync --delay-updates writes
        d = None
        if r.rng.random() < 0.5:
            d = os.path.join(mnt, SYMS[i % 3], ".d.%d" % os.getpid())
            try:
                os.mkdir(d, 0o700)
            except FileExistsError:
                pass
            except OSError as e:
                r.fail("mkdir %s: %s" % (d, name(e)))
                continue
            tmp = os.path.join(d, os.path.basename(path(i)))
        else:
            tmp = os.path.join(mnt, SYMS[i % 3],
                               ".up.%d.%d" % (os.getpid(), n))
        n += 1
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            write_all(fd, srcs[i % 3], r.rng)
            os.close(fd)
        except OSError as e:
            if d and e.errno == errno.ENOENT:
                r.count("scratch expired")  # an idle empty directory
            else:
                r.fail("scratch %s: %s" % (tmp, name(e)))
            continue
        try:
            os.rename(tmp, path(i))
            r.count("renamed")
        except OSError as e:
            if e.errno == errno.EEXIST:
                r.count("exists")
            elif e.errno == errno.ENOENT:
                r.count("scratch expired")  # an idle scratch file GC took
                continue
            else:
                r.fail("rename to %s: %s" % (key(i)[:8], name(e)))
            try:
                os.unlink(tmp)
            except OSError as e:
                r.fail("unlink scratch: %s" % name(e))
        if d and r.rng.random() < 0.3:
            rmdir_scratch(r, d)
    for s in SYMS:
        rmdir_scratch(r, os.path.join(mnt, s, ".d.%d" % os.getpid()))


def rmdir_scratch(r, d):
    try:
        os.rmdir(d)
    except OSError as e:
        if e.errno != errno.ENOENT:
            r.fail("rmdir %s: %s" % (d, name(e)))


def reader(r, deadline):
    while time.time() < deadline:
        i = r.rng.randrange(nkeys)
        try:
            with open(path(i), "rb") as f:
                data = f.read()
        except OSError as e:
            if e.errno == errno.ENOENT:
                r.count("miss")
            else:
                r.fail("read %s: %s" % (key(i)[:8], name(e)))
            continue
        if hashlib.sha256(data).hexdigest() != shas[i % 3]:
            r.fail("read %s: %d bytes that are not its content (want %d)"
                   % (key(i)[:8], len(data), len(srcs[i % 3])))
        else:
            r.count("hit")
        try:
            x = os.getxattr(path(i), "user.featurefs.sha256").decode()
            if x != shas[i % 3]:
                r.fail("xattr %s: %s" % (key(i)[:8], x))
        except OSError as e:
            if e.errno not in (errno.ENOENT, errno.ENODATA):
                r.fail("getxattr %s: %s" % (key(i)[:8], name(e)))


def lister(r, deadline):
    while time.time() < deadline:
        for s in SYMS:
            try:
                names = os.listdir(os.path.join(mnt, s))
            except OSError as e:
                r.fail("listdir %s: %s" % (s, name(e)))
                continue
            r.count("listed")
            for n in names[:20]:
                try:
                    os.stat(os.path.join(mnt, s, n))
                except OSError as e:
                    if e.errno != errno.ENOENT:
                        r.fail("stat %s: %s" % (n, name(e)))
        time.sleep(0.05)


def unlinker(r, deadline):
    while time.time() < deadline:
        i = r.rng.randrange(nkeys)
        try:
            os.unlink(path(i))
            r.count("unlinked")
        except OSError as e:
            if e.errno in (errno.ENOENT, errno.EBUSY):
                r.count(name(e))
            else:
                r.fail("unlink %s: %s" % (key(i)[:8], name(e)))
        time.sleep(0.02)


def killed_writer(r, deadline):
    """A writer dies (SIGKILL) halfway through its data."""
    while time.time() < deadline:
        i = r.rng.randrange(nkeys)
        rd, wr = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(rd)
            try:
                fd = os.open(path(i), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
                data = srcs[i % 3]
                os.write(fd, data[:len(data) // 2])
                os.write(wr, b"w")
            except OSError:
                os.write(wr, b"x")
            time.sleep(60)
            os._exit(0)
        os.close(wr)
        got = os.read(rd, 1)
        os.close(rd)
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        r.count("killed" if got == b"w" else "not claimed")
        time.sleep(0.1)


def run_cmd(r, what, args):
    p = subprocess.run(args, capture_output=True, text=True)
    if p.returncode != 0:
        r.fail("%s: exit %d: %s" % (what, p.returncode, p.stderr.strip()[:200]))
        return None
    r.count(what)
    return p.stdout


def gc_loop(r, deadline):
    while time.time() < deadline:
        if r.rng.random() < 0.3:
            args = [featurefs, "gc", "--older-than", "2s", "--max-size", "1M", "--json", mnt]
        else:
            args = [featurefs, "gc", "--older-than", "2s", "--json", mnt]
        out = run_cmd(r, "gc", args)
        if out is not None:
            try:
                json.loads(out)
            except ValueError:
                r.fail("gc --json: not JSON: %r" % out[:200])
        time.sleep(0.5)


def stats_loop(r, deadline):
    while time.time() < deadline:
        out = run_cmd(r, "stats", [featurefs, "stats", "--json", mnt])
        try:
            if out is not None:
                json.loads(out)
            for f in ("stats.json", "health"):
                with open(os.path.join(mnt, ".featurefs", f)) as fh:
                    json.loads(fh.read())
            for f in ("stats", "metrics"):
                with open(os.path.join(mnt, ".featurefs", f)) as fh:
                    fh.read()
            # and the HTTP endpoint, from libmicrohttpd's thread
            with open(os.path.join(mnt, ".featurefs", "config")) as fh:
                where = [l.split(" = ")[1].strip() for l in fh
                         if l.startswith("metrics = ")][0]
            for path in ("/metrics", "/health/ready"):
                with urllib.request.urlopen("http://%s%s" % (where, path),
                                            timeout=30) as resp:
                    if resp.status != 200:
                        r.fail("GET %s: %d" % (path, resp.status))
                    resp.read()
        except (OSError, ValueError, IndexError) as e:
            r.fail("stats: %s" % e)
        time.sleep(0.3)


# STRESS_LOAD: basic (create, read, list, GC, stats), full (and unlinks
# and writers killed mid-write), scratch (and scratch-file renames)
LOAD = os.environ.get("STRESS_LOAD", "full")
ROLES = [("writer", writer, 3), ("reader", reader, 3), ("lister", lister, 1),
         ("gc", gc_loop, 1), ("stats", stats_loop, 1)]
if LOAD in ("full", "scratch"):
    ROLES += [("unlinker", unlinker, 1), ("killed", killed_writer, 1)]
if LOAD == "scratch":
    ROLES += [("scratch", scratch_writer, 2)]


def run():
    deadline = time.time() + seconds
    q = Queue()
    procs = []

    def body(role, fn):
        r = Role(role, q)
        try:
            fn(r, deadline)
        except Exception as e:  # a bug in the driver is a failure too
            r.fail("%s crashed: %r" % (role, e))
        r.done()

    for role, fn, n in ROLES:
        for _ in range(n):
            p = Process(target=body, args=(role, fn))
            p.start()
            procs.append(p)
    results = [q.get(timeout=seconds + 600) for _ in procs]
    for p in procs:
        p.join()
    total, bad = {}, []
    for role, counts, b in results:
        for k, v in counts.items():
            total["%s %s" % (role, k)] = total.get("%s %s" % (role, k), 0) + v
        bad += b
    for k in sorted(total):
        print("%-28s %d" % (k, total[k]))
    for b in bad:
        print("FAIL", b)
    ok = not bad and total.get("writer published", 0) > 0 \
        and total.get("reader hit", 0) > 0 and total.get("gc gc", 0) > 0
    return 0 if ok else 1


def verify():
    """Every entry the mount lists is whole and carries its checksum."""
    bad = n = 0
    for s in SYMS:
        for e in sorted(os.listdir(os.path.join(mnt, s))):
            if e.startswith("."):
                print("FAIL scratch file left: %s/%s" % (s, e))
                bad += 1
                continue
            i = None
            for j in range(nkeys):
                if key(j) + ".parquet" == e:
                    i = j
                    break
            if i is None or SYMS[i % 3] != s:
                print("FAIL unknown entry %s/%s" % (s, e))
                bad += 1
                continue
            p = path(i)
            data = open(p, "rb").read()
            x = os.getxattr(p, "user.featurefs.sha256").decode()
            got = hashlib.sha256(data).hexdigest()
            if not (got == x == shas[i % 3]):
                print("FAIL %s/%s: content %s xattr %s want %s" % (s, e, got, x, shas[i % 3]))
                bad += 1
            n += 1
            print("%s/%s %s" % (s, key(i), x))
    return 1 if bad else 0


sys.exit(run() if sys.argv[1] == "run" else verify())
PY
}

# stress LOAD: run the load (basic, full or scratch: see STRESS_LOAD in
# the driver), then check everything.
stress() {
	make_parquet "$DATA/s0.parquet" 1000 1
	make_parquet "$DATA/s1.parquet" 20000 2
	make_parquet "$DATA/s2.parquet" 3000 3
	write_driver
	mount_store -o metrics=127.0.0.1:0
	mkdir "$MNT/AAPL" "$MNT/MSFT" "$MNT/BRK.B"
	# warm up every path once, so the baseline holds what they keep open
	cp "$DATA/s0.parquet" "$MNT/AAPL/$(key_of warm).parquet"
	wait_published "$MNT/AAPL/$(key_of warm).parquet"
	cat "$MNT/AAPL/$(key_of warm).parquet" "$MNT/.featurefs/stats.json" >/dev/null
	"$FEATUREFS" gc --older-than 4w "$MNT" >/dev/null
	"$FEATUREFS" stats "$MNT" >/dev/null
	rm "$MNT/AAPL/$(key_of warm).parquet"
	fds_before=$(fd_count)

	run env STRESS_LOAD="$1" python3 "$TEST_DIR/stress.py" run "$MNT" "$DATA" \
		"$SECONDS_RUN" "$NKEYS" "$FEATUREFS"
	echo "$output" >&2
	[ "$status" -eq 0 ]
	kill -0 "$DAEMON_PID"
	# a writer's close of valid data fails only when an unlinker
	# removed the key in flight
	discarded=$(awk '$1 == "writer" && $2 == "discarded" { print $3 }' <<<"$output")
	[ "$(grep -c "its write was discarded: unlinked while being written" "$TEST_DIR/daemon.log")" -ge "${discarded:-0}" ]

	# the last releases are asynchronous: let the daemon settle
	for ((i = 0; i < READY_TIMEOUT * 10; i++)); do
		if [ -z "$(ls -A "$STORE/tmp")" ] &&
			[ "$(manifest_sql "select count(*) from entries where state = 'writing'")" = 0 ] &&
			[ "$(fd_count)" -le "$fds_before" ]; then
			break
		fi
		sleep 0.1
	done
	# no leaked descriptors, tmp files or unfinished rows
	echo "daemon fds: $fds_before before, $(fd_count) after" >&2
	[ "$(fd_count)" = "$fds_before" ] || { ls -l "/proc/$DAEMON_PID/fd" >&2; false; }
	[ -z "$(ls -A "$STORE/tmp")" ]
	[ "$(manifest_sql "select count(*) from entries where state = 'writing'")" = 0 ]
	[ "$(stats_get "['in_flight']")" = 0 ]

	# every entry the mount lists is whole, with its checksum; the
	# manifest holds exactly those, with the same checksums
	run python3 "$TEST_DIR/stress.py" verify "$MNT" "$DATA" 0 "$NKEYS" "$FEATUREFS"
	[ "$status" -eq 0 ] || { echo "$output" >&2; false; }
	sort <<<"$output" >"$TEST_DIR/listed"
	manifest_sql "select symbol || '/' || key || ' ' || sha256 from entries where state = 'published'" |
		sort >"$TEST_DIR/rows"
	diff "$TEST_DIR/listed" "$TEST_DIR/rows"
	echo "$(wc -l <"$TEST_DIR/rows") entries published at the end" >&2

	unmount_store
	run "$FEATUREFS" fsck -n --verify "$STORE"
	echo "$output" >&2
	[ "$status" -eq 0 ]
	[ -z "$(ls -A "$STORE/tmp")" ]
	# objects/ holds exactly the rows' objects
	(cd "$STORE" && find objects -type f | sort) >"$TEST_DIR/objects"
	manifest_sql "select path from entries" | sort >"$TEST_DIR/paths"
	diff "$TEST_DIR/objects" "$TEST_DIR/paths"
}

@test "writers, readers, listers, GC and stats at once: nothing partial, nothing leaked" {
	stress basic
}

@test "and unlinks and writers killed mid-write: nothing partial, nothing leaked" {
	stress full
}

@test "and scratch-file renames, from scratch directories too: no publish ever meets the object of a row being removed" {
	stress scratch
	# a publish never found the object of a row being removed
	refute log_has "exists without a manifest row"
	refute log_has "had no manifest row"
}

# beside_gc_loop SCRIPT: three clients running SCRIPT MNT/AAPL SRC TAG 8
# while a loop of featurefs gc --older-than 1ms runs through the mount
# for 8 s; fails if any of them does.
beside_gc_loop() {
	local pids=() p
	for p in 1 2 3; do
		python3 "$1" "$MNT/AAPL" "$DATA/a.parquet" "c$p" 8 3>&- &
		pids+=($!)
	done
	(
		end=$((SECONDS + 8))
		while [ "$SECONDS" -lt "$end" ]; do
			"$FEATUREFS" gc --older-than 1ms "$MNT" >/dev/null || exit 1
		done
	) 3>&- &
	pids+=($!)
	for p in "${pids[@]}"; do wait "$p"; done
}

@test "GC expiring idle scratch files while renames publish them: one or the other, never both" {
	mount_store
	mkdir "$MNT/AAPL"
	make_parquet "$DATA/a.parquet" 20000
	# renamers leave each scratch file idle for a moment; a gc loop with
	# --older-than 1ms expires what it finds idle, renames in flight too
	cat >"$TEST_DIR/rename.py" <<'PY'
import errno, hashlib, os, sys, time
d, src, tag, seconds = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
data, n, end = open(src, "rb").read(), 0, time.time() + seconds
while time.time() < end:
    n += 1
    tmp = f"{d}/.scratch-{tag}"
    key = hashlib.sha256(f"{tag}-{n}".encode()).hexdigest()
    try:
        with open(tmp, "wb") as f:
            f.write(data)
        time.sleep(0.01 + n % 7 * 0.003)
        os.rename(tmp, f"{d}/{key}.parquet")
    except OSError as e:
        if e.errno != errno.ENOENT:  # expired first: the rename finds nothing
            sys.exit(f"{tag}: {os.strerror(e.errno)}")
PY
	beside_gc_loop "$TEST_DIR/rename.py"
	kill -0 "$DAEMON_PID"
	unmount_store
	refute grep -E "corrupted|double free|Sanitizer" "$TEST_DIR/daemon.log"
	run "$FEATUREFS" fsck -n "$STORE"
	[ "$status" -eq 0 ]
}

@test "unlinks beside a gc loop removing the same entries: done or ENOENT, never EBUSY" {
	mount_store
	mkdir "$MNT/AAPL"
	make_parquet "$DATA/a.parquet" 1000
	cat >"$TEST_DIR/unlink.py" <<'PY'
import errno, hashlib, os, sys, time
d, src, tag, seconds = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
data, n, end = open(src, "rb").read(), 0, time.time() + seconds
while time.time() < end:
    n += 1
    names = [f"{d}/{hashlib.sha256(f'{tag}-{n}-{j}'.encode()).hexdigest()}.parquet"
             for j in range(40)]
    for p in names:
        with open(p, "xb") as f:
            f.write(data)
    time.sleep(0.005)
    for p in names:
        try:
            os.unlink(p)
        except OSError as e:  # what rm -f does not take as done
            if e.errno != errno.ENOENT:
                sys.exit(f"unlink: {os.strerror(e.errno)}")
PY
	beside_gc_loop "$TEST_DIR/unlink.py"
	refute log_has "busy (being removed elsewhere)"
}

# clone_idle N: N more published rows cloned from the one entry of
# AAPL, spread over AAPL, MSFT and IBM, never read (access time 1 µs after
# the epoch), each with a hard link of the entry's object.
clone_idle() {
	local tmpl
	tmpl=$(manifest_sql "select path from entries limit 1")
	sqlite3 "$STORE/manifest.db" "
		WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < $1),
		k(x, sym, key) AS (SELECT x, CASE x % 3 WHEN 0 THEN 'AAPL' WHEN 1 THEN 'MSFT'
			ELSE 'IBM' END, printf('%064x', x) FROM c)
		INSERT INTO entries (symbol, key, path, state, start_ts, end_ts, rows,
			file_size_bytes, stored_size_bytes, compression, hash_method,
			sha256, created_ts, last_accessed_ts, access_count, writer,
			mtime_ns, mode)
		SELECT k.sym, k.key, 'objects/' || k.sym || '/' || k.key || '.parquet',
			state, start_ts, end_ts, rows, file_size_bytes,
			stored_size_bytes, compression, hash_method, sha256, 1, 1, 0,
			writer, mtime_ns, mode
		FROM k, (SELECT * FROM entries LIMIT 1)"
	mkdir -p "$STORE/objects/AAPL" "$STORE/objects/MSFT" "$STORE/objects/IBM"
	manifest_sql "select path from entries where last_accessed_ts = 1" |
		while read -r p; do ln "$STORE/$tmpl" "$STORE/$p"; done
}

@test "GC removes hundreds of idle entries over several symbols, unlinking in parallel" {
	mount_store
	mkdir "$MNT/AAPL" "$MNT/MSFT" "$MNT/IBM"
	make_parquet "$DATA/a.parquet"
	cp "$DATA/a.parquet" "$MNT/AAPL/$(key_of kept).parquet"
	unmount_store
	for where in mount store; do
		clone_idle 600
		if [ "$where" = mount ]; then
			mount_store
			ls -l "$MNT/MSFT" >/dev/null # nodes for the kernel to forget
			run "$FEATUREFS" gc --older-than 30d --json "$MNT"
		else
			run "$FEATUREFS" gc --older-than 30d --json "$STORE"
		fi
		[ "$status" -eq 0 ]
		removed=$(python3 -c "import json,sys; print(json.load(sys.stdin)['removed_entries'])" <<<"$output")
		[ "$removed" = 600 ]
		if [ "$where" = mount ]; then
			[ -z "$(ls -A "$MNT/MSFT")" ] && [ -z "$(ls -A "$MNT/IBM")" ]
			unmount_store
		fi
		[ "$(manifest_sql "select count(*) from entries")" = 1 ]
		[ "$(find "$STORE/objects" -type f | wc -l)" = 1 ]
		run "$FEATUREFS" fsck -n "$STORE"
		[ "$status" -eq 0 ]
	done
}

# churn.py MNT/DIR SRC: 24 processes creating keys in DIR (half of them
# unlinked while being written), stat-ing, reading and listing it, until
# the mount goes away.
write_churn() {
	cat >"$TEST_DIR/churn.py" <<'PY'
import os, random, sys
d, src = sys.argv[1], open(sys.argv[2], "rb").read()
root = os.path.dirname(d)
kids = []
for k in range(24):
    pid = os.fork()
    if pid == 0:
        rng = random.Random(k)
        n = 0
        while n % 64 or os.path.ismount(root):
            n += 1
            p = os.path.join(d, "churnkey%03d.parquet" % rng.randrange(400))
            op = rng.randrange(4)
            try:
                if op == 0:
                    fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
                    os.write(fd, src[:50])
                    if rng.random() < 0.5:
                        os.unlink(p)
                    os.write(fd, src[50:])
                    os.close(fd)
                elif op == 1:
                    os.stat(p)
                elif op == 2:
                    with open(p, "rb") as f:
                        f.read()
                else:
                    os.listdir(d)
            except OSError:
                pass
        os._exit(0)
    kids.append(pid)
for pid in kids:
    os.waitpid(pid, 0)
PY
}

# The daemon's invalidation of a name waits in the kernel for its
# directory's lock, which a LOOKUP there may hold while nobody will
# answer it: one that came in as the loop stopped, or any, once the
# daemon is killed.  Neither the daemon nor its clients may hang.
@test "a daemon stopped or killed while it invalidates names under lookups: gone, and its clients freed" {
	make_parquet "$DATA/a.parquet" 200000 1
	write_churn
	for sig in TERM KILL TERM KILL; do
		mount_store -o gc_interval=1s,gc_older_than=1s
		mkdir -p "$MNT/KH"
		python3 "$TEST_DIR/churn.py" "$MNT/KH" "$DATA/a.parquet" 3>&- &
		churn=$!
		sleep 4 # GC starts 2 s after mount
		kill -"$sig" "$DAEMON_PID"
		if ! wait_daemon_gone; then
			echo "SIG$sig: the daemon hangs" >&2
			abort_connection
			wait "$churn"
			false
		fi
		wait "$churn"
		fusermount3 -uz "$MNT" 2>/dev/null || true
	done
}

@test "a write-open with O_TRUNC racing the rename that publishes the file never empties the entry" {
	mount_store
	mkdir "$MNT/TR"
	make_parquet "$DATA/a.parquet" 20000
	# the open resolves the name before the rename (an O_PATH descriptor
	# taken first), as any open racing a rename may
	run python3 - "$MNT/TR" "$DATA/a.parquet" <<'PY'
import hashlib, os, random, subprocess, sys, threading, time
sym, src = sys.argv[1:]
data = open(src, "rb").read()
bad = outcomes = 0
for i in range(150):
    key = hashlib.sha256(f"tr-{i}".encode()).hexdigest()
    scratch = f"{sym}/.scr{i}"
    fd = os.open(scratch, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o644)
    os.write(fd, data)
    os.close(fd)
    pfd = os.open(scratch, os.O_PATH | os.O_CLOEXEC)
    res = {}
    def rename():
        try:
            os.rename(scratch, f"{sym}/{key}.parquet")
            res["rename"] = 0
        except OSError as e:
            res["rename"] = e.errno
    def truncate():
        time.sleep(random.random() * 0.004)
        try:
            os.close(os.open(f"/proc/self/fd/{pfd}", os.O_WRONLY | os.O_TRUNC | os.O_CLOEXEC))
            res["open"] = 0
        except OSError as e:
            res["open"] = e.errno
    threads = [threading.Thread(target=rename), threading.Thread(target=truncate)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    os.close(pfd)
    if res["rename"] == 0 and subprocess.run(["cmp", "-s", src, f"{sym}/{key}.parquet"]).returncode:
        bad += 1
        print(f"{i}: published, open {res['open']}: the entry differs", flush=True)
print(f"{bad} damaged")
PY
	echo "$output" >&2
	[ "${lines[-1]}" = "0 damaged" ]
	unmount_store
	run "$FEATUREFS" fsck -n --verify "$STORE"
	[ "$status" -eq 0 ]
}

