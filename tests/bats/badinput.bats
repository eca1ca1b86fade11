#!/usr/bin/env bats
# badinput.bats - what is refused, with which errno, and that a refusal
# leaves nothing behind (SPEC §2, §3 step 4).

load helpers

setup() {
	setup_store
	K=$(key_of bad)
	mount_store
	mkdir "$MNT/AAPL"
	make_parquet "$DATA/good.parquet" 2000
}

teardown() {
	teardown_store
}

# write_close PATH SOURCE: create PATH, write SOURCE's bytes, close; print
# OK or the errno of the failing call.
write_close() {
	try_errno "fd = os.open('$1', os.O_WRONLY|os.O_CREAT|os.O_EXCL, 0o644)
os.write(fd, open('$2', 'rb').read())
os.close(fd)"
}

# nothing_left: no row, no object, no tmp file for key $K.
nothing_left() {
	[ "$(manifest_sql "select count(*) from entries")" = 0 ]
	[ -z "$(ls -A "$STORE/tmp")" ]
	[ -z "$(ls -A "$STORE/objects/AAPL" 2>/dev/null)" ]
	[ ! -e "$MNT/AAPL/$K.parquet" ]
}

load_failures() {
	stats_get "['load_failures']['$1']"
}

@test "a text file: close fails with EIO, nothing is published" {
	printf 'symbol,price\nAAPL,1\n' >"$DATA/text.csv"
	[ "$(write_close "$MNT/AAPL/$K.parquet" "$DATA/text.csv")" = EIO ]
	nothing_left
	[ "$(load_failures not_parquet)" = 1 ]
	log_has "discard AAPL/$K.parquet: .*(not_parquet)"
}

@test "fsync of an entry that does not begin as Parquet is EIO, as its close will be" {
	# a database kept at a key name must not take fsync() for "safe"
	[ "$(try_errno "fd = os.open('$MNT/AAPL/$K.parquet', os.O_WRONLY|os.O_CREAT|os.O_EXCL, 0o644)
os.write(fd, b'SQLite format 3' + bytes(4096))
os.fsync(fd)")" = EIO ]
	log_has "fsync AAPL/$K.parquet: it does not begin with PAR1, so it is not Parquet"
	nothing_left
	run duck_sql "ATTACH '$MNT/AAPL/$K.parquet' AS d; CREATE TABLE d.t AS SELECT 42 AS x; CHECKPOINT d"
	[ "$status" -ne 0 ]
	[[ "$output" == *"fsync"* ]]
	nothing_left
	# Parquet under way, in order or not, and scratch files: as anywhere
	local k2 k3
	k2=$(key_of in-order) k3=$(key_of out-of-order)
	[ "$(try_errno "data = open('$DATA/good.parquet', 'rb').read()
fd = os.open('$MNT/AAPL/$k2.parquet', os.O_WRONLY|os.O_CREAT|os.O_EXCL, 0o644)
os.write(fd, data[:4096]); os.fsync(fd); os.write(fd, data[4096:]); os.fsync(fd)
os.close(fd)
fd = os.open('$MNT/AAPL/$k3.parquet', os.O_WRONLY|os.O_CREAT|os.O_EXCL, 0o644)
os.pwrite(fd, data[4096:], 4096); os.fsync(fd); os.pwrite(fd, data[:4096], 0)
os.close(fd)
fd = os.open('$MNT/AAPL/.notes', os.O_WRONLY|os.O_CREAT|os.O_EXCL, 0o644)
os.write(fd, b'any text'); os.fsync(fd)
os.close(fd)")" = OK ]
	cmp "$DATA/good.parquet" "$MNT/AAPL/$k2.parquet"
	cmp "$DATA/good.parquet" "$MNT/AAPL/$k3.parquet"
}

@test "invalid content written by a child after its parent closed: the child's close gets EIO" {
	# the parent's close comes first, with the child still holding the
	# file: 0; the child's close is then the last, and is told
	run python3 - "$MNT/AAPL/$K.parquet" <<'PY'
import os, subprocess, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
child = subprocess.Popen(["python3", "-c", """
import errno, os, sys
sys.stdin.read()
os.write(%d, b"symbol,price\\nAAPL,1\\n" * 10)
try:
    os.close(%d)
    print("child OK")
except OSError as e:
    print("child", errno.errorcode[e.errno])
""" % (fd, fd)], pass_fds=(fd,), stdin=subprocess.PIPE, text=True)
os.close(fd)
print("parent OK", flush=True)
child.stdin.close()
child.wait()
PY
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = "parent OK" ]
	[ "${lines[1]}" = "child EIO" ]
	log_has "close AAPL/$K.parquet: .*no other process writes it (EIO)"
	log_has "discard AAPL/$K.parquet: .*(not_parquet)"
	nothing_left
}

