#!/usr/bin/env bats
# faults.bats - crashes and failures through real mounts (SPEC §3 "crash at
# any point", issue 12): the daemon killed at each stage of a write, a
# writing client killed, a full store, the daemon out of descriptors,
# the manifest locked by another process, and the daemon under valgrind.  The promise checked each time:
# nothing partial is visible, every published entry survives with its
# checksum, fsck -n is clean after at most one fsck -p, and the key can be
# written again.
#
# Crash stages use the fault-injection hook (src/fault.h), compiled into
# test builds only (-Dfault_injection=true sets FEATUREFS_FAULT_INJECTION);
# without it those tests skip.

load helpers

setup() {
	setup_store
	K=$(key_of victim)
}

teardown() {
	if [ -n "${LOCKER_PID:-}" ]; then
		exec 7>&- 2>/dev/null || true
		kill "$LOCKER_PID" 2>/dev/null || true
		wait "$LOCKER_PID" 2>/dev/null || true
	fi
	teardown_store
	if [ -n "${SMALL:-}" ]; then
		umount "$SMALL" 2>/dev/null || umount -l "$SMALL" 2>/dev/null || true
		rm -rf "$SMALL" "$SMALL.img"
	fi
}

sha_of() {
	sha256sum <"$1" | cut -c1-64
}

# seed_store: publish three entries (in two symbols) and remember their
# sources in SEEDS ("symbol/key source" lines); leaves the store unmounted.
seed_store() {
	make_parquet "$DATA/s1.parquet" 1000 1
	make_parquet "$DATA/s2.parquet" 20000 1
	make_parquet "$DATA/s3.parquet" 2000 1
	mount_store
	mkdir "$MNT/AAPL" "$MNT/MSFT"
	SEEDS=
	local i sym k
	for i in 1 2 3; do
		sym=AAPL
		[ "$i" = 2 ] && sym=MSFT
		k=$(key_of "seed$i")
		cp "$DATA/s$i.parquet" "$MNT/$sym/$k.parquet"
		wait_published "$MNT/$sym/$k.parquet"
		SEEDS+="$sym/$k $DATA/s$i.parquet"$'\n'
	done
	unmount_store
}

# check_seeds: every seeded entry reads back whole, and its bytes hash to
# the sha256 its xattr and manifest row carry.
check_seeds() {
	local name src want
	while read -r name src; do
		[ -n "$name" ] || continue
		want=$(sha_of "$src")
		cmp "$src" "$MNT/$name.parquet"
		[ "$(getfattr --only-values -n user.featurefs.sha256 "$MNT/$name.parquet")" = "$want" ]
		[ "$(manifest_sql "select state || ' ' || sha256 from entries where symbol || '/' || key = '$name'")" = "published $want" ]
	done <<<"$SEEDS"
}

# start_slow_writer PATH SOURCE: a client that claims PATH and copies
# SOURCE into it slowly; its pid in $writer, its output in
# $TEST_DIR/writer.  Returns once more than 100 KiB of it reached tmp/.
start_slow_writer() {
	local i
	python3 "$FEATUREFS_TOOLS/claim_or_wait.py" "$1" "$2" 0.2 \
		>"$TEST_DIR/writer" 2>&1 3>&- &
	writer=$!
	for ((i = 0; i < READY_TIMEOUT * 10; i++)); do
		[ -n "$(find "$STORE/tmp" -type f -size +100k)" ] && return 0
		sleep 0.1
	done
	return 1
}

# fsck_clean: fsck -n exits 0, after at most one fsck -p (exit 0 or 1).
fsck_clean() {
	run "$FEATUREFS" fsck -n "$STORE"
	if [ "$status" -ne 0 ]; then
		echo "fsck -n before repair ($status): $output" >&2
		run "$FEATUREFS" fsck -p "$STORE"
		[ "$status" -le 1 ]
		run "$FEATUREFS" fsck -n "$STORE"
	fi
	[ "$status" -eq 0 ]
	run "$FEATUREFS" fsck -n --verify "$STORE"
	[ "$status" -eq 0 ]
}

# crash_at POINT[@N] KEY SOURCE [MOUNT ARGS...]: mount with POINT armed
# to crash (from its Nth hit on), write KEY; the daemon dies; its dead
# mount is unmounted with fusermount3 -u.
crash_at() {
	local point=${1%@*} nth=
	[[ "$1" == *@* ]] && nth=@${1#*@}
	FEATUREFS_FAULT="$point=crash$nth" mount_store "${@:4}"
	log_has "fault injection armed: $point=crash$nth"
	run write_entry "$MNT/AAPL/$2.parquet" "$3"
	# the client learns of the dead daemon at the call that was in
	# flight; the publish itself runs after close returned
	echo "client: $output" >&2
	case $point in
	tmp_write) [ "$output" = "write ENOTCONN" ] || [ "$output" = "write ECONNABORTED" ] ;;
	validate | tmp_fsync) [ "$output" = "close ENOTCONN" ] || [ "$output" = "close ECONNABORTED" ] ;;
	*) [ "$output" = ok ] ;;
	esac
	wait_daemon_gone # the mount stays, dead, for the test
	log_has "fault injection: crashing at $point"
	fusermount3 -u "$MNT"
	refute mountpoint -q "$MNT"
}

# The published state of KEY after recovery: "absent", or "complete" when
# it reads back whole as SOURCE with its checksum.
state_of() {
	local f=$MNT/AAPL/$1.parquet
	if [ ! -e "$f" ]; then
		echo absent
	elif cmp -s "$2" "$f" &&
		[ "$(getfattr --only-values -n user.featurefs.sha256 "$f")" = "$(sha_of "$2")" ]; then
		echo complete
	else
		echo "partial ($(stat -c %s "$f") bytes)"
	fi
}

# wait_discarded KEY: close(2) returned, and the release that discards an
# unpublished entry runs after it, asynchronously: wait until AAPL/KEY
# is gone from the mount, the manifest and tmp/.
wait_discarded() {
	local i
	for ((i = 0; i < READY_TIMEOUT * 10; i++)); do
		if [ ! -e "$MNT/AAPL/$1.parquet" ] && [ -z "$(ls -A "$STORE/tmp")" ] &&
			[ "$(manifest_sql "select count(*) from entries where key = '$1'")" = 0 ]; then
			return 0
		fi
		sleep 0.1
	done
	echo "AAPL/$1 was not discarded" >&2
	return 1
}

# wait_kept KEY: a publish that failed after close() returned 0 keeps the
# tmp file and its row, which names it, for the next mount: wait until
# AAPL/KEY is gone from the mount and the row says so.
wait_kept() {
	local i
	for ((i = 0; i < READY_TIMEOUT * 10; i++)); do
		if [ ! -e "$MNT/AAPL/$1.parquet" ] &&
			[ "$(manifest_sql "select state from entries where key = '$1' and sealed_tmp is not null")" = writing ] &&
			[ -n "$(ls -A "$STORE/tmp")" ]; then
			return 0
		fi
		sleep 0.1
	done
	echo "AAPL/$1 was not kept" >&2
	return 1
}

# nothing_in_tmp: no tmp file and no writing row is left.
nothing_in_tmp() {
	[ -z "$(ls -A "$STORE/tmp")" ]
	[ "$(manifest_sql "select count(*) from entries where state = 'writing'")" = 0 ]
}

# crash_cycle POINT EXPECT [MOUNT ARGS...]: the daemon dies at POINT
# twice.  After the first crash the next mount recovers on its own; after
# the second, fsck repairs the store before the mount.  EXPECT is what a
# crashed write becomes: absent (the write is lost: close() did not
# return 0) or complete (close() returned 0, or the object was in place:
# it is published whole, nothing partial).
crash_cycle() {
	local point=$1 expect=$2 k1 k2
	require_faults
	seed_store
	make_parquet "$DATA/new.parquet" 200000 2
	k1=$(key_of "crash1-$point")
	k2=$(key_of "crash2-$point")

	# 1: crash, then a plain remount recovers
	crash_at "$point" "$k1" "$DATA/new.parquet" "${@:3}"
	# nothing partial in objects/: the object is there whole or not at all
	if [ -e "$STORE/objects/AAPL/$k1.parquet" ]; then
		cmp "$DATA/new.parquet" "$STORE/objects/AAPL/$k1.parquet"
	fi
	mount_store
	[ "$(state_of "$k1" "$DATA/new.parquet")" = "$expect" ]
	check_seeds
	nothing_in_tmp
	unmount_store
	fsck_clean

	# 2: crash, then fsck -n / -p before any mount
	crash_at "$point" "$k2" "$DATA/new.parquet" "${@:3}"
	fsck_clean
	nothing_in_tmp
	mount_store
	[ "$(state_of "$k2" "$DATA/new.parquet")" = "$expect" ]
	[ "$(state_of "$k1" "$DATA/new.parquet")" = "$expect" ]
	check_seeds
	# and the keys of lost writes can be written again
	if [ "$expect" = absent ]; then
		[ "$(write_entry "$MNT/AAPL/$k1.parquet" "$DATA/new.parquet")" = ok ]
		wait_published "$MNT/AAPL/$k1.parquet"
		cmp "$DATA/new.parquet" "$MNT/AAPL/$k1.parquet"
	fi
	unmount_store
	fsck_clean
}

@test "daemon killed while writing (first write): nothing partial, seeds intact" {
	crash_cycle tmp_write absent
}

@test "daemon killed while writing (after 3 chunks reached tmp/): nothing partial" {
	crash_cycle tmp_write@4 absent
}

@test "daemon killed during close validation: nothing partial" {
	crash_cycle validate absent
}

@test "daemon killed at the fsync of a validated entry: nothing partial" {
	crash_cycle tmp_fsync absent
}

@test "daemon killed before the rename into objects/, after close() returned 0: the entry is published at recovery" {
	crash_cycle publish_rename complete
}

@test "daemon killed while compressing, after close() returned 0: the entry is published as written at recovery" {
	crash_cycle compress complete -o compress=zstd
	# recovery publishes the tmp file the writer closed, as written
	[ "$(manifest_sql "select group_concat(compression) from entries where key in ('$(key_of crash1-compress)', '$(key_of crash2-compress)')")" = none,none ]
	log_has "its writer had closed it, and the mount stopped before publishing it"
}

@test "daemon killed after a closed entry's content changed again: nothing is published" {
	require_faults
	seed_store
	make_parquet "$DATA/new.parquet" 20000 2
	mount_store
	# the creator closes a valid file, then changes it through a dup
	# still open: recovery must not publish the changed bytes
	python3 - "$MNT/AAPL/$K.parquet" "$DATA/new.parquet" "$DAEMON_PID" <<'PY'
import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
os.write(fd, open(sys.argv[2], "rb").read())
fd2 = os.dup(fd)
os.close(fd)
os.pwrite(fd2, b"changed!", 200)
os.kill(int(sys.argv[3]), 9)
PY
	wait_daemon_gone
	fusermount3 -u "$MNT"
	mount_store
	[ "$(state_of "$K" "$DATA/new.parquet")" = absent ]
	check_seeds
	nothing_in_tmp
	unmount_store
	fsck_clean
}

@test "daemon killed after a child wrote the entry, its parent's close long done: published if the child's close() returned 0" {
	require_faults
	seed_store
	make_parquet "$DATA/new.parquet" 20000 2
	# the second check of the content: the child's close, or (if that
	# close did not check) the release after it
	FEATUREFS_FAULT=validate=crash@2 mount_store
	# Popen(stdout=f) then f.close(): the creator closes before a byte
	# is written, the child's close() is the one that returns on it all
	run python3 - "$MNT/AAPL/$K.parquet" "$DATA/new.parquet" <<'PY'
import subprocess, sys
with open(sys.argv[1], "wb") as f:
    p = subprocess.Popen(["sh", "-c", 'sleep 0.5; exec cat "$0"', sys.argv[2]], stdout=f)
print(p.wait())
PY
	echo "writer: $output" >&2
	wait_daemon_gone
	log_has "fault injection: crashing at validate"
	fusermount3 -u "$MNT"
	mount_store
	if [ "${lines[-1]}" = 0 ]; then
		[ "$(state_of "$K" "$DATA/new.parquet")" = complete ]
	else
		[ "$(state_of "$K" "$DATA/new.parquet")" = absent ]
	fi
	check_seeds
	nothing_in_tmp
	unmount_store
	fsck_clean
}

@test "a clean stop while a descriptor of a closed entry is still open: what close() accepted is published" {
	seed_store
	make_parquet "$DATA/new.parquet" 20000 2
	mount_store
	python3 - "$MNT/AAPL/$K.parquet" "$DATA/new.parquet" "$DAEMON_PID" <<'PY'
import os, signal, sys, time
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
os.write(fd, open(sys.argv[2], "rb").read())
fd2 = os.dup(fd)
os.close(fd)  # returns 0: sealed
os.kill(int(sys.argv[3]), signal.SIGTERM)
time.sleep(1)
try:
    os.close(fd2)
except OSError:
    pass
PY
	daemon_gone_detach
	# no write can reach it after the stop: published by it
	[ "$(manifest_sql "select state from entries where key = '$K'")" = published ]
	mount_store
	[ "$(state_of "$K" "$DATA/new.parquet")" = complete ]
	check_seeds
	nothing_in_tmp
	unmount_store
	fsck_clean
}

