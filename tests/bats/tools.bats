#!/usr/bin/env bats
# tools.bats - everyday tools work on the mount unmodified: coreutils,
# mv, install, tar, rsync (both modes, --delay-updates), aws s3 sync, find, du, stat,
# getfattr, Python's shutil and atomic-write pattern, npm's
# write-file-atomic, every system call a program writes with, and DuckDB
# writing and reading.

load helpers

setup() {
	setup_store
	mount_store
	mkdir "$MNT/AAPL" "$MNT/MSFT"
	mkdir -p "$DATA/src/AAPL" "$DATA/src/MSFT"
	for i in 1 2 3; do
		make_parquet "$DATA/src/AAPL/$(key_of a$i).parquet" $((i * 700)) $i
		make_parquet "$DATA/src/MSFT/$(key_of m$i).parquet" $((i * 300)) $((i + 10))
	done
	chmod 644 "$DATA"/src/*/*.parquet
}

teardown() {
	[ -z "${S3_PID:-}" ] || kill "$S3_PID" 2>/dev/null || true
	teardown_store
}

# same_tree A B: the same files with the same bytes
same_tree() {
	diff <(cd "$1" && find . -type f -name '*.parquet' | sort | xargs sha256sum) \
	     <(cd "$2" && find . -type f -name '*.parquet' | sort | xargs sha256sum)
}

@test "cp, cat and sha256sum" {
	cp "$DATA"/src/AAPL/*.parquet "$MNT/AAPL/"
	for f in "$DATA"/src/AAPL/*.parquet; do
		cmp "$f" "$MNT/AAPL/$(basename "$f")"
		cat "$MNT/AAPL/$(basename "$f")" | cmp - "$f"
	done
	(cd "$DATA/src/AAPL" && sha256sum *.parquet) >"$TEST_DIR/sums"
	(cd "$MNT/AAPL" && sha256sum -c "$TEST_DIR/sums")
}

@test "cp, rsync -S and zstd -d skip zeros as they write: published; a part skipped, refused" {
	# uncompressed, with a run of zeros in a page, stored sparse (as a
	# filesystem that keeps zero blocks as holes stores it)
	duck_sql "COPY (SELECT i AS id, CASE WHEN i < 400000 THEN 0 ELSE i END AS z FROM range(500000) t(i)) TO '$DATA/z.parquet' (FORMAT parquet, COMPRESSION 'uncompressed')"
	cp --sparse=never "$DATA/z.parquet" "$DATA/sparse.parquet"
	fallocate --dig-holes "$DATA/sparse.parquet"
	[ "$(stat -c %b "$DATA/sparse.parquet")" -lt "$(stat -c %b "$DATA/z.parquet")" ]
	cp "$DATA/sparse.parquet" "$MNT/AAPL/$(key_of sparse1).parquet"
	cmp "$DATA/z.parquet" "$MNT/AAPL/$(key_of sparse1).parquet"
	rsync -S "$DATA/sparse.parquet" "$MNT/AAPL/$(key_of sparse2).parquet"
	cmp "$DATA/z.parquet" "$MNT/AAPL/$(key_of sparse2).parquet"
	# rsync -S skips the zero bytes at both ends of each 32 KiB it
	# writes, in page headers and compressed pages too; zstd -d skips
	# zero words and the high zero bytes of the footer's length
	make_parquet "$DATA/big.parquet" 200000 2
	rsync -S "$DATA/big.parquet" "$MNT/AAPL/$(key_of sparse3).parquet"
	cmp "$DATA/big.parquet" "$MNT/AAPL/$(key_of sparse3).parquet"
	make_parquet "$DATA/small.parquet" 1234 1
	[ "$(($(stat -c %s "$DATA/small.parquet") % 8))" -ge 5 ]
	zstd -q "$DATA/small.parquet" -o "$DATA/small.zst"
	zstd -q -d "$DATA/small.zst" -o "$MNT/AAPL/$(key_of sparse4).parquet"
	cmp "$DATA/small.parquet" "$MNT/AAPL/$(key_of sparse4).parquet"
	refute log_has "never written"
	# a part no write reached, inside a page, of a file written out of
	# order (a download in parts) is a hole: refused
	zeros=$(python3 -c 'import sys; print(open(sys.argv[1], "rb").read().index(bytes(65536)))' "$DATA/z.parquet")
	PARTS="$((zeros + 32768)): :$zeros" run write_entry "$MNT/AAPL/$(key_of parts).parquet" "$DATA/z.parquet"
	[ "$output" = "close EIO" ]
	# a page header no write reached is a hole still: refused
	PARTS=":4 4096:" run write_entry "$MNT/AAPL/$(key_of header).parquet" "$DATA/z.parquet"
	[ "$output" = "close EIO" ]
	log_has "bytes 4 to 4095 were never written (a hole)"
	# a compressor makes no run of 64 zeros: a part skipped inside a
	# compressed page, though in order, is bytes the writer missed
	duck_sql "COPY (SELECT i AS id, hash(i) AS h FROM range(200000) t(i)) TO '$DATA/c.parquet' (FORMAT parquet, COMPRESSION 'snappy')"
	mid=$(($(stat -c %s "$DATA/c.parquet") / 2 / 4096 * 4096))
	PARTS=":$mid $((mid + 4096)):" run write_entry "$MNT/AAPL/$(key_of skipped).parquet" "$DATA/c.parquet"
	[ "$output" = "close EIO" ]
	log_has "bytes $mid to $((mid + 4095)) were never written (a hole)"
}

@test "cp -p keeps mode and times, cp -r copies a tree of symbols" {
	f=$(ls "$DATA"/src/AAPL/*.parquet | head -1)
	chmod 640 "$f"
	touch -d '2021-03-04 05:06:07' "$f"
	cp -p "$f" "$MNT/AAPL/"
	g=$MNT/AAPL/$(basename "$f")
	wait_published "$g"
	[ "$(stat -c %a "$g")" = 640 ]
	[ "$(stat -c %Y "$g")" = "$(stat -c %Y "$f")" ]
	cmp "$f" "$g"
	mkdir "$DATA/tree" && cp -r "$DATA/src/MSFT" "$DATA/tree/NVDA"
	cp -r "$DATA/tree/NVDA" "$MNT/"
	same_tree "$DATA/tree/NVDA" "$MNT/NVDA"
}

@test "cp -a and rsync -a of a umask-002 tree: 0775 directories, 0664 entries" {
	mkdir "$DATA/tree" && cp -r "$DATA/src/MSFT" "$DATA/tree/NVDA"
	cp -r "$DATA/src/MSFT" "$DATA/tree/AMZN"
	chmod 775 "$DATA/tree/NVDA" "$DATA/tree/AMZN"
	chmod 664 "$DATA"/tree/*/*.parquet
	cp -a "$DATA/tree/NVDA" "$MNT/"
	same_tree "$DATA/tree/NVDA" "$MNT/NVDA"
	rsync -a "$DATA/tree/AMZN" "$MNT/"
	rsync -a "$DATA/tree/AMZN" "$MNT/" # a second run sets the mode again
	same_tree "$DATA/tree/AMZN" "$MNT/AMZN"
	g=$MNT/AMZN/$(key_of m1).parquet
	wait_published "$g"
	[ "$(stat -c %a "$g")" = 664 ]
	# directories stay 0755: a mode that adds to it changes nothing, one
	# that takes a bit away is refused rather than ignored
	[ "$(stat -c %a "$MNT/NVDA")" = 755 ]
	chmod 2775 "$MNT/NVDA"
	[ "$(stat -c %a "$MNT/NVDA")" = 755 ]
	[ "$(try_errno "os.chmod('$MNT/NVDA', 0o700)")" = EPERM ]
	log_has "chmod NVDA: directories are managed by featurefs"
}