@test "a child and its parent closing an entry at once, either finishing it: published, both closes 0" {
	# a close judges the content written so far, then reads /proc (slow
	# with many descriptors open) while the other process writes the
	# rest and closes: the content must be judged again, or the parent
	# discards what the child's close accepted, or a close fails for an
	# entry that is published whole
	run python3 - "$MNT/AAPL" "$DATA/good.parquet" <<'PY'
import hashlib, os, sys
mnt, data = sys.argv[1], open(sys.argv[2], "rb").read()
keep = [os.open("/dev/null", os.O_RDONLY) for _ in range(1500)]
half, wrong = len(data) // 2, 0
for i in range(60):
    child_finishes = i % 2 == 0
    path = "%s/%s.parquet" % (mnt, hashlib.sha256(b"%d" % i).hexdigest())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    os.write(fd, data[:half])
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(w)
        os.read(r, 1)
        if child_finishes:
            os.pwrite(fd, data[half:], half)
        try:
            os.close(fd)
            os._exit(0)
        except OSError as e:
            os._exit(e.errno)
    os.close(r)
    os.write(w, b"g")
    if not child_finishes:
        os.pwrite(fd, data[half:], half)
    try:
        os.close(fd)
        parent = 0
    except OSError as e:
        parent = e.errno
    os.close(w)
    child = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    try:
        whole = open(path, "rb").read() == data
    except OSError:
        whole = False
    if not whole or parent or child:
        wrong += 1
        print("%s (%s finishes): parent close %d, child close %d, %s"
              % (path, "child" if child_finishes else "parent", parent,
                 child, "published" if whole else "not published"))
print("wrong", wrong)
PY
	[ "$status" -eq 0 ]
	[ "${lines[-1]}" = "wrong 0" ]
}

@test "garbage stored through a map after its descriptor closed: discarded at release, logged" {
	# the close comes before the bytes, so it cannot report them: the
	# discard at the last release is logged and counted instead
	[ "$(try_errno "import mmap
fd = os.open('$MNT/AAPL/$K.parquet', os.O_RDWR|os.O_CREAT|os.O_EXCL, 0o644)
os.ftruncate(fd, 65536)
m = mmap.mmap(fd, 65536)
os.close(fd)
m[:] = b'x' * 65536
m.close()")" = OK ]
	log_has "discard AAPL/$K.parquet: .*(not_parquet)"
	nothing_left
	[ "$(load_failures not_parquet)" = 1 ]
}

@test "a truncated Parquet file: EIO, nothing published" {
	head -c 5000 "$DATA/good.parquet" >"$DATA/cut.parquet"
	[ "$(write_close "$MNT/AAPL/$K.parquet" "$DATA/cut.parquet")" = EIO ]
	nothing_left
	[ "$(load_failures truncated)" = 1 ]
}

@test "PAR1 at both ends around a garbage footer: EIO" {
	python3 -c "
import struct, sys
body = b'PAR1' + b'\x00' * 100
footer = b'\xff\xfe\x13\x37' * 8
sys.stdout.buffer.write(body + footer + struct.pack('<I', len(footer)) + b'PAR1')" >"$DATA/garbage.parquet"
	[ "$(write_close "$MNT/AAPL/$K.parquet" "$DATA/garbage.parquet")" = EIO ]
	nothing_left
	[ "$(load_failures bad_footer)" = 1 ]
}

@test "a footer whose column chunks lie past the data (a file cut, its footer kept): EIO" {
	make_parquet "$DATA/a.parquet" 5000
	python3 - "$DATA/a.parquet" "$DATA/cut.parquet" <<'PY'
import struct, sys
d = open(sys.argv[1], "rb").read()
flen = struct.unpack("<I", d[-8:-4])[0]
open(sys.argv[2], "wb").write(d[:1000] + d[-flen - 8:])
PY
	[ "$(write_close "$MNT/AAPL/$K.parquet" "$DATA/cut.parquet")" = EIO ]
	nothing_left
	[ "$(load_failures bad_footer)" = 1 ]
	log_has "a column chunk of row group 0 lies at bytes"
}

@test "a footer length larger than the file: EIO" {
	python3 -c "
import struct, sys
sys.stdout.buffer.write(b'PAR1' + b'\x00' * 64 + struct.pack('<I', 0x7fffffff) + b'PAR1')" >"$DATA/huge.parquet"
	[ "$(write_close "$MNT/AAPL/$K.parquet" "$DATA/huge.parquet")" = EIO ]
	nothing_left
	log_has "footer length"
}