@test "what recovery publishes has the mode and times its writer set, before close() or after" {
	require_faults
	seed_store
	make_parquet "$DATA/new.parquet" 20000 2
	chmod 640 "$DATA/new.parquet"
	touch -d '2020-01-02 03:04:05' "$DATA/new.parquet"
	# cp -p sets them before it closes
	FEATUREFS_FAULT=publish_rename=crash mount_store
	cp -p "$DATA/new.parquet" "$MNT/AAPL/$K.parquet"
	wait_daemon_gone
	fusermount3 -u "$MNT"
	# a job that sets them after close(), a copy of its descriptor open
	K2=$(key_of after-close)
	mount_store
	python3 - "$MNT/AAPL/$K2.parquet" "$DATA/new.parquet" "$DAEMON_PID" <<'PY'
import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
os.write(fd, open(sys.argv[2], "rb").read())
keep = os.dup(fd)
os.close(fd)
os.chmod(sys.argv[1], 0o600)
os.utime(sys.argv[1], (1500000000, 1500000000))
os.kill(int(sys.argv[3]), 9)
PY
	wait_daemon_gone
	fusermount3 -u "$MNT"
	mount_store
	[ "$(state_of "$K" "$DATA/new.parquet")" = complete ]
	[ "$(stat -c %a.%Y "$MNT/AAPL/$K.parquet")" = "640.$(stat -c %Y "$DATA/new.parquet")" ]
	[ "$(state_of "$K2" "$DATA/new.parquet")" = complete ]
	[ "$(stat -c %a.%Y "$MNT/AAPL/$K2.parquet")" = 600.1500000000 ]
	check_seeds
	nothing_in_tmp
	unmount_store
	fsck_clean
}

@test "recovery publishes the file its writer closed, not an object a lost row left at its path" {
	require_faults
	make_parquet "$DATA/old.parquet" 2000 1
	make_parquet "$DATA/new.parquet" 20000 2
	mount_store
	mkdir "$MNT/AAPL"
	cp "$DATA/old.parquet" "$MNT/AAPL/$K.parquet"
	wait_published "$MNT/AAPL/$K.parquet"
	unmount_store
	# its row lost (a power cut's last commits, a restored backup)
	sqlite3 "$STORE/manifest.db" "delete from entries where key = '$K'"
	crash_at publish_rename "$K" "$DATA/new.parquet"
	cmp "$DATA/old.parquet" "$STORE/objects/AAPL/$K.parquet"
	run "$FEATUREFS" fsck -n "$STORE"
	[[ "$output" == *"AAPL/$K: writer "*" is gone; it was closed, and its tmp file is complete"* ]]
	mount_store
	[ "$(state_of "$K" "$DATA/new.parquet")" = complete ]
	log_has "AAPL/$K: objects/AAPL/$K.parquet was not what its writer closed: moved it to lost+found/"
	cmp "$DATA/old.parquet" "$STORE/lost+found/AAPL.$K.parquet"
	nothing_in_tmp
	unmount_store
	fsck_clean
}

@test "daemon killed between rename and manifest update: the object is adopted whole" {
	crash_cycle after_rename complete
}

@test "daemon killed just before the manifest update: the object is adopted whole" {
	crash_cycle manifest_publish complete
}

@test "kill -9 of the daemon from outside while a client writes slowly" {
	seed_store
	make_parquet "$DATA/new.parquet" 200000 3
	mount_store
	start_slow_writer "$MNT/AAPL/$K.parquet" "$DATA/new.parquet"
	kill -9 "$DAEMON_PID"
	wait_daemon_gone # the mount stays, dead, for the test
	# the client is not left hanging
	wait "$writer" || true
	cat "$TEST_DIR/writer" >&2
	refute grep -q computed "$TEST_DIR/writer"
	fusermount3 -u "$MNT"
	mount_store
	[ "$(state_of "$K" "$DATA/new.parquet")" = absent ]
	check_seeds
	nothing_in_tmp
	log_has "recovered what earlier mounts left"
	[ "$(write_entry "$MNT/AAPL/$K.parquet" "$DATA/new.parquet")" = ok ]
	wait_published "$MNT/AAPL/$K.parquet"
	cmp "$DATA/new.parquet" "$MNT/AAPL/$K.parquet"
	unmount_store
	fsck_clean
}

# The kernel holds a name's invalidation until it gets its directory's
# lock, which a LOOKUP there holds until answered.  A daemon killed with
# both pending cannot finish dying, nor its client: the watchdog process
# forked at mount aborts the connection, as `umount -f` would.
# stall_gc_invalidation: mount with one entry and GC every second, a
# client's LOOKUP left unanswered ($looker) and GC's invalidation of the
# removed entry's name waiting behind it in the kernel.
stall_gc_invalidation() {
	make_parquet "$DATA/a.parquet"
	mount_store
	mkdir "$MNT/AAPL"
	cp "$DATA/a.parquet" "$MNT/AAPL/$K.parquet"
	unmount_store
	# LOOKUPs: AAPL, $K, then the third one never gets an answer
	FEATUREFS_FAULT="lookup=stall@3" \
		mount_store -o gc_interval=1s,gc_older_than=1s
	stat "$MNT/AAPL/$K.parquet" >/dev/null
	stat "$MNT/AAPL/absent.parquet" 2>/dev/null 3>&- &
	looker=$!
	# GC removes the entry; the invalidation of its name waits
	for ((i = 0; i < READY_TIMEOUT * 10; i++)); do
		log_has "gc: removed 1 entry" && break
		sleep 0.1
	done
	log_has "stalling at lookup"
	log_has "gc: removed 1 entry"
}

# daemon_gone_looker_freed: the daemon is gone and the stalled client got
# its error (ENOTCONN); if not, abort the connection so the suite goes on,
# and fail.
daemon_gone_looker_freed() {
	if ! wait_daemon_gone; then
		abort_connection
		wait "$looker" || true
		false
	fi
	refute wait "$looker" # ENOTCONN
}

@test "kill -9 while GC's invalidation waits behind an unanswered LOOKUP: the watchdog frees the mount" {
	require_faults
	stall_gc_invalidation
	kill -9 "$DAEMON_PID"
	daemon_gone_looker_freed
	log_has "stuck in the kernel: aborted FUSE connection"
	fusermount3 -uz "$MNT"
}

@test "a crash while GC's invalidation waits behind an unanswered LOOKUP: the daemon aborts its connection" {
	require_faults
	stall_gc_invalidation
	# a core dump waits for every thread, the stuck one too: without the
	# abort, the main thread never dies and the watchdog never wakes
	kill -ABRT "$DAEMON_PID"
	daemon_gone_looker_freed
	fusermount3 -uz "$MNT"
}

@test "kill -9 of a writing client: entry discarded, tmp cleaned, key claimable again" {
	make_parquet "$DATA/new.parquet" 200000 3
	mount_store
	mkdir "$MNT/AAPL"
	fds_before=$(ls "/proc/$DAEMON_PID/fd" | wc -l)
	start_slow_writer "$MNT/AAPL/$K.parquet" "$DATA/new.parquet"
	[ "$(manifest_sql "select state from entries where key = '$K'")" = writing ]
	kill -9 "$writer"
	wait "$writer" || true
	# the kernel closes the dead writer's file: release discards it
	wait_discarded "$K"
	[ ! -e "$MNT/AAPL/$K.parquet" ]
	[ "$(manifest_sql "select count(*) from entries")" = 0 ]
	[ -z "$(ls -A "$STORE/tmp")" ]
	[ -z "$(ls -A "$STORE/objects/AAPL" 2>/dev/null)" ]
	log_has "discard AAPL/$K.parquet"
	[ "$(ls "/proc/$DAEMON_PID/fd" | wc -l)" = "$fds_before" ]
	run python3 "$FEATUREFS_TOOLS/claim_or_wait.py" "$MNT/AAPL/$K.parquet" "$DATA/new.parquet" 0
	[ "$output" = computed ]
	cmp "$DATA/new.parquet" "$MNT/AAPL/$K.parquet"
	unmount_store
	fsck_clean
}

@test "a file with a hole no write filled is never published: its close gets EIO" {
	make_parquet "$DATA/new.parquet" 200000 3
	mount_store
	mkdir "$MNT/AAPL"
	# the end (footer and all) and the start, as a download in parts
	# writes them; the middle never comes (a writer killed meanwhile is
	# discarded for that alone: see below)
	PARTS="-300000: :100000" run write_entry "$MNT/AAPL/$K.parquet" "$DATA/new.parquet"
	[ "$output" = "close EIO" ]
	wait_discarded "$K"
	log_has "discard AAPL/$K.parquet: bytes [0-9]* to [0-9]* were never written (a hole)"
	# the same parts, the middle too: published as written
	PARTS="-300000: :100000 100000:-300000" run write_entry "$MNT/AAPL/$K.parquet" "$DATA/new.parquet"
	[ "$output" = ok ]
	cmp "$DATA/new.parquet" "$MNT/AAPL/$K.parquet"
	unmount_store
	fsck_clean
}

@test "zeros a writer asked for are written, though the store keeps them as a hole: published" {
	make_parquet "$DATA/new.parquet" 200000 3
	mount_store
	mkdir "$MNT/AAPL"
	# the same on a plain file and on the entry: the whole file, made
	# durable, then 64 KiB of it zeroed (ext4 reports that as a hole,
	# as ZFS does zeros written to a compressed dataset)
	run python3 - "$DATA/plain.parquet" "$MNT/AAPL/$K.parquet" "$DATA/new.parquet" <<'PY'
import ctypes, errno, os, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_long, ctypes.c_long]
FALLOC_FL_ZERO_RANGE = 0x10
data = open(sys.argv[3], "rb").read()
off = (len(data) // 2) & ~4095
for p in sys.argv[1:3]:
    fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    os.write(fd, data)
    os.fsync(fd)
    if libc.fallocate(fd, FALLOC_FL_ZERO_RANGE, off, 65536) != 0:
        print("fallocate", errno.errorcode[ctypes.get_errno()])
    try:
        os.close(fd)
        print("0")
    except OSError as e:
        print(errno.errorcode[e.errno])
PY
	echo "$output" >&2
	[ "$output" = "$(printf '0\n0')" ]
	cmp "$DATA/plain.parquet" "$MNT/AAPL/$K.parquet"
	unmount_store
	fsck_clean
}

@test "space reserved past the end (KEEP_SIZE) is not written: a middle that never came is a hole, and EIO" {
	make_parquet "$DATA/new.parquet" 20000 1
	mount_store
	mkdir "$MNT/AAPL"
	# a download in parts that reserves the whole file first, gets its
	# first and last parts, and never its middle
	run python3 - "$MNT/AAPL" "$DATA/new.parquet" <<'PY'
import ctypes, errno, hashlib, os, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_long, ctypes.c_long]
KEEP, PUNCH, ZERO = 0x1, 0x2, 0x10
data = open(sys.argv[2], "rb").read()
for mode in (PUNCH | KEEP, ZERO | KEEP):
    p = "%s/%s.parquet" % (sys.argv[1], hashlib.sha256(b"%d" % mode).hexdigest())
    fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    os.write(fd, data[:5000])
    assert libc.fallocate(fd, mode, 5000, len(data) - 5000) == 0
    os.pwrite(fd, data[-2000:], len(data) - 2000)
    try:
        os.close(fd)
        print("0", os.path.exists(p))
    except OSError as e:
        print(errno.errorcode[e.errno], os.path.exists(p))
PY
	echo "$output" >&2
	[ "$output" = "$(printf 'EIO False\nEIO False')" ]
	log_has "bytes 5000 to .* were never written (a hole)"
	unmount_store
	fsck_clean
}

@test "a read failing in the page walk of a sparse copy: EIO from the disk, not a hole" {
	require_faults
	duck_sql "COPY (SELECT i AS id, CASE WHEN i < 400000 THEN 0 ELSE i END AS z FROM range(500000) t(i)) TO '$DATA/z.parquet' (FORMAT parquet, COMPRESSION 'uncompressed')"
	cp --sparse=always "$DATA/z.parquet" "$DATA/sparse.parquet"
	FEATUREFS_FAULT=page_walk=EIO mount_store
	mkdir "$MNT/AAPL"
	run cp "$DATA/sparse.parquet" "$MNT/AAPL/$K.parquet"
	[ "$status" -ne 0 ]
	[[ "$output" == *"Input/output error"* ]]
	wait_discarded "$K"
	log_has "discard AAPL/$K.parquet: .*Input/output error (io)"
	refute log_has "never written (a hole)"
	[ "$(stats_get "['load_failures']['io']")" = 1 ]
	unmount_store
	fsck_clean
}