@test "mv moves entries between symbols and renames symbols, by copying" {
	cp -p "$DATA"/src/AAPL/*.parquet "$MNT/AAPL/"
	a1=$(key_of a1).parquet a2=$(key_of a2).parquet a3=$(key_of a3).parquet
	# rename(2) of an entry is EXDEV, as across filesystems: mv copies it
	# (a create that publishes, times kept) and unlinks the original
	mv "$MNT/AAPL/$a1" "$MNT/MSFT/"
	cmp "$DATA/src/AAPL/$a1" "$MNT/MSFT/$a1"
	[ "$(stat -c %Y "$MNT/MSFT/$a1")" = "$(stat -c %Y "$DATA/src/AAPL/$a1")" ]
	[ ! -e "$MNT/AAPL/$a1" ]
	mv "$MNT/AAPL/$a2" "$MNT/AAPL/$(key_of renamed).parquet"
	cmp "$DATA/src/AAPL/$a2" "$MNT/AAPL/$(key_of renamed).parquet"
	# a symbol directory moves the same way, entry by entry
	mv "$MNT/AAPL" "$MNT/NVDA"
	[ ! -e "$MNT/AAPL" ]
	cmp "$DATA/src/AAPL/$a3" "$MNT/NVDA/$a3"
	[ "$(manifest_sql "select symbol || ' ' || count(*) from entries group by symbol order by symbol" | tr '\n' ,)" = "MSFT 1,NVDA 2," ]
	[ "$(manifest_sql "select count(*) from symbols where symbol = 'AAPL'")" = 0 ]
	# a move to a name that cannot be an entry fails at the copy's create
	run mv "$MNT/NVDA/$a3" "$MNT/NVDA/x.csv"
	[ "$status" -ne 0 ]
	[[ "$output" == *"Invalid argument"* ]]
	cmp "$DATA/src/AAPL/$a3" "$MNT/NVDA/$a3"
	# nor to a scratch name: mv would copy into a file unmount discards,
	# then unlink the entry
	for to in "$a3.bak" ".$a3" ; do
		run mv "$MNT/NVDA/$a3" "$MNT/NVDA/$to"
		[ "$status" -ne 0 ]
		[[ "$output" == *"Operation not permitted"* ]]
	done
	mkdir "$MNT/NVDA/.old"
	run mv "$MNT/NVDA/$a3" "$MNT/NVDA/.old/"
	[[ "$output" == *"Operation not permitted"* ]]
	cmp "$DATA/src/AAPL/$a3" "$MNT/NVDA/$a3"
	log_has "rename NVDA/$a3 to NVDA/$a3.bak: an entry moves only to another <key>.parquet"
}

@test "install -m, tar -p and Python's shutil.copy2 set modes, whenever their chmod lands" {
	f=$(ls "$DATA"/src/AAPL/*.parquet | head -1)
	chmod 664 "$f"
	touch -d '2021-03-04 05:06:07' "$f"
	# install and shutil chmod after close(), which returns before the
	# publish: their chmod may meet the published entry
	for i in 1 2 3; do
		install -m 0640 "$f" "$MNT/AAPL/$(key_of inst$i).parquet"
		[ "$(stat -c %a "$MNT/AAPL/$(key_of inst$i).parquet")" = 640 ]
	done
	python3 - "$f" "$MNT/AAPL/$(key_of copy2).parquet" <<'PY'
import shutil, sys
shutil.copy2(sys.argv[1], sys.argv[2])
PY
	g=$MNT/AAPL/$(key_of copy2).parquet
	[ "$(stat -c %a "$g")" = 664 ]
	[ "$(stat -c %Y "$g")" = "$(stat -c %Y "$f")" ]
	mkdir -p "$DATA/tar/MSFT"
	cp -p "$f" "$DATA/tar/MSFT/$(key_of tar).parquet"
	tar -C "$DATA/tar" -cf "$TEST_DIR/t.tar" MSFT
	tar -C "$MNT" -xpf "$TEST_DIR/t.tar"
	[ "$(stat -c %a "$MNT/MSFT/$(key_of tar).parquet")" = 664 ]
	# the mode is kept in the manifest: a remount shows it
	unmount_store
	mount_store
	[ "$(stat -c %a "$g")" = 664 ]
	[ "$(stat -c %a "$MNT/AAPL/$(key_of inst1).parquet")" = 640 ]
	# any other process still meets an immutable entry
	run chmod 600 "$g"
	[ "$status" -ne 0 ]
	[[ "$output" == *"Operation not permitted"* ]]
	log_has "chmod AAPL/$(key_of copy2).parquet: published entries are immutable"
	cmp "$f" "$g"
}

@test "every way a program writes an entry publishes its exact bytes and digest" {
	f=$(ls "$DATA"/src/AAPL/*.parquet | tail -1)
	python3 - "$f" "$MNT/MSFT" <<'PY'
import mmap, os, subprocess, sys
src, d = sys.argv[1:]
data = open(src, "rb").read()
n = len(data)
half = n // 2

def entry(name, flags=os.O_WRONLY):
    return os.open(os.path.join(d, "%s-writes.parquet" % name),
                   os.O_CREAT | os.O_EXCL | flags, 0o644)

def aligned(size):
    buf = mmap.mmap(-1, (size + 4095) // 4096 * 4096)
    buf[:size] = data[:size]
    return buf

# back to front: every write lands before the previous one
fd = entry("backwards")
for off in reversed(range(0, n, 4096)):
    os.pwrite(fd, data[off:off + 4096], off)
os.close(fd)
# the second half first, then the first: one hole filled late
fd = entry("holefirst")
os.pwrite(fd, data[half:], half)
os.pwrite(fd, data[:half], 0)
os.close(fd)
fd = entry("writev")
os.writev(fd, [data[:100], data[100:half], data[half:]])
os.close(fd)
fd = entry("append", os.O_WRONLY | os.O_APPEND)
for off in range(0, n, 1000):
    os.write(fd, data[off:off + 1000])
os.close(fd)
# sized first, as some writers do, then filled
fd = entry("truncfirst")
os.ftruncate(fd, n)
os.pwrite(fd, data, 0)
os.close(fd)
fd = entry("fallocate")
os.posix_fallocate(fd, 0, n)
os.write(fd, data)
os.close(fd)
# bytes written, then zeroed and written again (a hole punched, a
# range zeroed): what was hashed on the way changed under it
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_long,
                           ctypes.c_long]
PUNCH_HOLE, ZERO_RANGE, KEEP_SIZE = 0x02, 0x10, 0x01
at, size = n // 4, n // 4
for name, mode in (("punch", PUNCH_HOLE | KEEP_SIZE), ("zero", ZERO_RANGE)):
    fd = entry(name, os.O_RDWR)
    os.write(fd, data)
    assert libc.fallocate(fd, mode, at, size) == 0, os.strerror(ctypes.get_errno())
    assert os.pread(fd, size, at) == b"\0" * size
    os.pwrite(fd, data[at:at + size], at)
    os.close(fd)
# too much written, then cut back
fd = entry("overshoot")
os.write(fd, data + b"\0" * 70000)
os.ftruncate(fd, n)
os.close(fd)
fd = entry("rdwr", os.O_RDWR)
os.write(fd, data)
assert os.pread(fd, 4, 0) == b"PAR1"
os.close(fd)
fd = entry("mmap", os.O_RDWR)
os.ftruncate(fd, n)
m = mmap.mmap(fd, n)
m[:] = data
m.flush()
m.close()
os.close(fd)
# the descriptor closed first, the bytes stored through the map after it
# (numpy.memmap's order): that close is not the end of the writing
fd = entry("mapfirst", os.O_RDWR)
os.ftruncate(fd, n)
m = mmap.mmap(fd, n)
os.close(fd)
m[:] = data
m.close()
# a child started to write into it, the parent's copy closed first
# (subprocess.Popen(stdout=f), then f.close()); the child waits for it
fd = entry("child")
child = subprocess.Popen(["sh", "-c", 'read go; exec cat "$0"', src],
                         stdin=subprocess.PIPE, stdout=fd)
os.close(fd)
child.communicate(b"go\n")
assert child.returncode == 0
# a dup writes on after the first descriptor is closed
fd = entry("dup")
fd2 = os.dup(fd)
os.close(fd)
os.write(fd2, data)
os.close(fd2)
fd = entry("direct", os.O_WRONLY | os.O_DIRECT)
os.write(fd, aligned(n))
os.ftruncate(fd, n)
os.close(fd)
# from a published entry: copy_file_range stays within the mount
p = os.open(os.path.join(d, "backwards-writes.parquet"), os.O_RDONLY)
fd = entry("copyrange")
assert os.copy_file_range(p, fd, n, 0) == n
os.close(fd)
s = os.open(src, os.O_RDONLY)
fd = entry("sendfile")
assert os.sendfile(fd, s, 0, n) == n
os.close(fd)
r, w = os.pipe()
fd = entry("splice")
done = 0
while done < n:
    k = os.splice(s, w, min(65536, n - done), offset_src=done)
    assert os.splice(r, fd, k) == k
    done += k
os.close(fd)
# a child writes the second half through the inherited descriptor
fd = entry("forked")
os.write(fd, data[:half])
pid = os.fork()
if pid == 0:
    os.write(fd, data[half:])
    os._exit(0)
os.waitpid(pid, 0)
os.close(fd)
PY
	sum=$(sha256sum <"$f" | cut -d' ' -f1)
	for w in backwards holefirst writev append truncfirst fallocate \
		 punch zero overshoot rdwr mmap mapfirst child dup direct \
		 copyrange sendfile splice forked; do
		g=$MNT/MSFT/$w-writes.parquet
		cmp "$f" "$g" || { echo "$w: content differs"; false; }
		[ "$(manifest_sql "select state || ' ' || sha256 from entries where key = '$w-writes'")" = "published $sum" ] ||
			{ echo "$w: $(manifest_sql "select state, sha256 from entries where key = '$w-writes'")"; false; }
	done
	[ -z "$(ls -A "$STORE/tmp")" ]
}

@test "rsync -aX with its temp-file-and-rename, twice" {
	run rsync -aX "$DATA/src/" "$MNT/"
	[ "$status" -eq 0 ]
	same_tree "$DATA/src" "$MNT"
	[ -z "$(ls -A "$STORE/tmp")" ]
	# the second run finds everything up to date and changes nothing;
	# -X finds no attributes to remove, as none are listed
	run rsync -aiX "$DATA/src/" "$MNT/"
	[ "$status" -eq 0 ]
	refute grep -q '^>f' <<<"$output"
	[ "$(manifest_sql "select count(*) from entries where state='published'")" = 6 ]
	# sources touched: rsync sends them again and renames each onto
	# its entry, which holds those bytes: the entry stays and takes the
	# time, so the run after finds everything up to date
	touch -d '2021-05-06 07:08:09' "$DATA"/src/AAPL/*.parquet
	run rsync -aX "$DATA/src/" "$MNT/"
	[ "$status" -eq 0 ]
	same_tree "$DATA/src" "$MNT"
	[ -z "$(ls -A "$STORE/tmp")" ]
	f=$DATA/src/AAPL/$(key_of a1).parquet
	[ "$(stat -c %Y "$MNT/AAPL/$(basename "$f")")" = "$(stat -c %Y "$f")" ]
	run rsync -aiX "$DATA/src/" "$MNT/"
	[ "$status" -eq 0 ]
	refute grep -q '^>f' <<<"$output"
	# other bytes under a published key: refused, the entry stays
	cp "$DATA/src/MSFT/$(key_of m1).parquet" "$f"
	run rsync -aX "$DATA/src/" "$MNT/"
	[ "$status" -eq 23 ]
	[[ "$output" == *"File exists"* ]]
	cmp "$DATA/src/AAPL/$(key_of a2).parquet" "$MNT/AAPL/$(key_of a2).parquet"
	refute cmp -s "$f" "$MNT/AAPL/$(basename "$f")"
	[ -z "$(ls -A "$STORE/tmp")" ]
}

# The real aws client against a local read-only S3 endpoint: it downloads
# each object to "<name>.<8 random characters>" and renames it.
aws_s3() {
	AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null \
	AWS_DEFAULT_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true \
		/usr/bin/aws --endpoint-url "http://127.0.0.1:$(cat "$DATA/s3.port")" \
		--no-sign-request s3 "$@"
}

@test "rsync --delay-updates and --partial-dir write through a scratch directory" {
	# both put each file in a dot-named directory beside it, then rename
	rsync -a --delay-updates "$DATA/src/" "$MNT/"
	same_tree "$DATA/src" "$MNT"
	[ -z "$(ls -A "$MNT/AAPL" | grep '^\.')" ]
	[ "$(manifest_sql "select count(*) from entries where state = 'published'")" = 6 ]
	run rsync -ai --delay-updates "$DATA/src/" "$MNT/"
	[ "$status" -eq 0 ]
	[ -z "$(echo "$output" | grep '^>f')" ]
	mkdir -p "$DATA/more/NVDA"
	cp "$DATA"/src/AAPL/*.parquet "$DATA/more/NVDA/"
	rsync -a --partial-dir=.rsync-partial "$DATA/more/" "$MNT/"
	same_tree "$DATA/more/NVDA" "$MNT/NVDA"
}

@test "aws s3 sync and write-file-atomic publish through <key>.parquet.<suffix> and a rename" {
	mkdir -p "$DATA/s3/bucket"
	cp -r "$DATA/src/AAPL" "$DATA/src/MSFT" "$DATA/s3/bucket/"
	python3 "$FEATUREFS_TOOLS/s3_serve.py" "$DATA/s3" "$DATA/s3.port" 3>&- &
	S3_PID=$!
	for ((i = 0; i < READY_TIMEOUT * 10; i++)); do
		[ -s "$DATA/s3.port" ] && break
		sleep 0.1
	done
	run aws_s3 sync s3://bucket/ "$MNT/"
	[ "$status" -eq 0 ]
	same_tree "$DATA/src" "$MNT"
	[ -z "$(ls -A "$STORE/tmp")" ]
	[ "$(manifest_sql "select count(*) from entries where state='published'")" = 6 ]
	# the times it sets after the rename let a second sync find nothing new
	run aws_s3 sync s3://bucket/ "$MNT/"
	[ "$status" -eq 0 ]
	[ -z "$output" ]
	# npm's own atomic writer names its file "<name>.<hash>"
	f=$(ls "$DATA"/src/AAPL/*.parquet | head -1)
	g=$MNT/AAPL/$(key_of wfa).parquet
	(cd "$FEATUREFS_TOOLS" && node -e '
		const fs = require("fs");
		require("write-file-atomic").sync(process.argv[2],
			fs.readFileSync(process.argv[1]));' "$f" "$g")
	cmp "$f" "$g"
	[ -z "$(ls -A "$STORE/tmp")" ]
	# an invalid file under such a name stays a scratch file: the
	# rename is refused, nothing is published
	printf 'not parquet' >"$MNT/AAPL/$(key_of bad).parquet.1a2B3c4D"
	run mv "$MNT/AAPL/$(key_of bad).parquet.1a2B3c4D" "$MNT/AAPL/$(key_of bad).parquet"
	[ "$status" -ne 0 ]
	[[ "$output" == *"Input/output error"* ]]
	[ -f "$MNT/AAPL/$(key_of bad).parquet.1a2B3c4D" ]
	[ "$(manifest_sql "select count(*) from entries")" = 7 ]
}

@test "rsync --inplace writes entries directly" {
	run rsync -r --inplace "$DATA/src/AAPL/" "$MNT/AAPL/"
	[ "$status" -eq 0 ]
	same_tree "$DATA/src/AAPL" "$MNT/AAPL"
	# with times kept, a second run finds nothing to do
	run rsync -a --inplace "$DATA/src/MSFT/" "$MNT/MSFT/"
	[ "$status" -eq 0 ]
	run rsync -ai --inplace "$DATA/src/MSFT/" "$MNT/MSFT/"
	[ "$status" -eq 0 ]
	refute grep -q '^>f' <<<"$output"
	same_tree "$DATA/src/MSFT" "$MNT/MSFT"
	[ -z "$(ls -A "$STORE/tmp")" ]
}

@test "ls -l, find, du, stat and test -x" {
	cp "$DATA"/src/AAPL/*.parquet "$MNT/AAPL/"
	f=$(ls "$DATA"/src/AAPL/*.parquet | head -1)
	g=$MNT/AAPL/$(basename "$f")
	wait_published "$g"
	run ls -l "$MNT/AAPL"
	[ "${lines[0]}" = "total $(( $(du -sk "$MNT/AAPL" | cut -f1) ))" ] || true
	[[ "${lines[1]}" == -rw-r--r--* ]]
	[ "$(find "$MNT" -name '*.parquet' | wc -l)" = 3 ]
	[ "$(find "$MNT" -type d | sort | tr '\n' ' ')" = "$MNT $MNT/AAPL $MNT/MSFT " ]
	want=$(cat "$DATA"/src/AAPL/*.parquet | wc -c)
	[ "$(du -sb "$MNT/AAPL" | cut -f1)" -ge "$want" ]
	[ "$(stat -c '%s %F' "$g")" = "$(stat -c %s "$f") regular file" ]
	[ "$(stat -c %h "$g")" = 1 ]
	# st_ino is stable and matches what readdir reports
	[ "$(stat -c %i "$g")" = "$(ls -i "$MNT/AAPL" | awk -v n="$(basename "$f")" '$2 == n {print $1}')" ]
	# access(2) agrees with the mode bits on X_OK, as execve(2) does
	[ ! -x "$g" ] && [ -r "$g" ] && [ -x "$MNT/AAPL" ] && [ ! -x "$MNT/.featurefs/stats" ]
	[ -z "$(find "$MNT" -type f -executable)" ]
	cp "$f" "$DATA/run.parquet" && chmod 755 "$DATA/run.parquet"
	cp -p "$DATA/run.parquet" "$MNT/MSFT/$(key_of run).parquet"
	[ -x "$MNT/MSFT/$(key_of run).parquet" ]
	(cd "$MNT/AAPL" && [ "$(pwd)" = "$MNT/AAPL" ])
}

@test "a sparse scratch file: du counts its data, SEEK_HOLE finds its holes, cp and tar copy it sparse" {
	truncate -s 100M "$MNT/AAPL/.sparse"
	printf x | dd of="$MNT/AAPL/.sparse" bs=1 seek=50M conv=notrunc status=none
	[ "$(stat -c %b "$MNT/AAPL/.sparse")" -lt 1000 ]
	[ "$(du -k "$MNT/AAPL/.sparse" | cut -f1)" -lt 500 ]
	run python3 - "$MNT/AAPL/.sparse" <<'PY'
import errno, os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
print(os.lseek(fd, 0, os.SEEK_HOLE), os.lseek(fd, 0, os.SEEK_DATA),
      os.lseek(fd, 50 << 20, os.SEEK_HOLE) > 50 << 20)
try:
    os.lseek(fd, 100 << 20, os.SEEK_DATA)
except OSError as e:
    print(errno.errorcode[e.errno])
PY
	[ "$output" = "$(printf '0 52428800 True\nENXIO')" ]
	cp "$MNT/AAPL/.sparse" "$DATA/copy"
	cmp "$MNT/AAPL/.sparse" "$DATA/copy"
	[ "$(du -k "$DATA/copy" | cut -f1)" -lt 500 ]
	(cd "$MNT/AAPL" && tar -S -cf "$DATA/s.tar" .sparse)
	[ "$(stat -c %s "$DATA/s.tar")" -lt 100000 ]
	# a published entry is data from 0 to its size, removed while open too
	f=$(ls "$DATA"/src/AAPL/*.parquet | head -1)
	cp "$f" "$MNT/AAPL/" && wait_published "$MNT/AAPL/$(basename "$f")"
	[ "$(py "import os; p = '$MNT/AAPL/$(basename "$f")'; fd = os.open(p, os.O_RDONLY); os.unlink(p); print(os.lseek(fd, 0, os.SEEK_DATA), os.lseek(fd, 0, os.SEEK_HOLE))")" = "0 $(stat -c %s "$f")" ]
}

@test "a scratch file keeps its access time; a symbol directory counts its scratch directories" {
	echo hi >"$MNT/AAPL/.s"
	touch -m -d '2002-02-02 UTC' "$MNT/AAPL/.s"
	touch -a -d '2001-01-01 UTC' "$MNT/AAPL/.s"
	[ "$(stat -c '%X %Y' "$MNT/AAPL/.s")" = "978307200 1012608000" ]
	cat "$MNT/AAPL/.s" >/dev/null
	touch -m -d '2003-03-03 UTC' "$MNT/AAPL/.s"
	[ "$(stat -c %X "$MNT/AAPL/.s")" = 978307200 ]
	[ "$(stat -c %h "$MNT/AAPL")" = 2 ]
	mkdir "$MNT/AAPL/.a" "$MNT/AAPL/.b"
	[ "$(stat -c %h "$MNT/AAPL")" = 4 ]
	[ "$(find "$MNT" -type d -links 2 | sort | tr '\n' ' ')" = "$MNT/AAPL/.a $MNT/AAPL/.b $MNT/MSFT " ]
	rmdir "$MNT/AAPL/.a"
	[ "$(stat -c %h "$MNT/AAPL")" = 3 ]
}

# close() returns before the kernel sends RELEASE, where the publish runs:
# a checksum read right after cp found the entry still writing, in a few
# of every hundred tries.  An attribute read after the writer's close now
# waits for the outcome.
@test "getfattr right after cp sees the published entry, every time" {
	f=$(ls "$DATA"/src/AAPL/*.parquet | head -1)
	sha=$(sha256sum <"$f" | cut -c1-64)
	for i in $(seq 20); do
		g=$MNT/AAPL/$(key_of "right-after-$i").parquet
		cp "$f" "$g"
		[ "$(getfattr --only-values -n user.featurefs.sha256 "$g")" = "$sha" ]
	done
	# and with no process started in between
	python3 - "$f" "$MNT/AAPL" "$sha" <<'PY'
import hashlib, os, sys
src, d, sha = sys.argv[1], sys.argv[2], sys.argv[3].encode()
data = open(src, "rb").read()
for i in range(200):
    p = os.path.join(d, hashlib.sha256(b"py-%d" % i).hexdigest() + ".parquet")
    with open(p, "wb") as f:
        f.write(data)
    got = os.getxattr(p, "user.featurefs.sha256")
    assert got == sha, (i, got, os.getxattr(p, "user.featurefs.state"))
PY
}

@test "getfattr reads the manifest attributes by name; copies leave them behind" {
	f=$(ls "$DATA"/src/AAPL/*.parquet | head -1)
	cp "$f" "$MNT/AAPL/"
	g=$MNT/AAPL/$(basename "$f")
	wait_published "$g"
	[ "$(getfattr --only-values -n user.featurefs.sha256 "$g")" = "$(sha256sum <"$f" | cut -c1-64)" ]
	for a in rows created access_count compression stored_size state; do
		getfattr --only-values -n "user.featurefs.$a" "$g" >/dev/null
	done
	# virtual, so not listed: copy tools would carry them off
	[ -z "$(getfattr --absolute-names -d -m - "$g")" ]
	mkdir "$DATA/out"
	cp -a "$g" "$DATA/out/cp.parquet"
	rsync -aX "$MNT/AAPL/" "$DATA/out/AAPL/"
	[ -z "$(getfattr -R -d -m - "$DATA/out")" ]
	cmp "$f" "$DATA/out/cp.parquet"
}

@test "Python's write-to-temp-then-replace publishes atomically" {
	f=$(ls "$DATA"/src/AAPL/*.parquet | head -1)
	k=$(key_of atomic)
	python3 - "$f" "$MNT/AAPL" "$k" <<'PY'
import os, sys, tempfile
src, d, key = sys.argv[1:]
fd, tmp = tempfile.mkstemp(dir=d, prefix=".", suffix=".tmp")
with os.fdopen(fd, "wb") as out:
    out.write(open(src, "rb").read())
    out.flush()
    os.fsync(out.fileno())
os.replace(tmp, os.path.join(d, key + ".parquet"))
PY
	cmp "$f" "$MNT/AAPL/$k.parquet"
	[ "$(ls -A "$MNT/AAPL")" = "$k.parquet" ]
	# a second job that computed the same key: the same bytes replace
	# the entry with itself; other bytes, or RENAME_NOREPLACE, EEXIST
	g=$(ls "$DATA"/src/MSFT/*.parquet | head -1)
	run python3 - "$MNT/AAPL" "$k" "$f" "$g" <<'PY'
import ctypes, errno, os, sys
d, key, same, other = sys.argv[1:]
libc = ctypes.CDLL(None, use_errno=True)
dst = os.path.join(d, key + ".parquet")
for src, how in ((same, "replace"), (other, "replace"), (same, "noreplace")):
    tmp = os.path.join(d, ".job.tmp")
    with open(tmp, "wb") as out:
        out.write(open(src, "rb").read())
    try:
        if how == "replace":
            os.replace(tmp, dst)
        elif libc.renameat2(-100, tmp.encode(), -100, dst.encode(), 1) < 0:
            raise OSError(ctypes.get_errno(), "renameat2")
        print("0")
    except OSError as e:
        print(errno.errorcode[e.errno])
        os.unlink(tmp)
PY
	[ "$output" = "$(printf '0\nEEXIST\nEEXIST')" ]
	cmp "$f" "$MNT/AAPL/$k.parquet"
	[ "$(ls -A "$MNT/AAPL")" = "$k.parquet" ]
	[ -z "$(ls -A "$STORE/tmp")" ]
	[ "$(manifest_sql "select count(*) from entries where key='$k'")" = 1 ]
	# the object's own bytes are compared, not the row's checksum: a
	# damaged object is other bytes, and the good copy renamed stays
	python3 -c "import sys; f = open(sys.argv[1], 'r+b'); f.seek(100); b = f.read(1); f.seek(100); f.write(bytes([b[0] ^ 1]))" "$STORE/objects/AAPL/$k.parquet"
	cp "$f" "$MNT/AAPL/.good"
	[ "$(try_errno "os.replace('$MNT/AAPL/.good', '$MNT/AAPL/$k.parquet')")" = EEXIST ]
	cmp "$f" "$MNT/AAPL/.good"
}

@test "a rename of the same bytes right after the key's writer closed it succeeds" {
	# close() returns before the release that publishes: the rename
	# waits for that outcome, not EEXIST for a write that is over
	make_parquet "$DATA/big.parquet" 150000 3
	run python3 - "$DATA/big.parquet" "$MNT/AAPL" <<'PY'
import errno, hashlib, os, sys
src, d = sys.argv[1:]
data = open(src, "rb").read()
refused = 0
for i in range(40):
    key = hashlib.sha256(b"after-close %d" % i).hexdigest()
    tmp = os.path.join(d, ".job.tmp")
    with open(tmp, "wb") as out:
        out.write(data)
    with open(os.path.join(d, key + ".parquet"), "wb") as out:
        out.write(data)
    try:
        os.rename(tmp, os.path.join(d, key + ".parquet"))
    except OSError as e:
        print(i, errno.errorcode[e.errno])
        refused += 1
        os.unlink(tmp)
print(refused)
PY
	[ "$status" -eq 0 ]
	[ "$output" = 0 ]
	[ "$(ls -A "$MNT/AAPL" | wc -l)" -eq 40 ]
	[ -z "$(ls -A "$STORE/tmp")" ]
}

@test "a scratch file mapped shared is renamed into place once unmapped, never while mapped" {
	f=$(ls "$DATA"/src/AAPL/*.parquet | head -1)
	k=$(key_of mapped)
	# numpy.memmap's way: size the file, store through a shared map
	run python3 - "$f" "$MNT/AAPL" "$k" <<'PY'
import mmap, os, sys
src, d, key = sys.argv[1:]
data = open(src, "rb").read()
tmp, dst = os.path.join(d, ".mapped.tmp"), os.path.join(d, key + ".parquet")
with open(tmp, "w+b") as f:
    f.truncate(len(data))
    mm = mmap.mmap(f.fileno(), len(data))
mm[:] = data
try:
    os.rename(tmp, dst)
    print("renamed while mapped")
except OSError as e:
    print(os.strerror(e.errno))
print(os.path.exists(dst))
mm.flush()
mm.close()
os.rename(tmp, dst)
PY
	[ "$status" -eq 0 ]
	[ "$output" = "$(printf '%s\n' 'Device or resource busy' False)" ]
	cmp "$f" "$MNT/AAPL/$k.parquet"
	log_has "rename AAPL/.mapped.tmp to AAPL/$k.parquet: process [0-9]* still maps it shared and writable"
	# the same when the file is another process's: cp made it and is gone
	k2=$(key_of mapped-by-another)
	cp "$f" "$MNT/AAPL/.theirs.tmp"
	run python3 - "$MNT/AAPL" "$k2" <<'PY'
import mmap, os, sys
d, key = sys.argv[1:]
tmp, dst = os.path.join(d, ".theirs.tmp"), os.path.join(d, key + ".parquet")
with open(tmp, "r+b") as f:
    mm = mmap.mmap(f.fileno(), 0)
mm[0:0] = b""
try:
    os.rename(tmp, dst)
    print("renamed while mapped")
except OSError as e:
    print(os.strerror(e.errno))
mm.close()
os.rename(tmp, dst)
PY
	[ "$status" -eq 0 ]
	[ "$output" = "Device or resource busy" ]
	cmp "$f" "$MNT/AAPL/$k2.parquet"
}

@test "DuckDB writes an entry with COPY TO and reads the mount with a glob" {
	k=$(key_of duck)
	run duck_sql "COPY (SELECT TIMESTAMP '2024-03-01 00:00:00' + INTERVAL (i) SECOND AS ts, i * 1.5 AS price FROM range(5000) t(i)) TO '$MNT/AAPL/$k.parquet' (FORMAT parquet)"
	[ "$status" -eq 0 ]
	wait_published "$MNT/AAPL/$k.parquet"
	[ "$(manifest_sql "select rows from entries where key='$k'")" = 5000 ]
	cp "$DATA"/src/MSFT/*.parquet "$MNT/MSFT/"
	run duck_sql "SELECT count(*) AS n FROM read_parquet('$MNT/*/*.parquet', union_by_name = true)"
	[ "$status" -eq 0 ]
	[ "$output" = '{"n":"6800"}' ]
	run duck_sql "SELECT max(price) AS m FROM read_parquet('$MNT/AAPL/$k.parquet')"
	[ "$output" = '{"m":"7498.5"}' ]
	# an entry is written once: DuckDB cannot overwrite it, and says
	# why (it renames tmp_<key>.parquet over it: EEXIST, not EXDEV)
	run duck_sql "COPY (SELECT 1 AS x) TO '$MNT/AAPL/$k.parquet' (FORMAT parquet)"
	[ "$status" -ne 0 ]
	[[ "$output" == *"File exists"* ]]
	[ "$(manifest_sql "select rows from entries where key='$k'")" = 5000 ]
	[ ! -e "$MNT/AAPL/tmp_$k.parquet" ]
}