@test "an empty file: EIO at close, nothing published" {
	: >"$DATA/empty"
	[ "$(write_close "$MNT/AAPL/$K.parquet" "$DATA/empty")" = EIO ]
	nothing_left
	[ "$(load_failures empty)" = 1 ]
	run touch "$MNT/AAPL/$(key_of touched).parquet"
	[ "$status" -ne 0 ]
	[ "$(manifest_sql "select count(*) from entries")" = 0 ]
}

@test "a refused key can be claimed again and published" {
	echo nope >"$DATA/nope"
	[ "$(write_close "$MNT/AAPL/$K.parquet" "$DATA/nope")" = EIO ]
	[ "$(write_close "$MNT/AAPL/$K.parquet" "$DATA/good.parquet")" = OK ]
	wait_published "$MNT/AAPL/$K.parquet"
	cmp "$DATA/good.parquet" "$MNT/AAPL/$K.parquet"
	# at once: the failed close has freed the key (as a worker that
	# retries in the same breath finds it), not the release after it
	python3 - "$MNT/AAPL" "$DATA/good.parquet" <<'PY'
import errno, os, sys
d, good = sys.argv[1], open(sys.argv[2], "rb").read()
for i in range(50):
    p = "%s/retry%04d.parquet" % (d, i)
    fd = os.open(p, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    os.write(fd, b"not parquet")
    try:
        os.close(fd)
        raise SystemExit("close succeeded")
    except OSError as e:
        assert e.errno == errno.EIO, e
    fd = os.open(p, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    os.write(fd, good)
    os.close(fd)
PY
	[ "$(load_failures not_parquet)" = 51 ]
}

@test "bad names get the spec's errno and create nothing" {
	long=$(printf 'a%.0s' $(seq 200))
	[ "$(try_errno "open('$MNT/AAPL/../x', 'w')")" = EPERM ]
	[ "$(try_errno "open('$MNT/AAPL/a/b', 'w')")" = ENOENT ]
	[ "$(try_errno "os.mkdir('$MNT/AAPL/a')")" = EPERM ]
	[ "$(try_errno "open('$MNT/AAPL/x.csv', 'w')")" = EINVAL ]
	[ "$(try_errno "open('$MNT/AAPL/$long.parquet', 'w')")" = ENAMETOOLONG ]
	[ "$(try_errno "open('$MNT/AAPL/key with spaces.parquet', 'w')")" = EINVAL ]
	[ "$(try_errno "open('$MNT/AAPL/short.parquet', 'w')")" = EINVAL ]
	[ "$(try_errno "open('$MNT/AAPL/$K.PARQUET', 'w')")" = EINVAL ]
	[ "$(try_errno "open('$MNT/AAPL/$K.parquet.', 'w')")" = EINVAL ]
	[ "$(try_errno "open('$MNT/AAPL/short.parquet.tmp', 'w')")" = EINVAL ]
	[ "$(try_errno "open('$MNT/top.parquet', 'w')")" = EPERM ]
	[ "$(try_errno "open('$MNT/.featurefs/x', 'w')")" = EACCES ]
	# Unicode look-alike of a key character (a Cyrillic a)
	[ "$(try_errno "open('$MNT/AAPL/' + '\u0430' * 10 + '.parquet', 'w')")" = EINVAL ]
	[ "$(try_errno "os.mkdir('$MNT/AAPL\u2215B')")" = EINVAL ]
	nothing_left
	[ "$(ls "$MNT")" = AAPL ]
	[ "$(ls -A "$MNT/AAPL")" = "" ]
	log_has "create AAPL/x.csv: not <key>.parquet"
}

@test "lookups of malformed names are plain ENOENT" {
	[ "$(try_errno "os.stat('$MNT/AAPL/x.csv')")" = ENOENT ]
	[ "$(try_errno "os.stat('$MNT/not a symbol')")" = ENOENT ]
	[ "$(try_errno "os.stat('$MNT/AAPL/' + 'a' * 200 + '.parquet')")" = ENOENT ]
	[ "$(stats_get "['misses']")" = 0 ]
}

@test "refusals of a published entry leave its content unchanged" {
	cp "$DATA/good.parquet" "$MNT/AAPL/$K.parquet"
	wait_published "$MNT/AAPL/$K.parquet"
	f=$MNT/AAPL/$K.parquet
	run truncate -s 0 "$f"
	[ "$status" -ne 0 ]
	run chmod 600 "$f"
	[ "$status" -ne 0 ]
	run sh -c "echo x >> '$f'"
	[ "$status" -ne 0 ]
	run dd if=/dev/zero of="$f" bs=1 count=1 conv=notrunc
	[ "$status" -ne 0 ]
	cmp "$DATA/good.parquet" "$f"
	cmp "$DATA/good.parquet" "$STORE/objects/AAPL/$K.parquet"
}