@test "a writer killed before it closed its entry: discarded, whole or not, unless a child's close accepted it; one that exits without closing publishes" {
	make_parquet "$DATA/new.parquet" 2000 3
	mount_store
	mkdir "$MNT/AAPL"
	k2=$(key_of exits)
	# every byte written, then the writer dies of a signal
	python3 - "$MNT/AAPL/$K.parquet" "$DATA/new.parquet" "$TEST_DIR/written" <<'PY' &
import os, sys, time
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
os.write(fd, open(sys.argv[2], 'rb').read())
open(sys.argv[3], 'w').close()
time.sleep(600)
PY
	writer=$!
	for ((i = 0; i < READY_TIMEOUT * 10; i++)); do
		[ -e "$TEST_DIR/written" ] && break
		sleep 0.1
	done
	kill -9 "$writer"
	wait "$writer" || true
	wait_discarded "$K"
	log_has "discard AAPL/$K.parquet: its writer was killed (signal 9) before it closed it"
	# the same, and exit(0) closes it: published
	python3 - "$MNT/AAPL/$k2.parquet" "$DATA/new.parquet" <<'PY'
import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
os.write(fd, open(sys.argv[2], 'rb').read())
os._exit(0)
PY
	wait_published "$MNT/AAPL/$k2.parquet"
	cmp "$DATA/new.parquet" "$MNT/AAPL/$k2.parquet"
	# a child wrote it all through the descriptor it was given, and its
	# close returned 0: that content stands when the creator is killed
	k3=$(key_of child)
	python3 - "$MNT/AAPL/$k3.parquet" "$DATA/new.parquet" <<'PY' || true
import os, signal, subprocess, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
subprocess.run(["cat", sys.argv[2]], stdout=fd, check=True)
os.kill(os.getpid(), signal.SIGTERM)
PY
	wait_published "$MNT/AAPL/$k3.parquet"
	cmp "$DATA/new.parquet" "$MNT/AAPL/$k3.parquet"
	unmount_store
	fsck_clean
}

# ---- a full store ----------------------------------------------------

# small_store SIZE: put STORE on a fresh tmpfs of SIZE (outside TEST_DIR,
# so that teardown unmounts it after the daemon is gone).
small_store() {
	SMALL=$(mktemp -d "${TMPDIR:-/tmp}/featurefs-small.XXXXXX")
	mount -t tmpfs -o size="$1",mode=0700 tmpfs "$SMALL" || {
		rmdir "$SMALL"
		SMALL=
		skip "cannot mount a tmpfs here"
	}
	STORE=$SMALL/store
}

# ext4_store: put STORE on a fresh ext4 image mounted errors=remount-ro,
# and set EXT4_DEV to its device's name in /sys/fs/ext4/.
ext4_store() {
	SMALL=$(mktemp -d "${TMPDIR:-/tmp}/featurefs-small.XXXXXX")
	truncate -s 64M "$SMALL.img"
	mkfs.ext4 -q -F "$SMALL.img" >/dev/null 2>&1 &&
		mount -o loop,errors=remount-ro "$SMALL.img" "$SMALL" || {
		rm -rf "$SMALL" "$SMALL.img"
		SMALL=
		skip "cannot mount an ext4 image here"
	}
	EXT4_DEV=$(basename "$(findmnt -no SOURCE "$SMALL")")
	[ -w "/sys/fs/ext4/$EXT4_DEV/trigger_fs_error" ] ||
		skip "no trigger_fs_error for $EXT4_DEV"
	STORE=$SMALL/store
}

# fill_to FREE_KIB: a filler file on the store's filesystem leaves about
# FREE_KIB KiB free.
fill_to() {
	local avail
	avail=$(df --output=avail -k "$SMALL" | tail -1)
	[ "$avail" -gt "$1" ]
	fallocate -l $(((avail - $1) * 1024)) "$SMALL/filler"
}

# enospc_write: on a store with 1 MiB left, writing 2.4 MB fails with
# ENOSPC and the entry goes away; prints nothing, fails the test if not.
enospc_write() {
	make_parquet "$DATA/small.parquet" 1000 1
	make_parquet "$DATA/big.parquet" 200000 4
	[ "$(stat -c %s "$DATA/big.parquet")" -gt $((1536 * 1024)) ]
	mount_store
	mkdir "$MNT/AAPL"
	KS=$(key_of small)
	cp "$DATA/small.parquet" "$MNT/AAPL/$KS.parquet"
	wait_published "$MNT/AAPL/$KS.parquet"
	fill_to 1024
	run write_entry "$MNT/AAPL/$K.parquet" "$DATA/big.parquet"
	echo "$output" >&2
	[ "$output" = "write ENOSPC" ] || [ "$output" = "close ENOSPC" ]
	# close returned; the release that discards runs after it
	for ((i = 0; i < READY_TIMEOUT * 10; i++)); do
		[ ! -e "$MNT/AAPL/$K.parquet" ] && [ -z "$(ls -A "$STORE/tmp")" ] && break
		sleep 0.1
	done
}

@test "ENOSPC: a write past capacity fails, nothing partial, reads go on, writes resume once space is freed" {
	small_store 8m
	enospc_write
	# nothing partial: no name, no published row, no object, no tmp data
	[ ! -e "$MNT/AAPL/$K.parquet" ]
	[ "$(manifest_sql "select count(*) from entries where key = '$K' and state = 'published'")" = 0 ]
	[ ! -e "$STORE/objects/AAPL/$K.parquet" ]
	[ -z "$(ls -A "$STORE/tmp")" ]
	log_has "discard AAPL/$K.parquet"
	# reads go on
	cmp "$DATA/small.parquet" "$MNT/AAPL/$KS.parquet"
	cat "$MNT/.featurefs/stats" >/dev/null
	# new writes work once space is freed
	rm "$SMALL/filler"
	k2=$(key_of after-enospc)
	[ "$(write_entry "$MNT/AAPL/$k2.parquet" "$DATA/big.parquet")" = ok ]
	wait_published "$MNT/AAPL/$k2.parquet"
	cmp "$DATA/big.parquet" "$MNT/AAPL/$k2.parquet"
	unmount_store
	fsck_clean
}

@test "ENOSPC: the key whose write hit the full disk can be written again once space is freed" {
	small_store 8m
	enospc_write
	rm "$SMALL/filler"
	# (the abandon of its claim may have failed on the full disk: the
	# row it left must not keep the key from being claimed again)
	[ "$(write_entry "$MNT/AAPL/$K.parquet" "$DATA/big.parquet")" = ok ]
	wait_published "$MNT/AAPL/$K.parquet"
	cmp "$DATA/big.parquet" "$MNT/AAPL/$K.parquet"
	unmount_store
	fsck_clean
}

@test "recovery on a full disk: the dead mount's unfinished files go first, so that its closed write is published; one it cannot publish keeps its row" {
	[ -n "${FEATUREFS_FAULT_INJECTION:-}" ] || skip "needs a -Dfault_injection=true build"
	small_store 16m
	make_parquet "$DATA/a.parquet" 5000
	FEATUREFS_FAULT=after_rename=crash@2 mount_store
	mkdir "$MNT/AAPL"
	k1=$(key_of first)
	publish_file AAPL "$k1" "$DATA/a.parquet"
	# an unfinished write takes the disk but for room for one entry
	python3 - "$MNT/AAPL/$(key_of unfinished).parquet" "$TEST_DIR/full" <<'PY' &
import os, sys, time
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_EXCL)
n = 0
try:
    while True:
        n += os.write(fd, bytes(65536))
except OSError:
    pass
os.ftruncate(fd, n - 400000)
open(sys.argv[2], "w").close()
time.sleep(600)
PY
	holder=$!
	for ((i = 0; i < READY_TIMEOUT * 10; i++)); do
		[ -e "$TEST_DIR/full" ] && break
		sleep 0.1
	done
	# the mount dies between putting the object in place and its row
	cp "$DATA/a.parquet" "$MNT/AAPL/$K.parquet"
	wait_daemon_gone
	kill "$holder"
	wait "$holder" 2>/dev/null || true
	fusermount3 -uz "$MNT" 2>/dev/null || true
	[ "$(manifest_sql "select state from entries where key = '$K'")" = writing ]
	fallocate -l "$(($(df --output=avail -k "$SMALL" | tail -1) * 1024))" "$SMALL/filler"
	mount_store
	cmp "$DATA/a.parquet" "$MNT/AAPL/$K.parquet"
	log_has "adopted AAPL/$K"
	unmount_store
	rm "$SMALL/filler"
	fsck_clean
	# a closed write whose publish the manifest refuses at recovery
	# keeps its row for the next one
	K2=$(key_of second)
	FEATUREFS_FAULT=after_rename=crash mount_store
	cp "$DATA/a.parquet" "$MNT/AAPL/$K2.parquet"
	daemon_gone_detach
	FEATUREFS_FAULT=recover_publish=EIO mount_store
	log_has "AAPL/$K2: cannot publish it now: Input/output error; its row stays for the next recovery"
	[ ! -e "$MNT/AAPL/$K2.parquet" ]
	[ "$(manifest_sql "select state from entries where key = '$K2'")" = writing ]
	unmount_store
	mount_store
	cmp "$DATA/a.parquet" "$MNT/AAPL/$K2.parquet"
	unmount_store
	fsck_clean
}

@test "ENOSPC with the manifest on the full disk too: creates fail cleanly, the mount survives" {
	small_store 8m
	make_parquet "$DATA/small.parquet" 1000 1
	mount_store
	mkdir "$MNT/AAPL"
	ks=$(key_of small)
	cp "$DATA/small.parquet" "$MNT/AAPL/$ks.parquet"
	wait_published "$MNT/AAPL/$ks.parquet"
	fill_to 0 || fallocate -l "$(($(df --output=avail -k "$SMALL" | tail -1) * 1024))" "$SMALL/filler"
	# a completely full disk: every try fails with an errno, none hangs
	for i in 1 2 3 4 5; do
		run write_entry "$MNT/AAPL/$(key_of full$i).parquet" "$DATA/small.parquet"
		echo "$output" >&2
		[ "$output" != ok ]
	done
	[ "$(manifest_sql "select count(*) from entries")" = 1 ]
	[ -z "$(ls -A "$STORE/tmp")" ]
	cmp "$DATA/small.parquet" "$MNT/AAPL/$ks.parquet"
	# a refused change names itself in the log
	refute mkdir "$MNT/MSFT"
	log_has "mkdir MSFT: No space left on device"
	# a commit SQLite rolled back itself is not rolled back again
	refute log_has "cannot rollback"
	rm "$SMALL/filler"
	[ "$(write_entry "$MNT/AAPL/$K.parquet" "$DATA/small.parquet")" = ok ]
	wait_published "$MNT/AAPL/$K.parquet"
	cmp "$DATA/small.parquet" "$MNT/AAPL/$K.parquet"
	unmount_store
	fsck_clean
}

# padded_zstd SOURCE OBJECT MIB: write OBJECT, Parquet file SOURCE with
# MIB MiB of zeros before its footer (still valid: the footer locates
# the data), in the seekable format: a few dozen bytes a MiB of zeros.
# Prints the SHA-256 of its logical bytes.
padded_zstd() {
	python3 - "$@" <<'PY'
import hashlib, struct, subprocess, sys
src, out, mib = sys.argv[1], sys.argv[2], int(sys.argv[3])
orig = open(src, "rb").read()
cut = len(orig) - struct.unpack("<I", orig[-8:-4])[0] - 8
zeros = bytes(1 << 20)
pieces = [orig[i:min(i + len(zeros), cut)] for i in range(0, cut, len(zeros))]
pieces += [zeros] * mib + [orig[cut:]]
frames, table, digest = {}, b"", hashlib.sha256()
with open(out, "wb") as f:
    for p in pieces:
        if id(p) not in frames:
            frames[id(p)] = subprocess.run(["zstd", "-q", "-c", "--no-check"],
                input=p, capture_output=True, check=True).stdout
        f.write(frames[id(p)])
        table += struct.pack("<II", len(frames[id(p)]), len(p))
        digest.update(p)
    table += struct.pack("<IBI", len(pieces), 0, 0x8F92EAB1)
    f.write(struct.pack("<II", 0x184D2A5E, len(table)) + table)
print(digest.hexdigest())
PY
}

@test "objects that cannot be read (EIO): fsck -y says so and moves nothing; they check clean once readable" {
	make_parquet "$DATA/a.parquet" 2000 1
	mount_store
	publish_file AAPL "$K" "$DATA/a.parquet"
	unmount_store
	k2=$(key_of compressed)
	mount_store -o compress=zstd
	publish_file AAPL "$k2" "$DATA/a.parquet"
	unmount_store
	[ "$(manifest_sql "select compression from entries where key = '$k2'")" = zstd ]
	k3=$(key_of orphan)
	cp "$STORE/objects/AAPL/$K.parquet" "$STORE/objects/AAPL/$k3.parquet"
	cc -shared -fPIC -o "$TEST_DIR/eio.so" "$FEATUREFS_TOOLS/eio_objects.c" -ldl
	# (a sanitizer build wants its runtime first; ours only wraps pread)
	run env LD_PRELOAD="$TEST_DIR/eio.so" \
		ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0" \
		"$FEATUREFS" fsck -y "$STORE"
	echo "$output" >&2
	[ "$status" -eq 4 ]
	[[ "$output" == *"AAPL/$K: cannot read the object: pread "*"Input/output error"* ]]
	[[ "$output" == *"AAPL/$k2: cannot decompress the object: Input/output error"* ]]
	[[ "$output" == *"AAPL/$k3: object without a manifest row, cannot check it: Input/output error"* ]]
	refute grep -q "not valid Parquet\|corrupt" <<<"$output"
	[ -z "$(ls -A "$STORE/lost+found")" ]
	[ "$(manifest_sql "select count(*) from entries")" = 2 ]
	run "$FEATUREFS" fsck -p "$STORE"
	[ "$status" -eq 1 ]
	[[ "$output" == *"AAPL/$k3: valid object without a manifest row (adopted)"* ]]
	fsck_clean
}

@test "fsck checks and adopts a compressed object larger than the free space, writing none of it; a row's size is checked from the seek table" {
	small_store 64m
	make_parquet "$DATA/a.parquet" 2000 1
	mount_store -o compress=zstd
	publish_file AAPL "$K" "$DATA/a.parquet"
	unmount_store
	[ "$(manifest_sql "select compression from entries where key = '$K'")" = zstd ]
	# an orphan of 512 MiB, eight times what the store's filesystem holds
	k2=$(key_of padded)
	sum=$(padded_zstd "$DATA/a.parquet" "$STORE/objects/AAPL/$k2.parquet" 512)
	[ "$(stat -c %s "$STORE/objects/AAPL/$k2.parquet")" -lt 100000 ]
	run "$FEATUREFS" fsck -p "$STORE"
	echo "$output" >&2
	[ "$status" -eq 1 ]
	[[ "$output" == *"AAPL/$k2: valid object without a manifest row (adopted)"* ]]
	[ "$(manifest_sql "select file_size_bytes, sha256 from entries where key = '$k2'")" = \
		"$((512 * 1048576 + $(stat -c %s "$DATA/a.parquet")))|$sum" ]
	run "$FEATUREFS" fsck -n --verify "$STORE"
	echo "$output" >&2
	[ "$status" -eq 0 ]
	# a row's object whose seek table gives another size: told from the
	# table, nothing decompressed
	size=$(stat -c %s "$DATA/a.parquet")
	padded_zstd "$DATA/a.parquet" "$STORE/objects/AAPL/$K.parquet" 512 >/dev/null
	sqlite3 "$STORE/manifest.db" "update entries set stored_size_bytes = $(stat -c %s "$STORE/objects/AAPL/$K.parquet") where key = '$K'"
	run "$FEATUREFS" fsck -n "$STORE"
	echo "$output" >&2
	[ "$status" -eq 4 ]
	[[ "$output" == *"AAPL/$K: object decompresses to $((512 * 1048576 + size)) bytes, the row says $size"* ]]
	[ -z "$(ls -A "$STORE/tmp")" ]
}

@test "a crash between a removal's row and its object: the next mount or fsck -p finishes the removal, never adopts the object again" {
	[ -n "${FEATUREFS_FAULT_INJECTION:-}" ] || skip "needs a -Dfault_injection=true build"
	make_parquet "$DATA/a.parquet" 2000 1
	k2=$(key_of kept)
	mount_store
	publish_file AAPL "$K" "$DATA/a.parquet"
	publish_file AAPL "$k2" "$DATA/a.parquet"
	unmount_store
	# rm: the row goes, and the daemon dies before the object does
	FEATUREFS_FAULT=remove_unlink=crash mount_store
	rm "$MNT/AAPL/$K.parquet" || true
	daemon_gone_detach
	[ -f "$STORE/objects/AAPL/$K.parquet" ]
	[ "$(manifest_sql "select count(*) from entries where key = '$K'")" = 0 ]
	run "$FEATUREFS" fsck -n "$STORE"
	echo "$output" >&2
	[ "$status" -eq 4 ]
	[[ "$output" == *"AAPL/$K: its row was removed, its object was not (a removal cut short) (left; run fsck -p)"* ]]
	[[ "$output" != *"valid object without a manifest row"* ]]
	# the next mount finishes it
	mount_store
	[ ! -e "$MNT/AAPL/$K.parquet" ]
	[ ! -e "$STORE/objects/AAPL/$K.parquet" ]
	log_has "removed AAPL/$K: its row had been removed, and the process removing it died before its object"
	cmp "$DATA/a.parquet" "$MNT/AAPL/$k2.parquet"
	unmount_store
	run "$FEATUREFS" fsck -n "$STORE"
	[ "$status" -eq 0 ]
	# a GC pass cut short the same way, then fsck -p before any mount
	FEATUREFS_FAULT=remove_unlink=crash mount_store
	sleep 1.5
	"$FEATUREFS" gc --older-than 1s "$MNT" || true
	daemon_gone_detach
	[ -f "$STORE/objects/AAPL/$k2.parquet" ]
	run "$FEATUREFS" fsck -p "$STORE"
	echo "$output" >&2
	[ "$status" -eq 1 ]
	[[ "$output" == *"AAPL/$k2: its row was removed, its object was not (a removal cut short) (removed)"* ]]
	[ ! -e "$STORE/objects/AAPL/$k2.parquet" ]
	run "$FEATUREFS" fsck -n "$STORE"
	[ "$status" -eq 0 ]
	[ "$(manifest_sql "select count(*) from removals")" = 0 ]
}

@test "a removal whose directory cannot be synced keeps its note: the next mount finishes it" {
	require_faults
	make_parquet "$DATA/a.parquet" 2000 1
	mount_store
	publish_file AAPL "$K" "$DATA/a.parquet"
	unmount_store
	FEATUREFS_FAULT=symbol_dir_sync=EIO mount_store
	rm "$MNT/AAPL/$K.parquet"
	[ ! -e "$MNT/AAPL/$K.parquet" ]
	[ ! -e "$STORE/objects/AAPL/$K.parquet" ]
	log_has "gc: fsync of objects/AAPL: Input/output error; the next recovery finishes its removals again"
	[ "$(manifest_sql "select count(*) from removals where key = '$K'")" = 1 ]
	unmount_store
	mount_store
	[ "$(manifest_sql "select count(*) from removals")" = 0 ]
	unmount_store
	fsck_clean
}

@test "a removal under way is the live mount's: its GC passes leave it alone; fsck -p that cannot finish one does not adopt its object" {
	[ -n "${FEATUREFS_FAULT_INJECTION:-}" ] || skip "needs a -Dfault_injection=true build"
	make_parquet "$DATA/a.parquet" 2000 1
	FEATUREFS_FAULT=remove_unlink=stall mount_store
	publish_file AAPL "$K" "$DATA/a.parquet"
	timeout -s KILL 30 rm "$MNT/AAPL/$K.parquet" 2>/dev/null 3>&- &
	for ((i = 0; i < READY_TIMEOUT * 10; i++)); do
		log_has "stalling at remove_unlink" && break
		sleep 0.1
	done
	"$FEATUREFS" gc "$MNT"
	refute log_has "the process removing it died"
	[ -f "$STORE/objects/AAPL/$K.parquet" ]
	kill_daemon
	wait || true
	# fsck -p cannot unlink it (immutable): the object stays, reported,
	# and is not adopted as an orphan
	chattr +i "$STORE/objects/AAPL/$K.parquet" 2>/dev/null || skip "no chattr +i here"
	run "$FEATUREFS" fsck -p "$STORE"
	chattr -i "$STORE/objects/AAPL/$K.parquet"
	echo "$output" >&2
	[[ "$output" == *"AAPL/$K: its row was removed, its object was not (a removal cut short) (left: repair failed: Operation not permitted)"* ]]
	[[ "$output" != *"adopted"* ]]
	[ "$(manifest_sql "select count(*) from entries where key = '$K'")" = 0 ]
	# the next mount finishes it
	mount_store
	[ ! -e "$MNT/AAPL/$K.parquet" ]
	[ ! -e "$STORE/objects/AAPL/$K.parquet" ]
	unmount_store
	run "$FEATUREFS" fsck -n "$STORE"
	[ "$status" -eq 0 ]
}

@test "a crash inside rmdir of a symbol: the next mount removes the empty directory it left" {
	[ -n "${FEATUREFS_FAULT_INJECTION:-}" ] || skip "needs a -Dfault_injection=true build"
	make_parquet "$DATA/a.parquet" 2000 1
	mount_store
	publish_file MSFT "$K" "$DATA/a.parquet"
	rm "$MNT/MSFT/$K.parquet"
	unmount_store
	[ -d "$STORE/objects/MSFT" ]
	FEATUREFS_FAULT=symbol_rmdir=crash mount_store
	rmdir "$MNT/MSFT" || true
	daemon_gone_detach
	[ -d "$STORE/objects/MSFT" ]
	[ "$(manifest_sql "select count(*) from symbols where symbol = 'MSFT'")" = 0 ]
	mount_store
	[ ! -e "$MNT/MSFT" ]
	[ ! -e "$STORE/objects/MSFT" ]
	log_has "removed objects/MSFT: empty, and its symbol had been removed"
	refute log_has "its rows were lost"
	unmount_store
	run "$FEATUREFS" fsck -n "$STORE"
	[ "$status" -eq 0 ]
}

@test "a store's filesystem out of inodes: every command says so, and all is well once some are free" {
	small_store 64m,nr_inodes=40
	make_parquet "$DATA/small.parquet" 1000 1
	mount_store
	mkdir "$MNT/AAPL"
	cp "$DATA/small.parquet" "$MNT/AAPL/$K.parquet"
	wait_published "$MNT/AAPL/$K.parquet"
	unmount_store
	# the WAL went with the unmount: SQLite cannot make it again
	i=0
	while touch "$SMALL/fill$i" 2>/dev/null; do i=$((i + 1)); done
	run "$FEATUREFS" fsck -n "$STORE"
	[ "$status" -eq 8 ]
	[[ "$output" == *"(its filesystem has no free inodes)"* ]]
	[[ "$output" == *"cannot use manifest.db: No space left on device"* ]]
	run "$FEATUREFS" stats "$STORE"
	[ "$status" -ne 0 ]
	[[ "$output" == *"(its filesystem has no free inodes)"* ]]
	run "$FEATUREFS" "$STORE" "$MNT" -f -o gc_interval=0
	[ "$status" -ne 0 ]
	[[ "$output" == *"(its filesystem has no free inodes)"* ]]
	rm -f "$SMALL"/fill*
	mount_store
	cmp "$DATA/small.parquet" "$MNT/AAPL/$K.parquet"
	unmount_store
	fsck_clean
}

@test "a store its own entries filled: rm and gc free it, with the manifest's reserve" {
	small_store 24m
	make_parquet "$DATA/big.parquet" 200000 4
	make_parquet "$DATA/small.parquet" 1000 1
	mount_store
	[ "$(stat -c %s "$STORE/manifest.reserve")" = $((24 * 1024 * 1024 / 16)) ]
	mkdir "$MNT/AAPL"
	# jobs write until nothing fits, the manifest's WAL too
	local i=0 f
	for f in big small; do
		while cp "$DATA/$f.parquet" "$MNT/AAPL/$(key_of $f$i).parquet" 2>/dev/null; do
			i=$((i + 1))
		done
		i=$((i + 1))
	done
	# and take what is left, if the last ones left anything
	local avail
	avail=$(df --output=avail -k "$SMALL" | tail -1)
	[ "$avail" -eq 0 ] || fallocate -l $((avail * 1024)) "$SMALL/filler"
	# removing needs room in the manifest before the object can go
	rm "$MNT/AAPL/$(key_of big0).parquet"
	run "$FEATUREFS" gc --max-size 1 "$MNT"
	echo "$output" >&2
	[ "$status" -eq 0 ]
	log_has "the filesystem is full: gave up the manifest's reserve so that removals can free space"
	[ "$(manifest_sql "select count(*) from entries where state = 'published'")" = 0 ]
	# the next create makes it again, before its entry takes the space
	rm -f "$SMALL/filler"
	cp "$DATA/small.parquet" "$MNT/AAPL/$(key_of again).parquet"
	[ -e "$STORE/manifest.reserve" ]
	unmount_store
	fsck_clean
}

@test "a store on a filesystem something else filled: stats, fsck -n, the mount and its removals work" {
	small_store 4m
	make_parquet "$DATA/small.parquet" 1000 1
	mount_store
	publish_file AAPL "$K" "$DATA/small.parquet"
	unmount_store
	# an unmounted store keeps an empty holder record, and its block
	[ "$(stat -c %s "$STORE/store.lock")" = 1 ]
	dd if=/dev/zero of="$SMALL/filler" bs=4k 2>/dev/null || true
	[ "$(df --output=avail -k "$SMALL" | tail -1)" -eq 0 ]
	run "$FEATUREFS" stats "$STORE"
	echo "$output" >&2
	[ "$status" -eq 0 ]
	[[ "$output" == *"1 published"* ]]
	run "$FEATUREFS" fsck -n "$STORE"
	[ "$status" -eq 0 ]
	[[ "$output" == *clean* ]]
	# no -shm nor -wal was made to read it
	[ ! -e "$STORE/manifest.db-shm" ]
	mount_store
	cmp "$DATA/small.parquet" "$MNT/AAPL/$K.parquet"
	# the record is written over the block the empty one kept
	refute log_has "has no room for its holder record"
	grep -qx "pid=$DAEMON_PID" "$STORE/store.lock"
	log_has "the filesystem is full: gave up the manifest's reserve"
	unmount_store
	# room again, and the reserve made again by a mount
	rm "$SMALL/filler"
	mount_store
	unmount_store
	[ -e "$STORE/manifest.reserve" ]
	# as an older featurefs left it: store.lock emptied to nothing
	: >"$STORE/store.lock"
	dd if=/dev/zero of="$SMALL/filler" bs=4k 2>/dev/null || true
	mount_store
	log_has "store.lock has no room for its holder record (No space left on device)"
	# the reserve the manifest's open gave up makes room for it
	log_has "store.lock names its holder now"
	grep -qx "pid=$DAEMON_PID" "$STORE/store.lock"
	rm "$MNT/AAPL/$K.parquet"
	[ "$(manifest_sql "select count(*) from entries")" = 0 ]
	unmount_store
	# a reserve spent before: the mount cannot open the manifest and
	# says why; what it left (a -shm nobody holds) keeps nothing from
	# reading the store
	rm -f "$STORE/manifest.reserve"
	dd if=/dev/zero of="$SMALL/filler2" bs=4k 2>/dev/null || true
	run timeout 20 "$FEATUREFS" "$STORE" "$MNT" -f
	[ "$status" -eq 1 ]
	[[ "$output" == *"(its filesystem is full)"* ]]
	run "$FEATUREFS" stats "$STORE"
	[ "$status" -eq 0 ]
	run "$FEATUREFS" fsck -n "$STORE"
	[ "$status" -eq 0 ]
	rm "$SMALL/filler" "$SMALL/filler2"
	fsck_clean
}

@test "a full store: /health/ready is 503 and the health says why, until space is freed" {
	small_store 8m
	mount_store -o metrics=127.0.0.1:0
	[ "$(http_get /health/ready)" = "200 text/plain; charset=utf-8 None" ]
	fill_to 0 || fallocate -l "$(($(df --output=avail -k "$SMALL" | tail -1) * 1024))" "$SMALL/filler"
	[ "$(http_get /health/ready)" = "503 text/plain; charset=utf-8 None" ]
	grep -q 'not ready: the store cannot take a new entry' "$TEST_DIR/body"
	[ "$(python3 -c "import json; print(json.load(open('$MNT/.featurefs/health'))['components']['storage'])")" = error ]
	grep -qx 'featurefs_health_status{component="storage"} 0' "$MNT/.featurefs/metrics"
	# reads and the endpoint go on
	[ "$(http_get /health/live)" = "200 text/plain; charset=utf-8 None" ]
	rm "$SMALL/filler"
	[ "$(http_get /health/ready)" = "200 text/plain; charset=utf-8 None" ]
	grep -qx 'featurefs_health_status{component="storage"} 1' "$MNT/.featurefs/metrics"
}

@test "a store whose disk fails every read: its sound manifest is not called damaged, and checks clean once the disk is back" {
	ext4_store
	make_parquet "$DATA/a.parquet" 2000 1
	mount_store
	mkdir "$MNT/AAPL"
	for k in a b c; do publish_file AAPL "$(key_of $k)" "$DATA/a.parquet"; done
	sync
	# the disk goes (EXT4_IOC_SHUTDOWN, nothing more written)
	python3 -c "import fcntl, os, struct; fcntl.ioctl(os.open('$SMALL', os.O_RDONLY), 0x8004587d, struct.pack('I', 2))"
	ls "$MNT/AAPL" >/dev/null 2>&1 || true
	cat "$MNT/AAPL/$(key_of a).parquet" >/dev/null 2>&1 || true
	cp "$DATA/a.parquet" "$MNT/AAPL/$(key_of d).parquet" 2>/dev/null || true
	unmount_store
	# SQLite calls the pages it could not read malformed, or an I/O error
	log_has "manifest .* cannot be read (Input/output error): its disk fails, which is no damage of the file" ||
		log_has "disk I/O error"
	refute log_has "is damaged"
	# and back
	umount "$SMALL"
	e2fsck -fy "$SMALL.img" >/dev/null 2>&1 || true
	mount -o loop "$SMALL.img" "$SMALL"
	fsck_clean
}

@test "a store whose filesystem is detached under the mount (umount -l): no loss is claimed, and none happens" {
	ext4_store
	make_parquet "$DATA/a.parquet" 2000 1
	mount_store
	publish_file AAPL "$K" "$DATA/a.parquet"
	umount -l "$SMALL"
	k2=$(key_of after)
	publish_file AAPL "$k2" "$DATA/a.parquet"
	cmp "$DATA/a.parquet" "$MNT/AAPL/$K.parquet"
	[ "$(python3 -c "import json; print(json.load(open('$MNT/.featurefs/health'))['components']['manifest'])")" = ok ]
	log_has "the path no longer reaches the store this mount has open"
	refute log_has "removed or replaced under the mount"
	unmount_store
	mount -o loop "$SMALL.img" "$SMALL"
	[ "$(manifest_sql "select count(*) from entries where key = '$k2' and state = 'published'")" = 1 ]
	fsck_clean
	# a store removed whole is no store moved: what is recorded is lost
	mount_store
	rm -rf "$STORE"
	cat "$MNT/AAPL/$K.parquet" >/dev/null 2>&1 || true
	[ "$(python3 -c "import json; print(json.load(open('$MNT/.featurefs/health'))['components']['manifest'])")" = error ]
	log_has "manifest.db was removed or replaced under the mount"
}

@test "a store whose filesystem stops taking writes after an error: the storage health says so, reads go on" {
	ext4_store
	make_parquet "$DATA/a.parquet" 2000 1
	mount_store -o metrics=127.0.0.1:0
	mkdir "$MNT/AAPL"
	cp "$DATA/a.parquet" "$MNT/AAPL/$K.parquet"
	wait_published "$MNT/AAPL/$K.parquet"
	echo partial >"$MNT/AAPL/.scratch"
	[ "$(http_get /health/ready)" = "200 text/plain; charset=utf-8 None" ]
	# ext4 turns itself read-only, but says rw, and statvfs has room
	echo 1 >"/sys/fs/ext4/$EXT4_DEV/trigger_fs_error"
	[ "$(http_get /health/ready)" = "503 text/plain; charset=utf-8 None" ]
	grep -q 'not ready: the store cannot take a new entry' "$TEST_DIR/body"
	[ "$(python3 -c "import json; print(json.load(open('$MNT/.featurefs/health'))['components']['storage'])")" = error ]
	grep -qx 'featurefs_health_status{component="storage"} 0' "$MNT/.featurefs/metrics"
	[ "$(http_get /health/live)" = "200 text/plain; charset=utf-8 None" ]
	cmp "$DATA/a.parquet" "$MNT/AAPL/$K.parquet"
	# a scratch file the store cannot remove stays, and rm says so
	[ "$(try_errno "os.unlink('$MNT/AAPL/.scratch')")" = EROFS ]
	[ -e "$MNT/AAPL/.scratch" ]
	log_has "unlink AAPL/.scratch: tmp/.*: Read-only file system"
	# what the store refuses says why
	[ "$(try_errno "os.mkdir('$MNT/MSFT')")" = EROFS ]
	[ "$(try_errno "open('$MNT/AAPL/$(key_of new).parquet', 'xb')")" = EROFS ]
	log_has "manifest .*(its filesystem turned read-only after an error)"
}

@test "a rename onto a key whose publish is stuck gives up: EEXIST, not a hang of the directory; its state reads writing" {
	require_faults
	make_parquet "$DATA/a.parquet" 20000 1
	FEATUREFS_FAULT=compress=stall@1 mount_store -o compress=zstd
	mkdir "$MNT/AAPL"
	cp "$DATA/a.parquet" "$MNT/AAPL/.scratch"
	cp "$DATA/a.parquet" "$MNT/AAPL/$K.parquet" # its publish stalls
	# the kernel holds the directory for the rename: a wait for the
	# publish is bounded (a guard against a hang, not a timing)
	r=$(timeout -s KILL "$READY_TIMEOUT" python3 -c "
import errno, os
try:
    os.rename('$MNT/AAPL/.scratch', '$MNT/AAPL/$K.parquet'); print('OK')
except OSError as e:
    print(errno.errorcode[e.errno])" 3>&-) || true
	[ "$r" = EEXIST ]
	cmp "$DATA/a.parquet" "$MNT/AAPL/.scratch"
	# so is an attribute read's wait for it
	r=$(timeout -s KILL "$READY_TIMEOUT" getfattr --only-values \
		-n user.featurefs.state "$MNT/AAPL/$K.parquet" 3>&-) || true
	[ "$r" = writing ]
	log_has "stalling at compress"
	kill_daemon
}

@test "a manifest made immutable under the mount: writes fail with EIO and the log says why; entries stay" {
	make_parquet "$DATA/a.parquet" 2000 1
	mount_store
	mkdir "$MNT/AAPL"
	cp "$DATA/a.parquet" "$MNT/AAPL/$K.parquet"
	wait_published "$MNT/AAPL/$K.parquet"
	chattr +i "$STORE/manifest.db" "$STORE/manifest.db-wal" 2>/dev/null ||
		skip "no chattr +i here"
	r=$(try_errno "open('$MNT/AAPL/$(key_of new).parquet', 'xb').close()")
	chattr -i "$STORE/manifest.db" "$STORE/manifest.db-wal"
	[ "$r" = EIO ]
	# SQLite loses the errno of the failed write: it is found again
	log_has "manifest .*: disk I/O error (Operation not permitted)"
	cmp "$DATA/a.parquet" "$MNT/AAPL/$K.parquet"
	cp "$DATA/a.parquet" "$MNT/AAPL/$(key_of later).parquet"
	cmp "$DATA/a.parquet" "$MNT/AAPL/$(key_of later).parquet"
	# a mount that starts on it says at once that it refuses writes
	unmount_store
	chattr +i "$STORE/manifest.db"
	mount_store
	r=$(grep -c '"manifest": "error"' "$MNT/.featurefs/health" || true)
	unmount_store
	chattr -i "$STORE/manifest.db"
	[ "$r" = 1 ]
	log_has "could not register the mount in the manifest"
}

@test "injected ENOSPC at fsync and at the rename: the errno, or the write kept for the next mount; never a partial entry" {
	require_faults
	make_parquet "$DATA/a.parquet" 20000 1
	for point in tmp_fsync publish_rename; do
		FEATUREFS_FAULT="$point=ENOSPC" mount_store
		mkdir -p "$MNT/AAPL"
		run write_entry "$MNT/AAPL/$K.parquet" "$DATA/a.parquet"
		echo "$point: $output" >&2
		case $point in
		tmp_fsync) [ "$output" = "close ENOSPC" ] && wait_discarded "$K" ;;
		# validated at close, so close succeeds; the publish in
		# release fails, and what close() accepted is kept
		publish_rename) [ "$output" = ok ] && wait_kept "$K" ;;
		esac
		[ "$(try_errno "open('$MNT/AAPL/$K.parquet', 'rb')")" = ENOENT ]
		[ -z "$(ls -A "$STORE/objects/AAPL" 2>/dev/null)" ]
		[ "$(stats_get "['load_failures']['nospace']")" = 1 ]
		log_has "discard AAPL/$K.parquet: .*No space left on device (nospace)"
		unmount_store
		fsck_clean
		mount_store
		case $point in
		tmp_fsync) [ "$(state_of "$K" "$DATA/a.parquet")" = absent ] ;;
		publish_rename) [ "$(state_of "$K" "$DATA/a.parquet")" = complete ] ;;
		esac
		nothing_in_tmp
		rm -f "$MNT/AAPL/$K.parquet"
		unmount_store
	done
}

@test "an object in place whose directory cannot be fsynced is published, never left without a row" {
	require_faults
	make_parquet "$DATA/a.parquet" 20000 1
	FEATUREFS_FAULT="objects_fsync=EMFILE" mount_store
	mkdir "$MNT/AAPL"
	[ "$(write_entry "$MNT/AAPL/$K.parquet" "$DATA/a.parquet")" = ok ]
	wait_published "$MNT/AAPL/$K.parquet"
	cmp "$DATA/a.parquet" "$MNT/AAPL/$K.parquet"
	log_has "publish AAPL/$K: fsync of objects/AAPL: Too many open files; published"
	unmount_store
	fsck_clean
}

@test "an object left without a row is moved to lost+found when its key is written again" {
	make_parquet "$DATA/a.parquet" 20000 1
	make_parquet "$DATA/b.parquet" 30000 1
	mount_store
	mkdir "$MNT/AAPL"
	unmount_store
	# a publish cut short, or a manifest restored from an older backup
	mkdir -p "$STORE/objects/AAPL"
	cp "$DATA/b.parquet" "$STORE/objects/AAPL/$K.parquet"
	mount_store
	[ "$(write_entry "$MNT/AAPL/$K.parquet" "$DATA/a.parquet")" = ok ]
	wait_published "$MNT/AAPL/$K.parquet"
	cmp "$DATA/a.parquet" "$MNT/AAPL/$K.parquet"
	cmp "$DATA/b.parquet" "$STORE/lost+found/AAPL.$K.parquet"
	log_has "publish AAPL/$K: objects/AAPL/$K.parquet had no manifest row: moved it to lost+found/AAPL.$K.parquet"
	unmount_store
	fsck_clean
}

@test "injected ENOSPC at write, disk staying full: write fails, counted as nospace, nothing partial, the mount goes on" {
	require_faults
	make_parquet "$DATA/a.parquet" 20000 1
	FEATUREFS_FAULT="tmp_write=ENOSPC@2+" mount_store
	mkdir "$MNT/AAPL"
	[ "$(write_entry "$MNT/AAPL/$K.parquet" "$DATA/a.parquet")" = "write ENOSPC" ]
	wait_discarded "$K"
	[ -z "$(ls -A "$STORE/objects/AAPL" 2>/dev/null)" ]
	[ "$(stats_get "['creates']")" = 1 ]
	[ "$(stats_get "['publishes']")" = 0 ]
	# counted as a full disk, not as a truncated file
	[ "$(stats_get "['load_failures']['nospace']")" = 1 ]
	[ "$(stats_get "['load_failures']['truncated']")" = 0 ]
	unmount_store
	fsck_clean
}

@test "a client that ignores a failed write cannot publish the hole it left" {
	require_faults
	make_parquet "$DATA/a.parquet" 20000 1
	# the second write fails once (a transient EIO); the client goes on
	# writing the rest at its offsets, so the footer is whole
	FEATUREFS_FAULT="tmp_write=EIO@2" mount_store
	mkdir "$MNT/AAPL"
	run python3 - "$MNT/AAPL/$K.parquet" "$DATA/a.parquet" <<'PY'
import errno, os, sys
path, src = sys.argv[1:]
data = open(src, "rb").read()
fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
failed = []
for off in range(0, len(data), 65536):
    try:
        os.pwrite(fd, data[off:off + 65536], off)
    except OSError as e:
        failed.append(errno.errorcode[e.errno])
try:
    os.close(fd)
    print("write", *failed, "close ok")
except OSError as e:
    print("write", *failed, "close", errno.errorcode[e.errno])
PY
	echo "$output" >&2
	[ "$output" = "write EIO close EIO" ]
	wait_discarded "$K"
	[ ! -e "$STORE/objects/AAPL/$K.parquet" ]
}

@test "injected EIO at the manifest update after close() returned 0: the object goes, the key is free, the write is kept for the next mount" {
	require_faults
	make_parquet "$DATA/a.parquet" 20000 1
	make_parquet "$DATA/b.parquet" 2000 1
	# publish_kept: the mount does not try it again (next test)
	FEATUREFS_FAULT="manifest_publish=EIO@1,publish_kept=EAGAIN" mount_store
	mkdir "$MNT/AAPL"
	[ "$(write_entry "$MNT/AAPL/$K.parquet" "$DATA/a.parquet")" = ok ]
	wait_kept "$K"
	[ "$(try_errno "open('$MNT/AAPL/$K.parquet', 'rb')")" = ENOENT ]
	[ ! -e "$STORE/objects/AAPL/$K.parquet" ]
	log_has "discard AAPL/$K.parquet: manifest: Input/output error"
	log_has "AAPL/$K.parquet: its writer's close() returned 0: tmp/.* stays, with its row, and is published once the manifest and the store take it (by this mount, the next, or fsck -p)"
	unmount_store
	fsck_clean
	mount_store
	cmp "$DATA/a.parquet" "$MNT/AAPL/$K.parquet"
	nothing_in_tmp
	# the key is free in the mount that could not publish it: a new
	# write takes the row over, and is what the next mount keeps
	K2=$(key_of second)
	unmount_store
	FEATUREFS_FAULT="manifest_publish=EIO@1,publish_kept=EAGAIN" mount_store
	[ "$(write_entry "$MNT/AAPL/$K2.parquet" "$DATA/a.parquet")" = ok ]
	wait_kept "$K2"
	[ "$(write_entry "$MNT/AAPL/$K2.parquet" "$DATA/b.parquet")" = ok ]
	wait_published "$MNT/AAPL/$K2.parquet"
	cmp "$DATA/b.parquet" "$MNT/AAPL/$K2.parquet"
	log_has "AAPL/$K2: a new write of the key replaces tmp/.*, kept since its publish failed"
	unmount_store
	# nothing of the replaced write is left behind
	[ -z "$(ls -A "$STORE/tmp")" ]
	run "$FEATUREFS" fsck -n "$STORE"
	[ "$status" -eq 0 ]
	mount_store
	cmp "$DATA/b.parquet" "$MNT/AAPL/$K2.parquet"
	nothing_in_tmp
}

@test "a write kept after its publish failed is published by the mount once the manifest takes it" {
	require_faults
	make_parquet "$DATA/a.parquet" 20000 1
	FEATUREFS_FAULT="manifest_publish=EIO@1" mount_store
	mkdir "$MNT/AAPL"
	[ "$(write_entry "$MNT/AAPL/$K.parquet" "$DATA/a.parquet")" = ok ]
	# the ticker tries it again within a heartbeat (10 s)
	for ((i = 0; i < 300; i++)); do
		[ -e "$MNT/AAPL/$K.parquet" ] && break
		sleep 0.1
	done
	cmp "$DATA/a.parquet" "$MNT/AAPL/$K.parquet"
	log_has "discard AAPL/$K.parquet: manifest: Input/output error"
	log_has "published AAPL/$K, kept since its publish failed: the manifest takes it now"
	[ "$(manifest_sql "select state from entries where key = '$K'")" = published ]
	nothing_in_tmp
	unmount_store
	run "$FEATUREFS" fsck -n "$STORE"
	echo "$output" >&2
	[ "$status" -eq 0 ]
	mount_store
	cmp "$DATA/a.parquet" "$MNT/AAPL/$K.parquet"
}

@test "a kept write whose publish still fails at unmount is left for the next mount" {
	require_faults
	make_parquet "$DATA/a.parquet" 20000 1
	# the first publish, and the tries of the ticker and the unmount
	FEATUREFS_FAULT="manifest_publish=EIO@1+" mount_store
	mkdir "$MNT/AAPL"
	[ "$(write_entry "$MNT/AAPL/$K.parquet" "$DATA/a.parquet")" = ok ]
	wait_kept "$K"
	unmount_store
	log_has "AAPL/$K: tmp/.*, kept since its publish failed, is still refused: Input/output error"
	log_has "AAPL/$K: tmp/.*, kept since its publish failed, is left with its row for the next mount, or fsck -p, to publish"
	[ "$(manifest_sql "select state from entries where key = '$K' and sealed_tmp is not null")" = writing ]
	mount_store
	cmp "$DATA/a.parquet" "$MNT/AAPL/$K.parquet"
	nothing_in_tmp
}

@test "close() fails when the manifest cannot record what it accepted: the entry goes, the key is free" {
	require_faults
	make_parquet "$DATA/a.parquet" 20000 1
	FEATUREFS_FAULT="seal=EIO@1" mount_store
	mkdir "$MNT/AAPL"
	[ "$(write_entry "$MNT/AAPL/$K.parquet" "$DATA/a.parquet")" = "close EIO" ]
	wait_discarded "$K"
	log_has "recording it as closed: Input/output error"
	[ "$(write_entry "$MNT/AAPL/$K.parquet" "$DATA/a.parquet")" = ok ]
	wait_published "$MNT/AAPL/$K.parquet"
	cmp "$DATA/a.parquet" "$MNT/AAPL/$K.parquet"
	unmount_store
	fsck_clean
}

@test "a rename into a key that fails at the manifest changes nothing: the scratch file is renamed again" {
	require_faults
	make_parquet "$DATA/a.parquet" 20000 1
	FEATUREFS_FAULT="manifest_publish=EIO@1" mount_store
	mkdir "$MNT/AAPL"
	cp "$DATA/a.parquet" "$MNT/AAPL/.$K.tmp"
	run mv "$MNT/AAPL/.$K.tmp" "$MNT/AAPL/$K.parquet"
	[ "$status" -ne 0 ]
	[[ "$output" == *"Input/output error"* ]]
	cmp "$DATA/a.parquet" "$MNT/AAPL/.$K.tmp"
	mv "$MNT/AAPL/.$K.tmp" "$MNT/AAPL/$K.parquet"
	cmp "$DATA/a.parquet" "$MNT/AAPL/$K.parquet"
	unmount_store
	fsck_clean
}

@test "an object removed or cut short behind the mount: EIO and a log line" {
	make_parquet "$DATA/a.parquet" 2000 1
	mount_store
	mkdir "$MNT/AAPL"
	cp "$DATA/a.parquet" "$MNT/AAPL/$K.parquet"
	wait_published "$MNT/AAPL/$K.parquet"
	unmount_store
	rm "$STORE/objects/AAPL/$K.parquet"
	mount_store
	# listed, and its row says it exists: its loss is an I/O error
	[ -f "$MNT/AAPL/$K.parquet" ]
	[ "$(try_errno "open('$MNT/AAPL/$K.parquet', 'rb')")" = EIO ]
	log_has "open AAPL/$K.parquet: its object objects/AAPL/$K.parquet is missing; fsck -p drops the row"
	# rm still removes what is left of it
	rm "$MNT/AAPL/$K.parquet"
	[ "$(manifest_sql "select count(*) from entries")" = 0 ]
	cp "$DATA/a.parquet" "$MNT/AAPL/$K.parquet"
	cmp "$DATA/a.parquet" "$MNT/AAPL/$K.parquet"
	# cut short behind the mount: not a shorter file that reads cleanly
	unmount_store
	truncate -s 1000 "$STORE/objects/AAPL/$K.parquet"
	mount_store
	[ "$(try_errno "open('$MNT/AAPL/$K.parquet', 'rb')")" = EIO ]
	log_has "open AAPL/$K.parquet: its object objects/AAPL/$K.parquet is 1000 bytes where its row says $(stat -c %s "$DATA/a.parquet"); fsck -y quarantines it"
}

@test "tmp/ and objects/ removed by a cleaner, mounted or not: made again, writes go on" {
	make_parquet "$DATA/a.parquet" 2000 1
	mount_store
	mkdir "$MNT/AAPL"
	# what systemd-tmpfiles does to empty directories past their age
	find "$STORE/tmp" "$STORE/objects" -depth -type d -empty -delete
	[ ! -e "$STORE/tmp" ] && [ ! -e "$STORE/objects" ]
	cp "$DATA/a.parquet" "$MNT/AAPL/$(key_of one).parquet"
	cmp "$DATA/a.parquet" "$MNT/AAPL/$(key_of one).parquet"
	log_has "tmp/ was removed behind the mount; made it again"
	log_has "objects/ was removed behind the mount; made it again"
	unmount_store
	rm -rf "$STORE/tmp"
	mount_store
	log_has "tmp/ was missing; made it again"
	cp "$DATA/a.parquet" "$MNT/AAPL/$(key_of two).parquet"
	cmp "$DATA/a.parquet" "$MNT/AAPL/$(key_of two).parquet"
	unmount_store
	fsck_clean
}

# ---- the manifest locked by another process --------------------------

# lock_manifest: a sqlite3 CLI holds BEGIN EXCLUSIVE on the manifest until
# release_manifest; returns once the lock is held.
lock_manifest() {
	mkfifo "$TEST_DIR/locker.in"
	sqlite3 "$STORE/manifest.db" <"$TEST_DIR/locker.in" >"$TEST_DIR/locker.out" 2>&1 3>&- &
	LOCKER_PID=$!
	exec 7>"$TEST_DIR/locker.in"
	printf '.timeout 30000\nBEGIN EXCLUSIVE;\nINSERT INTO meta VALUES ('"'"'locker'"'"', '"'"'x'"'"');\n.print locked\n' >&7
	for ((i = 0; i < READY_TIMEOUT * 10; i++)); do
		grep -q locked "$TEST_DIR/locker.out" && return 0
		sleep 0.1
	done
	cat "$TEST_DIR/locker.out" >&2
	return 1
}

release_manifest() {
	printf 'ROLLBACK;\n.quit\n' >&7
	exec 7>&-
	wait "$LOCKER_PID"
	LOCKER_PID=
}

# lock_manifest_for PID: once writer PID has made $TEST_DIR/written, hold
# the manifest locked while it goes on ($TEST_DIR/locked) to its end.
lock_manifest_for() {
	local writer=$1 i
	for ((i = 0; i < READY_TIMEOUT * 10; i++)); do
		[ -e "$TEST_DIR/written" ] && break
		sleep 0.1
	done
	lock_manifest
	touch "$TEST_DIR/locked"
	wait "$writer" || true
	release_manifest
}

# mount_nofile LIMIT: mount_store with passthrough off (each open read
# then holds a descriptor in the daemon), the daemon started under
# RLIMIT_NOFILE LIMIT, in prlimit's SOFT:HARD form.
mount_nofile() {
	prlimit --nofile="$1" "$FEATUREFS" "$STORE" "$MNT" -f \
		-o gc_interval=0,passthrough=off >>"$TEST_DIR/daemon.log" 2>&1 3>&- &
	DAEMON_PID=$!
	wait_mounted
}

# open_many DIR N: hold N read descriptors on DIR's files at once; prints
# "N OK", or how many were open and the errno of the one that failed.
open_many() {
	python3 - "$1" "$2" <<'PY'
import errno, os, resource, sys
d, want = sys.argv[1], int(sys.argv[2])
hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
names = sorted(os.listdir(d))
fds = []
try:
    while len(fds) < want:
        fds.append(os.open(os.path.join(d, names[len(fds) % len(names)]), os.O_RDONLY))
        os.pread(fds[-1], 4, 0)
    print(len(fds), "OK")
except OSError as e:
    print(len(fds), errno.errorcode.get(e.errno, e.errno))
PY
}

@test "open files: the daemon takes its hard limit; out of descriptors, opens get ENFILE and the mount goes on; too low a limit is refused" {
	command -v prlimit >/dev/null || skip "no prlimit"
	make_parquet "$DATA/a.parquet" 1000
	# the soft limit mount(8) and systemd leave is 1024: it caps nothing
	mount_nofile 1024:
	mkdir "$MNT/AAPL"
	for i in 1 2 3; do cp "$DATA/a.parquet" "$MNT/AAPL/$(key_of f$i).parquet"; done
	hard=$(ulimit -Hn)
	if [ "$hard" = unlimited ] || [ "$hard" -ge 2048 ]; then
		[ "$(open_many "$MNT/AAPL" 1500)" = "1500 OK" ]
	fi
	unmount_store
	# a hard limit it cannot pass: ENFILE, not EIO, and nothing is lost
	mount_nofile 64:64
	run open_many "$MNT/AAPL" 200
	[[ "$output" == *" ENFILE" ]]
	log_has "the daemon is out of file descriptors"
	# said once a minute, not once an open
	for i in 1 2 3; do open_many "$MNT/AAPL" 200 >/dev/null; done
	[ "$(grep -c 'out of file descriptors' "$TEST_DIR/daemon.log")" = 1 ]
	[ "$(open_many "$MNT/AAPL" 10)" = "10 OK" ]
	cmp "$DATA/a.parquet" "$MNT/AAPL/$(key_of f1).parquet"
	# creates leave descriptors for the publishes of the writes in
	# flight: each write close() accepted is there right after it
	python3 - "$MNT/AAPL" "$DATA/a.parquet" <<'PY'
import os, sys, threading
from concurrent.futures import ThreadPoolExecutor
d, data = sys.argv[1], open(sys.argv[2], "rb").read()
start = threading.Barrier(100)
def write(i):
    p = "%s/%064x.parquet" % (d, i)
    try:
        fd = os.open(p, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except OSError:
        start.wait()
        return None
    start.wait()
    os.write(fd, data)
    os.close(fd)
    return p
with ThreadPoolExecutor(100) as ex:
    accepted = [p for p in ex.map(write, range(100)) if p]
assert accepted, "no create got a descriptor"
for p in accepted:
    assert open(p, "rb").read() == data, p
PY
	unmount_store
	# a limit too low to serve anything is refused at once, by name
	run prlimit --nofile=12:12 "$FEATUREFS" "$STORE" "$MNT" -f
	[ "$status" -eq 1 ]
	[[ "$output" == *"the open-file limit is 12: a mount needs at least 64 (ulimit -n, LimitNOFILE=)"* ]]
	refute mountpoint -q "$MNT"
	fsck_clean
}

@test "out of descriptors, a maintenance command is told so at once" {
	# accept() fails as it does when the daemon is out of them
	FEATUREFS_FAULT=ctl_accept=EMFILE@1 mount_store
	run "$FEATUREFS" stats "$MNT"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"cannot reach the mount of $STORE (pid $DAEMON_PID): Too many open files; figures from the manifest"* ]]
	log_has "control socket: accept: the daemon is out of file descriptors"
	# the spare descriptor is back: the next command is served
	run "$FEATUREFS" stats "$MNT"
	[ "$status" -eq 0 ]
	[[ "$output" != *"cannot reach"* ]]
	unmount_store
}

@test "a write past the daemon's file-size limit fails with EFBIG; the mount goes on" {
	make_parquet "$DATA/big.parquet" 800000 3
	make_parquet "$DATA/a.parquet" 1000 1
	[ "$(stat -c %s "$DATA/big.parquet")" -gt $((8 << 20)) ]
	prlimit --fsize=$((8 << 20)) "$FEATUREFS" "$STORE" "$MNT" -f \
		-o gc_interval=0 >>"$TEST_DIR/daemon.log" 2>&1 3>&- &
	DAEMON_PID=$!
	wait_mounted
	mkdir "$MNT/AAPL"
	run write_entry "$MNT/AAPL/$K.parquet" "$DATA/big.parquet"
	[ "$output" = "write EFBIG" ]
	# the write that reached the limit wrote nothing (64 KiB writes end
	# at it), and what came before is no whole Parquet file
	log_has "write AAPL/$K.parquet at byte 8388608: past the largest file the store takes .* (EFBIG)"
	log_has "discard AAPL/$K.parquet: "
	[ ! -e "$MNT/AAPL/$K.parquet" ]
	kill -0 "$DAEMON_PID"
	K2=$(key_of small)
	[ "$(write_entry "$MNT/AAPL/$K2.parquet" "$DATA/a.parquet")" = ok ]
	cmp "$DATA/a.parquet" "$MNT/AAPL/$K2.parquet"
	[ -z "$(ls -A "$STORE/tmp")" ]
	unmount_store
	fsck_clean
}

@test "manifest locked past the busy timeout: creates fail clearly and leave nothing; reads go on; the health says so; creates resume" {
	make_parquet "$DATA/a.parquet" 2000 1
	mount_store
	mkdir "$MNT/AAPL"
	ka=$(key_of known)
	cp "$DATA/a.parquet" "$MNT/AAPL/$ka.parquet"
	wait_published "$MNT/AAPL/$ka.parquet"
	lock_manifest
	run write_entry "$MNT/AAPL/$K.parquet" "$DATA/a.parquet"
	echo "$output" >&2
	# a clear errno at the create, not a hang and not a half entry
	# (EAGAIN: nothing is wrong with the file, and the call may be
	# tried again)
	[ "$output" = "open EAGAIN" ]
	log_has "manifest .*manifest.db: .*database is locked"
	[ ! -e "$MNT/AAPL/$K.parquet" ]
	[ "$(ls "$MNT/AAPL")" = "$ka.parquet" ]
	[ -z "$(ls -A "$STORE/tmp")" ]
	# known entries keep being served, repeatedly, while the lock is held
	for i in 1 2 3; do
		cmp "$DATA/a.parquet" "$MNT/AAPL/$ka.parquet"
	done
	kill -0 "$DAEMON_PID"
	# and the health says the manifest refuses writes
	grep -q '"manifest": "error"' "$MNT/.featurefs/health"
	release_manifest
	[ "$(manifest_sql "select count(*) from meta where name = 'locker'")" = 0 ]
	[ "$(write_entry "$MNT/AAPL/$K.parquet" "$DATA/a.parquet")" = ok ]
	wait_published "$MNT/AAPL/$K.parquet"
	cmp "$DATA/a.parquet" "$MNT/AAPL/$K.parquet"
	grep -q '"manifest": "ok"' "$MNT/.featurefs/health"
	# a manifest moved away under the mount: what is recorded now
	# would be lost at the unmount, and the health says so
	mv "$STORE/manifest.db" "$STORE/manifest.db.moved"
	grep -q '"manifest": "error"' "$MNT/.featurefs/health"
	log_has "manifest .*manifest.db was removed or replaced under the mount"
	mv "$STORE/manifest.db.moved" "$STORE/manifest.db"
	grep -q '"manifest": "ok"' "$MNT/.featurefs/health"
	unmount_store
	# the reads made under the lock were recorded once it was gone
	[ "$(manifest_sql "select access_count >= 3 from entries where key = '$ka'")" = 1 ]
	fsck_clean
}

@test "fsck of a store whose manifest another process holds says it is locked, not corrupt, and changes nothing" {
	make_parquet "$DATA/a.parquet" 2000 1
	mount_store
	publish_file AAPL "$K" "$DATA/a.parquet"
	unmount_store
	lock_manifest
	run "$FEATUREFS" fsck -p "$STORE"
	echo "$output" >&2
	[ "$status" -eq 8 ]
	[[ "$output" == *"manifest.db is locked by another process, which did not let go of it in time; nothing was changed: run fsck again once it is free"* ]]
	refute grep -q "corrupt" <<<"$output"
	release_manifest
	fsck_clean
}

@test "a read-only mount stays ready while another process holds the manifest" {
	make_parquet "$DATA/a.parquet" 2000 1
	mount_store
	mkdir "$MNT/AAPL"
	cp "$DATA/a.parquet" "$MNT/AAPL/$K.parquet"
	unmount_store
	mount_store -o ro
	lock_manifest
	# its access records cannot be written; it takes no entries anyway
	cat "$MNT/AAPL/$K.parquet" >/dev/null
	for ((i = 0; i < READY_TIMEOUT * 10; i++)); do
		log_has "database is locked" && break
		sleep 0.1
	done
	log_has "database is locked"
	grep -q '"manifest": "ok"' "$MNT/.featurefs/health"
	cmp "$DATA/a.parquet" "$MNT/AAPL/$K.parquet"
	release_manifest
	unmount_store
}

@test "while another process holds the manifest, the stats answer and count the reads not yet written once" {
	make_parquet "$DATA/a.parquet" 2000 1
	mount_store -o metrics=127.0.0.1:0
	mkdir "$MNT/AAPL"
	cp "$DATA/a.parquet" "$MNT/AAPL/$K.parquet"
	cat "$MNT/AAPL/$K.parquet" >/dev/null
	for ((i = 0; i < READY_TIMEOUT * 10; i++)); do
		[ "$(manifest_sql "select hits from symbols")" = 1 ] && break
		sleep 0.1
	done
	lock_manifest
	for i in 1 2 3; do
		cat "$MNT/AAPL/$K.parquet" >/dev/null
	done
	# the ticker's flush gives up at once and keeps the records; the
	# stats wait for no flush (see the note in daemon.c's ticker)
	for ((i = 0; i < READY_TIMEOUT * 10; i++)); do
		log_has "begin: database is locked" && break
		sleep 0.1
	done
	log_has "begin: database is locked"
	[ "$(stats_get "['hits']")" = 4 ]
	[ "$(http_get /metrics)" = "200 text/plain; version=0.0.4; charset=utf-8 None" ]
	grep -q '^featurefs_hits_total{symbol="AAPL"} 4$' "$TEST_DIR/body"
	[ "$(manifest_sql "select hits from symbols")" = 1 ]
	release_manifest
	# written once the lock is gone, and still counted once
	for ((i = 0; i < READY_TIMEOUT * 10; i++)); do
		[ "$(manifest_sql "select hits from symbols")" = 4 ] && break
		sleep 0.1
	done
	[ "$(manifest_sql "select hits from symbols")" = 4 ]
	[ "$(stats_get "['hits']")" = 4 ]
	unmount_store
	[ "$(manifest_sql "select access_count from entries")" = 4 ]
}

@test "a GC pass while another process holds the manifest: entries read whose records wait to be written are in use" {
	make_parquet "$DATA/a.parquet" 1000 1
	mount_store
	for k in a b c; do
		publish_file AAPL "$(key_of $k)" "$DATA/a.parquet"
	done
	sleep 2
	lock_manifest
	# b and c are read now: their records wait in the daemon, taken by
	# the recorder's flush while the pass's removal waits for the lock
	cat "$MNT/AAPL/$(key_of b).parquet" "$MNT/AAPL/$(key_of c).parquet" >/dev/null
	"$FEATUREFS" gc --older-than 1s --json "$MNT" >"$TEST_DIR/gc.json" 2>&1 3>&- &
	gc=$!
	sleep 2.5
	release_manifest
	wait "$gc"
	cat "$TEST_DIR/gc.json" >&2
	[ ! -e "$MNT/AAPL/$(key_of a).parquet" ]
	for k in b c; do
		cmp "$DATA/a.parquet" "$MNT/AAPL/$(key_of $k).parquet"
	done
	unmount_store
	fsck_clean
}

@test "a GC quota pass: an entry read after it listed its rows, and written meanwhile, is not removed" {
	make_parquet "$DATA/a.parquet" 1000 1
	mount_store
	for k in a b c d; do
		publish_file AAPL "$(key_of $k)" "$DATA/a.parquet"
		sleep 0.05
	done
	sleep 1.5
	size=$(manifest_sql "select max(stored_size_bytes) from entries")
	lock_manifest
	# b's read waits in the daemon: busy to the pass, whose removal of a
	# then waits for the lock; c is read after the pass listed its rows,
	# and its read is written once the lock goes, before the pass gets
	# to c
	cat "$MNT/AAPL/$(key_of b).parquet" >/dev/null
	sleep 1
	"$FEATUREFS" gc --max-size $((size * 25 / 9)) --json "$MNT" >"$TEST_DIR/gc.json" 2>&1 3>&- &
	gc=$!
	sleep 0.5
	cat "$MNT/AAPL/$(key_of c).parquet" >/dev/null
	sleep 2
	release_manifest
	wait "$gc" || true
	cat "$TEST_DIR/gc.json" >&2
	for k in b c; do
		cmp "$DATA/a.parquet" "$MNT/AAPL/$(key_of $k).parquet"
	done
	unmount_store
	fsck_clean
}

@test "stats that cannot be gathered: /.featurefs and /metrics say why, the mount goes on" {
	require_faults
	make_parquet "$DATA/a.parquet" 2000 1
	# the second gathering fails, as an allocation would
	FEATUREFS_FAULT="stats_report=ENOMEM@2+" mount_store -o metrics=127.0.0.1:0
	mkdir "$MNT/AAPL"
	cp "$DATA/a.parquet" "$MNT/AAPL/$K.parquet"
	grep -q '^featurefs_hits_total' "$MNT/.featurefs/metrics"
	[ "$(cat "$MNT/.featurefs/stats")" = "error: Cannot allocate memory" ]
	[ "$(cat "$MNT/.featurefs/stats.json")" = '{"error": "Cannot allocate memory"}' ]
	# metrics keep the mount's own figures, and say the manifest failed
	grep -q '^featurefs_uptime_seconds ' "$MNT/.featurefs/metrics"
	[ "$(http_get /metrics)" = "200 text/plain; version=0.0.4; charset=utf-8 None" ]
	grep -q '^featurefs_health_status{component="manifest"} 0$' "$TEST_DIR/body"
	# and leave out the store's figures rather than show zeros
	grep -q '^featurefs_publishes_total 1$' "$TEST_DIR/body"
	refute grep -q '^featurefs_\(entries\|symbols\|file_bytes\|stored_bytes\|hit_ratio\|hits_total\|misses_total\)\b' "$TEST_DIR/body"
	# but for what the daemon knows itself: a write in flight
	exec 5>"$MNT/AAPL/$(key_of open).parquet"
	grep -qx 'featurefs_entries_in_flight 1' "$MNT/.featurefs/metrics"
	exec 5>&-
	log_has "stats: cannot gather them: Cannot allocate memory"
	cmp "$DATA/a.parquet" "$MNT/AAPL/$K.parquet"
	kill -0 "$DAEMON_PID"
	unmount_store
}

@test "a GC pass that fails: logged, counted, and the gc health is an error until one succeeds" {
	require_faults
	# a GC thread whose own passes come an hour apart
	FEATUREFS_FAULT="gc_pass=EIO@1" mount_store -o gc_interval=1h
	grep -q '"gc": "ok"' "$MNT/.featurefs/health"
	run "$FEATUREFS" gc "$MNT"
	[ "$status" -ne 0 ]
	log_has "gc: pass failed: Input/output error"
	grep -q '"gc": "error"' "$MNT/.featurefs/health"
	grep -qx 'featurefs_health_status{component="gc"} 0' "$MNT/.featurefs/metrics"
	grep -qx 'featurefs_gc_failures_total 1' "$MNT/.featurefs/metrics"
	run "$FEATUREFS" gc "$MNT"
	[ "$status" -eq 0 ]
	grep -q '"gc": "ok"' "$MNT/.featurefs/health"
	grep -qx 'featurefs_health_status{component="gc"} 1' "$MNT/.featurefs/metrics"
	grep -qx 'featurefs_gc_failures_total 1' "$MNT/.featurefs/metrics"
}

# close_while_locked PATH: write an entry and close it while another
# process holds the manifest; prints what close() returned.
close_while_locked() {
	python3 - "$1" "$DATA/a.parquet" "$TEST_DIR" >"$TEST_DIR/w.out" <<'PY' &
import errno, os, sys, time
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
os.write(fd, open(sys.argv[2], 'rb').read())
open(sys.argv[3] + '/written', 'w').close()
while not os.path.exists(sys.argv[3] + '/locked'):
    time.sleep(0.05)
try:
    os.close(fd)
    print("close ok")
except OSError as e:
    print("close", errno.errorcode[e.errno])
PY
	lock_manifest_for $!
	rm -f "$TEST_DIR/locked" "$TEST_DIR/written" "$TEST_DIR/locker.in"
	cat "$TEST_DIR/w.out"
}

@test "a write closed while the manifest is locked: close() fails, and its row goes once the lock does" {
	make_parquet "$DATA/a.parquet" 2000 1
	mount_store
	mkdir "$MNT/AAPL"
	[ "$(close_while_locked "$MNT/AAPL/$K.parquet")" = "close EIO" ]
	log_has "abandon entry: database is locked"
	[ ! -e "$MNT/AAPL/$K.parquet" ]
	# the ticker drops the row the manifest would not drop then
	for i in $(seq 300); do
		log_has "dropped the rows of 1 discarded write" && break
		sleep 0.1
	done
	log_has "dropped the rows of 1 discarded write that the manifest could not drop at the time"
	[ "$(manifest_sql "select count(*) from entries")" = 0 ]
	[ "$(write_entry "$MNT/AAPL/$K.parquet" "$DATA/a.parquet")" = ok ]
	# and at an unmount that comes first
	K2=$(key_of second)
	[ "$(close_while_locked "$MNT/AAPL/$K2.parquet")" = "close EIO" ]
	unmount_store
	[ "$(manifest_sql "select count(*) from entries where state = 'writing'")" = 0 ]
	fsck_clean
}

@test "an entry in flight unlinked while the manifest is locked: its writer's open by name gets ENOENT, not ESTALE" {
	make_parquet "$DATA/a.parquet" 2000 1
	mount_store
	mkdir "$MNT/AAPL"
	# the unlink waits on the manifest to drop the row, its name still
	# there; the writer's own open of the name joins its write until the
	# unlink abandons it, then finds nothing
	python3 - "$MNT/AAPL/$K.parquet" "$TEST_DIR" >"$TEST_DIR/w.out" <<'PY' &
import errno, os, sys, time
path, d = sys.argv[1], sys.argv[2]
fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
os.write(fd, b"PAR1")
open(d + '/written', 'w').close()
while not os.path.exists(d + '/locked'):
    time.sleep(0.05)
unlinker = os.fork()
if unlinker == 0:
    try:
        os.unlink(path)
    finally:
        os._exit(0)
def close(f):
    # a close of the write once the unlink discarded it says so
    try:
        os.close(f)
    except OSError as e:
        assert e.errno == errno.EIO, e
for _ in range(600):
    try:
        f = os.open(path, os.O_WRONLY)
    except OSError as e:
        print("open", errno.errorcode[e.errno])
        break
    close(f)
    time.sleep(0.05)
os.waitpid(unlinker, 0)
close(fd)
PY
	lock_manifest_for $!
	cat "$TEST_DIR/w.out"
	[ "$(cat "$TEST_DIR/w.out")" = "open ENOENT" ]
	[ ! -e "$MNT/AAPL/$K.parquet" ]
	unmount_store
	fsck_clean
}

@test "an unmount while the manifest is locked keeps trying to record the reads" {
	make_parquet "$DATA/a.parquet" 2000 1
	mount_store
	mkdir "$MNT/AAPL"
	cp "$DATA/a.parquet" "$MNT/AAPL/$K.parquet"
	wait_published "$MNT/AAPL/$K.parquet"
	for i in 1 2 3; do cat "$MNT/AAPL/$K.parquet" >/dev/null; done
	lock_manifest
	fusermount3 -u "$MNT"
	for ((i = 0; i < READY_TIMEOUT * 10; i++)); do
		log_has "unmount: writing to the manifest failed" && break
		sleep 0.1
	done
	log_has "unmount: writing to the manifest failed (Resource temporarily unavailable); trying again"
	release_manifest
	wait_daemon_gone
	refute log_has "go unrecorded"
	[ "$(manifest_sql "select access_count >= 3 from entries where key = '$K'")" = 1 ]
}

# ---- the daemon under valgrind -----------------------------------------

@test "valgrind: mount, create, read, fail, rename, unlink, gc, unmount: no definite leaks, clean exit" {
	command -v valgrind >/dev/null || skip "no valgrind"
	if ldd "$FEATUREFS" | grep -q 'libasan\|libubsan'; then
		skip "sanitizer build: valgrind does not run ASan binaries"
	fi
	make_parquet "$DATA/a.parquet" 2000 1
	valgrind --leak-check=full --errors-for-leak-kinds=definite \
		--error-exitcode=99 --log-file="$TEST_DIR/valgrind.log" \
		"$FEATUREFS" "$STORE" "$MNT" -f -o gc_interval=0 \
		>>"$TEST_DIR/daemon.log" 2>&1 3>&- &
	DAEMON_PID=$!
	READY_TIMEOUT=120 wait_mounted
	mkdir "$MNT/AAPL"
	cp "$DATA/a.parquet" "$MNT/AAPL/$K.parquet"
	wait_published "$MNT/AAPL/$K.parquet"
	cmp "$DATA/a.parquet" "$MNT/AAPL/$K.parquet"
	getfattr -d "$MNT/AAPL/$K.parquet" >/dev/null
	getfattr -n user.featurefs.sha256 "$MNT/AAPL/$K.parquet" >/dev/null
	echo junk >"$DATA/junk"
	[ "$(write_entry "$MNT/AAPL/$(key_of junk).parquet" "$DATA/junk")" = "close EIO" ]
	cp "$DATA/a.parquet" "$MNT/AAPL/.upload"
	mv "$MNT/AAPL/.upload" "$MNT/AAPL/$(key_of renamed).parquet"
	rm "$MNT/AAPL/$(key_of renamed).parquet"
	cat "$MNT/.featurefs/stats" "$MNT/.featurefs/stats.json" "$MNT/.featurefs/config" \
		"$MNT/.featurefs/health" "$MNT/.featurefs/metrics" >/dev/null
	"$FEATUREFS" gc --older-than 4w "$MNT" >/dev/null
	"$FEATUREFS" stats "$MNT" >/dev/null
	head -c 5000 "$DATA/a.parquet" >"$DATA/cut"
	[ "$(write_entry "$MNT/AAPL/$(key_of cut).parquet" "$DATA/cut")" = "close EIO" ]
	fusermount3 -u "$MNT"
	st=0
	wait "$DAEMON_PID" || st=$?
	DAEMON_PID=
	cat "$TEST_DIR/valgrind.log" >&2
	[ "$st" -eq 0 ]
	grep -q "definitely lost: 0 bytes in 0 blocks\|All heap blocks were freed" "$TEST_DIR/valgrind.log"
	refute grep -q "Invalid read\|Invalid write\|uninitialised" "$TEST_DIR/valgrind.log"
}

# read_twice_with FAULT: mount with FEATUREFS_FAULT=FAULT, publish an
# entry and read it twice; skips where the kernel offers no passthrough.
read_twice_with() {
	make_parquet "$DATA/a.parquet" 20000
	FEATUREFS_FAULT="$1" mount_store
	[ "$(stats_get "['reads']['passthrough']")" = on ] ||
		skip "this kernel does not offer FUSE passthrough"
	mkdir "$MNT/AAPL"
	cp "$DATA/a.parquet" "$MNT/AAPL/$K.parquet"
	cmp "$DATA/a.parquet" "$MNT/AAPL/$K.parquet"
	cmp "$DATA/a.parquet" "$MNT/AAPL/$K.parquet"
}

@test "a kernel that refuses backing files: reads go through the daemon" {
	require_faults
	read_twice_with backing_open=EPERM
	[ "$(stats_get "['reads']['passthrough']")" = unavailable ]
	[ "$(stats_get "['reads']['passthrough_opens']")" = 0 ]
	[ "$(stats_get "['reads']['daemon_bytes']")" -gt 0 ]
	log_has "passthrough: the kernel refused a backing file (Operation not permitted: backing files need CAP_SYS_ADMIN)"
	[ "$(grep -c "refused a backing file" "$TEST_DIR/daemon.log")" = 1 ]
}

@test "a backing file that fails once: that open is served by the daemon" {
	require_faults
	read_twice_with backing_open=EMFILE@1
	[ "$(stats_get "['reads']['passthrough']")" = on ]
	[ "$(stats_get "['reads']['passthrough_opens']")" = 1 ]
}
