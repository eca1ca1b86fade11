#!/usr/bin/env bats
# compress.bats - compressed objects (SPEC §6, docs/design.md): the zstd
# seekable format through a real mount: exact bytes at any offset, plain
# `zstd -d` of the stored object, frames cut at the column chunks a
# DuckDB-written file's footer gives, frames read ahead of a sequential
# reader but not of a one-column query, readers at once over a small frame
# cache, DuckDB answers equal to an uncompressed
# store's, `auto`'s 10 % rule, and damage in the store (a corrupt frame,
# a truncated seek table, an unknown codec) refused with EIO and a log
# line, never wrong bytes.

load helpers

setup() {
	setup_store
	K1=$(key_of one)
	K2=$(key_of two)
	K3=$(key_of three)
}

teardown() {
	teardown_store
}

xattr() {
	getfattr --only-values -n "user.featurefs.$1" "$2"
}

# random_preads FILE ORIGINAL N: N random preads of FILE, each compared
# with the same bytes of ORIGINAL; prints "ok" or the first mismatch.
random_preads() {
	python3 - "$@" <<'PY'
import os, random, sys
path, orig, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
want = open(orig, "rb").read()
random.seed(7)
fd = os.open(path, os.O_RDONLY)
for i in range(n):
    off = random.randrange(0, len(want) + 100)
    size = random.randrange(1, 70000 if i % 10 else 3 << 20)
    got = os.pread(fd, size, off)
    if got != want[off:off + size]:
        print("mismatch at", off, size)
        sys.exit(0)
print("ok")
PY
}

# frame_bounds OBJECT I: "START END" of frame I in OBJECT, from its seek
# table (8-byte entries, no checksums, as featurefs writes them).
frame_bounds() {
	python3 - "$1" "$2" <<'PY'
import struct, sys
data = open(sys.argv[1], "rb").read()
frames, desc, magic = struct.unpack("<IBI", data[-9:])
assert magic == 0x8F92EAB1 and desc == 0, (hex(magic), desc)
table = data[-9 - 8 * frames:-9]
sizes = [struct.unpack("<II", table[8 * i:8 * i + 8]) for i in range(frames)]
i = int(sys.argv[2])
print(sum(c for c, _ in sizes[:i]), sum(c for c, _ in sizes[:i + 1]))
PY
}

@test "compress=zstd: exact bytes at any offset, logical sizes, zstd -d gives the original" {
	make_parquet "$DATA/a.parquet" 200000 1 # ~2.4 MB: three frames
	make_parquet "$DATA/b.parquet" 1000 2   # one short frame
	mount_store -o compress=zstd
	grep -qx 'compress = zstd' "$MNT/.featurefs/config"
	# reads the daemon serves come a frame at a time, not 128 KiB
	if [ "$(id -u)" = 0 ]; then
		[ "$(cat "/sys/class/bdi/$(mountpoint -d "$MNT")/read_ahead_kb")" = 1024 ]
	fi
	publish_file AAPL "$K1" "$DATA/a.parquet"
	publish_file AAPL "$K2" "$DATA/b.parquet"
	f=$MNT/AAPL/$K1.parquet
	obj=$STORE/objects/AAPL/$K1.parquet
	cmp "$DATA/a.parquet" "$f"
	cmp "$DATA/b.parquet" "$MNT/AAPL/$K2.parquet"
	[ "$(stat -c %s "$f")" = "$(stat -c %s "$DATA/a.parquet")" ]
	[ "$(xattr compression "$f")" = zstd ]
	[ "$(xattr stored_size "$f")" = "$(stat -c %s "$obj")" ]
	[ "$(stat -c %s "$obj")" -lt "$(stat -c %s "$DATA/a.parquet")" ]
	# du counts what the store holds
	[ "$(stat -c %b "$f")" -eq $((($(stat -c %s "$obj") + 511) / 512)) ]
	[ "$(xattr sha256 "$f")" = "$(sha256sum <"$DATA/a.parquet" | cut -c1-64)" ]
	[ "$(sha256sum <"$f")" = "$(sha256sum <"$DATA/a.parquet")" ]
	zstd -dc "$obj" | cmp - "$DATA/a.parquet"
	[ "$(manifest_sql "select compression, file_size_bytes, stored_size_bytes = $(stat -c %s "$obj") from entries where key='$K1'")" = \
		"zstd|$(stat -c %s "$DATA/a.parquet")|1" ]
	[ "$(random_preads "$f" "$DATA/a.parquet" 3000)" = ok ]
	# copied out (cp sees fewer blocks than bytes: holes are its guess)
	cp "$f" "$DATA/out.parquet"
	cmp "$DATA/a.parquet" "$DATA/out.parquet"
	# the frame cache reports what it did, frames read ahead included
	python3 - "$MNT/.featurefs/stats.json" <<'PY'
import json, sys
fc = json.load(open(sys.argv[1]))["frame_cache"]
assert set(fc) == {"frames", "bytes", "hits", "misses", "read_ahead",
                   "evictions"}, fc
assert fc["misses"] + fc["read_ahead"] >= 3, fc
PY
	grep -q '^featurefs_frame_cache_read_ahead_total ' "$MNT/.featurefs/metrics"
	# a rename publishes compressed too (rsync's scratch file, renamed)
	rsync "$DATA/b.parquet" "$MNT/AAPL/$K3.parquet"
	wait_published "$MNT/AAPL/$K3.parquet"
	[ "$(xattr compression "$MNT/AAPL/$K3.parquet")" = zstd ]
	cmp "$DATA/b.parquet" "$MNT/AAPL/$K3.parquet"
	# with no frame cache every read decompresses, and still reads right
	unmount_store
	mount_store -o frame_cache=0
	grep -qx 'compress = zstd' "$MNT/.featurefs/config" # store.conf's
	grep -qx 'frame_cache = 0' "$MNT/.featurefs/config"
	[ "$(random_preads "$f" "$DATA/a.parquet" 500)" = ok ]
	cmp "$DATA/a.parquet" "$f"
	unmount_store
	run "$FEATUREFS" fsck -n --verify "$STORE"
	[ "$status" -eq 0 ]
}

@test "compressed entries a fresh mount first meets in a listing read back exactly" {
	make_parquet "$DATA/a.parquet" 20000
	make_parquet "$DATA/b.parquet" 30000
	mount_store -o compress=zstd
	publish_file AAPL "$K1" "$DATA/a.parquet"
	publish_file AAPL "$K2" "$DATA/b.parquet"
	unmount_store
	# readdirplus makes the nodes; the opens that follow must know the
	# objects are compressed (they read as EIO, before that as zstd)
	mount_store
	run ls -l "$MNT/AAPL"
	[ "$status" -eq 0 ]
	[ "$(find "$MNT/AAPL" -name '*.parquet' -size +1k | wc -l)" = 2 ]
	cmp "$DATA/a.parquet" "$MNT/AAPL/$K1.parquet"
	cmp "$DATA/b.parquet" "$MNT/AAPL/$K2.parquet"
	[ "$(random_preads "$MNT/AAPL/$K2.parquet" "$DATA/b.parquet" 100)" = ok ]
	refute grep -q 'where its row says' "$TEST_DIR/daemon.log"
}

@test "frames begin where column chunks and the footer do; a footer read decompresses the footer alone" {
	make_parquet "$DATA/a.parquet" 300000 5 # three row groups of four columns
	mount_store -o compress=zstd
	publish_file AAPL "$K1" "$DATA/a.parquet"
	f=$MNT/AAPL/$K1.parquet
	cmp "$DATA/a.parquet" "$f"
	duck_sql "select coalesce(least(dictionary_page_offset, data_page_offset), data_page_offset) s,
		total_compressed_size n from parquet_metadata('$DATA/a.parquet')" >"$DATA/chunks"
	# the seek table's frames against the footer's chunks: the page of
	# a chunk 64 KiB or more long, after another as long, begins a
	# frame; the footer has a frame of its own
	python3 - "$STORE/objects/AAPL/$K1.parquet" "$DATA/a.parquet" "$DATA/chunks" <<'PY'
import json, os, struct, sys
obj, orig, chunks = sys.argv[1:]
data = open(obj, "rb").read()
frames, desc, magic = struct.unpack("<IBI", data[-9:])
assert magic == 0x8F92EAB1 and desc == 0
table = data[-9 - 8 * frames:-9]
sizes = [struct.unpack("<I", table[8 * i + 4:8 * i + 8])[0] for i in range(frames)]
starts, at = [], 0
for n in sizes:
    assert 0 < n <= 1 << 20, sizes
    starts.append(at)
    at += n
size = os.path.getsize(orig)
assert at == size
rows = [json.loads(line) for line in open(chunks)]
cuts = sorted(int(r["s"]) // 4096 * 4096 for r in rows)
assert len(cuts) == 12, rows
bounds = [0] + cuts + [size]
for i in range(1, len(bounds) - 1):
    if bounds[i] - bounds[i - 1] >= 65536 and bounds[i + 1] - bounds[i] >= 65536:
        assert bounds[i] in starts, (bounds[i], starts)
footer_len = struct.unpack("<I", open(orig, "rb").read()[-8:-4])[0]
footer = min(size - 8 - footer_len, size - 1024) // 4096 * 4096
assert starts[-1] == footer, (starts[-1], footer, size)
print(len(starts), "frames")
PY
	# a fresh daemon: DuckDB's count(*) reads the footer, one small frame
	unmount_store
	mount_store
	[ "$(duck_sql "select count(*) n from read_parquet('$f')")" = '{"n":"300000"}' ]
	python3 - "$MNT/.featurefs/stats.json" <<'PY'
import json, sys
fc = json.load(open(sys.argv[1]))["frame_cache"]
assert fc["misses"] == 1 and fc["read_ahead"] == 0, fc
assert fc["bytes"] < 64 << 10, fc
PY
}

@test "a query of one column of many reads no frame ahead; a sequential read does" {
	cols=$(python3 -c "print(', '.join(f'round(random() * 100 + {i}, 2) AS c{i}' for i in range(24)))")
	duck_sql "COPY (SELECT i AS id, $cols FROM range(250000) t(i)) TO '$DATA/wide.parquet'
		(FORMAT parquet, COMPRESSION 'uncompressed')" >/dev/null
	want=$(duck_sql "select sum((c7 * 100)::BIGINT) s from read_parquet('$DATA/wide.parquet')")
	mount_store -o compress=zstd
	publish_file AAPL "$K1" "$DATA/wide.parquet"
	f=$MNT/AAPL/$K1.parquet
	# a fresh daemon: each column chunk's read, with the kernel's
	# readahead past it, is too short a run to read frames ahead for
	unmount_store
	mount_store
	[ "$(duck_sql "select sum((c7 * 100)::BIGINT) s from read_parquet('$f')")" = "$want" ]
	python3 - "$MNT/.featurefs/stats.json" <<'PY'
import json, sys
fc = json.load(open(sys.argv[1]))["frame_cache"]
assert fc["misses"] > 0 and fc["read_ahead"] == 0, fc
PY
	# a whole read in order gets frames ahead (one thread per spare CPU);
	# a reader that pauses between reads, as one that works on what it
	# read does, leaves those threads time to get there first on a
	# loaded machine
	python3 - "$f" "$DATA/wide.parquet" <<'PY'
import sys, time
got = bytearray()
with open(sys.argv[1], "rb", buffering=0) as r:
    while True:
        b = r.read(1 << 20)
        if not b:
            break
        got += b
        time.sleep(0.02)
assert bytes(got) == open(sys.argv[2], "rb").read()
PY
	if [ "$(nproc)" -gt 1 ]; then
		python3 - "$MNT/.featurefs/stats.json" <<'PY'
import json, sys
fc = json.load(open(sys.argv[1]))["frame_cache"]
assert fc["read_ahead"] > 0, fc
PY
	fi
}

@test "a sequential read leaves few frames behind: those read whole make way for the next" {
	make_parquet "$DATA/a.parquet" 2000000 4 # ~24 MB
	mount_store -o compress=zstd
	mkdir "$MNT/AAPL"
	f=$MNT/AAPL/$K1.parquet
	# close() returns before the publish that compresses; an attribute
	# read after it waits for the outcome, as an open does
	cp "$DATA/a.parquet" "$f"
	[ "$(getfattr --only-values -n user.featurefs.state "$f")" = published ]
	unmount_store
	mount_store
	cmp "$DATA/a.parquet" "$f"
	# under a budget that holds the whole entry, the cache keeps the
	# frames being read and those ahead, and buffers of 2 MiB chunks
	# await them, not what the kernel holds now (the whole entry, and
	# more in buffers of its size classes, before); and no frame is
	# decompressed ahead once the reader has passed it (a read ahead
	# may still start as the reader gets there: a few, not one in ten)
	python3 - "$MNT/.featurefs/stats.json" "$STORE/objects/AAPL/$K1.parquet" <<'PY'
import json, struct, sys
fc = json.load(open(sys.argv[1]))["frame_cache"]
with open(sys.argv[2], "rb") as obj:
    obj.seek(-9, 2)
    frames = struct.unpack("<I", obj.read(4))[0] # the seek table's count
assert frames >= 40, frames
assert frames <= fc["misses"] + fc["read_ahead"] <= frames + frames // 10, (frames, fc)
assert fc["evictions"] > 0 and fc["bytes"] <= 16 << 20, fc
PY
}

@test "no memory for a frame: ENOMEM for the read, said once a minute; the mount goes on" {
	[ -n "${FEATUREFS_FAULT_INJECTION:-}" ] || skip "needs -Dfault_injection=true"
	make_parquet "$DATA/a.parquet" 200000 5
	mount_store -o compress=zstd
	mkdir "$MNT/AAPL"
	cp "$DATA/a.parquet" "$MNT/AAPL/$K1.parquet"
	[ "$(getfattr --only-values -n user.featurefs.state "$MNT/AAPL/$K1.parquet")" = published ]
	unmount_store
	# every new chunk of frame buffers fails, as under a memory limit
	FEATUREFS_FAULT="frame_chunk=ENOMEM@1+" mount_store
	for i in 1 2 3; do
		run cat "$MNT/AAPL/$K1.parquet"
		[ "$status" -ne 0 ]
		[[ "$output" == *"Cannot allocate memory"* ]]
	done
	log_has "read AAPL/$K1.parquet at 0: no memory to decompress a frame into"
	[ "$(grep -c 'no memory to decompress' "$TEST_DIR/daemon.log")" = 1 ]
	unmount_store
	mount_store
	cmp "$DATA/a.parquet" "$MNT/AAPL/$K1.parquet"
}

@test "many readers at once, frames read ahead and evicted under them: every byte right" {
	make_parquet "$DATA/a.parquet" 500000 4 # ~6 MB: six frames
	sum=$(sha256sum <"$DATA/a.parquet")
	# a cache of eight frames: frames read ahead for one reader push out
	# another's
	mount_store -o compress=zstd,frame_cache=8M
	publish_file AAPL "$K1" "$DATA/a.parquet"
	f=$MNT/AAPL/$K1.parquet
	pids=
	for i in 1 2 3 4 5 6; do
		case $i in
		1 | 2 | 3) sha256sum <"$f" >"$DATA/sum.$i" ;;
		4) dd if="$f" bs=4k status=none | sha256sum >"$DATA/sum.$i" ;;
		*) random_preads "$f" "$DATA/a.parquet" 300 >"$DATA/sum.$i" ;;
		esac &
		pids="$pids $!"
	done
	wait $pids # not the daemon's
	for i in 1 2 3 4; do
		[ "$(cat "$DATA/sum.$i")" = "$sum" ]
	done
	[ "$(cat "$DATA/sum.5")" = ok ]
	[ "$(cat "$DATA/sum.6")" = ok ]
	python3 - "$MNT/.featurefs/stats.json" <<'PY'
import json, sys
fc = json.load(open(sys.argv[1]))["frame_cache"]
assert fc["bytes"] <= 8 << 20, fc
assert fc["misses"] + fc["read_ahead"] >= 6, fc
PY
	unmount_store
	run "$FEATUREFS" fsck -n --verify "$STORE"
	[ "$status" -eq 0 ]
}

@test "one store holds both kinds; DuckDB answers the same from each" {
	make_parquet "$DATA/a.parquet" 150000 3
	# sum(price) over doubles depends on the order threads add them in:
	# exact decimals answer the same whatever the order
	q="select count(*) n, sum(price::DECIMAL(18,6)) p, min(ts) t0, max(ts) t1, sum(size) s from read_parquet"
	mount_store -o compress=none
	publish_file AAPL "$K1" "$DATA/a.parquet"
	unmount_store
	# the option changes new objects only
	mount_store -o compress=zstd
	publish_file AAPL "$K2" "$DATA/a.parquet"
	[ "$(manifest_sql "select compression from entries order by compression")" = \
		"$(printf 'none\nzstd')" ]
	raw=$(duck_sql "$q('$MNT/AAPL/$K1.parquet')")
	zst=$(duck_sql "$q('$MNT/AAPL/$K2.parquet')")
	[ -n "$raw" ]
	[ "$raw" = "$zst" ]
	[ "$raw" = "$(duck_sql "$q('$DATA/a.parquet')")" ]
	[ "$(duck_sql "select side, count(*) from read_parquet('$MNT/AAPL/$K2.parquet') group by side order by side")" = \
		"$(duck_sql "select side, count(*) from read_parquet('$DATA/a.parquet') group by side order by side")" ]
	# uncompressed entries keep passthrough; compressed ones are the
	# daemon's to serve
	cmp "$DATA/a.parquet" "$MNT/AAPL/$K1.parquet"
	cmp "$DATA/a.parquet" "$MNT/AAPL/$K2.parquet"
	[ "$(ls "$MNT/AAPL" | wc -l)" = 2 ]
}

@test "compress=auto keeps zstd only when it saves 10 %" {
	make_parquet "$DATA/tick.parquet" 100000 4
	# random bytes, already zstd-compressed by DuckDB: nothing to gain
	duck_sql "copy (select md5(i::varchar) || md5((i * 7)::varchar) h, random() r from range(60000) t(i))
		to '$DATA/dense.parquet' (format parquet, compression zstd)" >/dev/null
	mount_store -o compress=auto
	publish_file AAPL "$K1" "$DATA/tick.parquet"
	publish_file AAPL "$K2" "$DATA/dense.parquet"
	[ "$(xattr compression "$MNT/AAPL/$K1.parquet")" = zstd ]
	[ "$(xattr compression "$MNT/AAPL/$K2.parquet")" = none ]
	[ "$(stat -c %s "$STORE/objects/AAPL/$K2.parquet")" = "$(stat -c %s "$DATA/dense.parquet")" ]
	cmp "$DATA/dense.parquet" "$STORE/objects/AAPL/$K2.parquet"
	cmp "$DATA/tick.parquet" "$MNT/AAPL/$K1.parquet"
	cmp "$DATA/dense.parquet" "$MNT/AAPL/$K2.parquet"
	# no compressed copy is left behind in tmp/
	[ -z "$(ls -A "$STORE/tmp")" ]
}

@test "a corrupt frame: EIO for reads that touch it, logged; other frames read; fsck finds it" {
	make_parquet "$DATA/a.parquet" 200000 1
	mount_store -o compress=zstd
	publish_file AAPL "$K1" "$DATA/a.parquet"
	publish_file AAPL "$K2" "$DATA/a.parquet"
	unmount_store
	obj=$STORE/objects/AAPL/$K1.parquet
	read -r start end < <(frame_bounds "$obj" 1)
	python3 -c "
import sys
with open(sys.argv[1], 'r+b') as f:
    f.seek(int(sys.argv[2])); b = f.read(1)
    f.seek(int(sys.argv[2])); f.write(bytes([b[0] ^ 0x5a]))" "$obj" $(((start + end) / 2))
	mount_store
	f=$MNT/AAPL/$K1.parquet
	[ "$(try_errno "os.pread(os.open('$f', os.O_RDONLY), 4096, (1 << 20) + 100)")" = EIO ]
	log_has "read AAPL/$K1.parquet at .*: a corrupt compressed frame"
	# frames 0 and 2 are intact
	[ "$(try_errno "assert os.pread(os.open('$f', os.O_RDONLY), 4096, 0) == open('$DATA/a.parquet', 'rb').read(4096)")" = OK ]
	[ "$(try_errno "os.pread(os.open('$f', os.O_RDONLY), 4096, (2 << 20) + 100)")" = OK ]
	# a whole read fails rather than return wrong bytes
	run cat "$f"
	[ "$status" -ne 0 ]
	cmp "$DATA/a.parquet" "$MNT/AAPL/$K2.parquet"
	unmount_store
	run "$FEATUREFS" fsck -n "$STORE"
	[ "$status" -eq 4 ]
	[[ "$output" == *"AAPL/$K1: a corrupt compressed object"* ]]
	run "$FEATUREFS" fsck -y "$STORE"
	[ "$status" -eq 1 ]
	[ -f "$STORE/lost+found/AAPL.$K1.parquet" ]
	run "$FEATUREFS" fsck -n --verify "$STORE"
	[ "$status" -eq 0 ]
}

@test "a truncated or corrupt seek table, an unknown codec: EIO at open with a log line" {
	make_parquet "$DATA/a.parquet" 20000 1
	mount_store -o compress=zstd
	publish_file AAPL "$K1" "$DATA/a.parquet"
	publish_file AAPL "$K2" "$DATA/a.parquet"
	publish_file AAPL "$K3" "$DATA/a.parquet"
	unmount_store
	obj=$STORE/objects/AAPL/$K1.parquet
	truncate -s -5 "$obj"
	# the same size, the seek table's magic number gone
	printf '\0' | dd of="$STORE/objects/AAPL/$K2.parquet" bs=1 \
		seek=$(($(stat -c %s "$STORE/objects/AAPL/$K2.parquet") - 1)) conv=notrunc status=none
	sqlite3 "$STORE/manifest.db" "update entries set compression = 'lz4' where key = '$K3'"
	mount_store
	[ "$(try_errno "os.open('$MNT/AAPL/$K1.parquet', os.O_RDONLY)")" = EIO ]
	log_has "open AAPL/$K1.parquet: its compressed object is unreadable: the object's size is not the stored size"
	[ "$(try_errno "os.open('$MNT/AAPL/$K2.parquet', os.O_RDONLY)")" = EIO ]
	log_has "open AAPL/$K2.parquet: its compressed object is unreadable: no seek table"
	[ "$(try_errno "os.open('$MNT/AAPL/$K3.parquet', os.O_RDONLY)")" = EIO ]
	log_has "open AAPL/$K3.parquet: its compressed object is unreadable: a compression this featurefs does not know"
	# stat still works: the row is there
	[ "$(stat -c %s "$MNT/AAPL/$K1.parquet")" = "$(stat -c %s "$DATA/a.parquet")" ]
	unmount_store
	run "$FEATUREFS" fsck -n "$STORE"
	[ "$status" -eq 4 ]
	[[ "$output" == *"AAPL/$K1: object has"*"bytes, the row says"* ]]
	[[ "$output" == *"AAPL/$K2: a corrupt compressed object: no seek table"* ]]
	[[ "$output" == *"AAPL/$K3: compression 'lz4' is not known"* ]]
}

@test "fsck -p adopts a compressed orphan as compressed; the mount serves it" {
	make_parquet "$DATA/a.parquet" 30000 5
	mount_store -o compress=zstd
	publish_file AAPL "$K1" "$DATA/a.parquet"
	unmount_store
	cp "$STORE/objects/AAPL/$K1.parquet" "$STORE/objects/AAPL/$K2.parquet"
	run "$FEATUREFS" fsck -p "$STORE"
	[ "$status" -eq 1 ]
	[[ "$output" == *"AAPL/$K2: valid object without a manifest row (adopted)"* ]]
	[ "$(manifest_sql "select compression, file_size_bytes, sha256 from entries where key='$K2'")" = \
		"zstd|$(stat -c %s "$DATA/a.parquet")|$(sha256sum <"$DATA/a.parquet" | cut -c1-64)" ]
	run "$FEATUREFS" fsck -n --verify "$STORE"
	[ "$status" -eq 0 ]
	mount_store
	cmp "$DATA/a.parquet" "$MNT/AAPL/$K2.parquet"
}

@test "any failure to compress stores the entry as written: close() has returned 0" {
	require_faults
	make_parquet "$DATA/a.parquet" 200000 1
	FEATUREFS_FAULT=compress=EMFILE mount_store -o compress=zstd
	mkdir "$MNT/AAPL"
	cp "$DATA/a.parquet" "$MNT/AAPL/$K1.parquet"
	cmp "$DATA/a.parquet" "$MNT/AAPL/$K1.parquet"
	[ "$(xattr compression "$MNT/AAPL/$K1.parquet")" = none ]
	log_has "publish AAPL/$K1: compressing it failed (Too many open files): stored as written"
	[ -z "$(ls -A "$STORE/tmp")" ]
	unmount_store
	run "$FEATUREFS" fsck -n "$STORE"
	[ "$status" -eq 0 ]
}

@test "a full disk while compressing stores the entry as written, and so does the next mount after a daemon killed then" {
	require_faults
	make_parquet "$DATA/a.parquet" 200000 1
	# close() has returned: the data is whole in tmp/, and kept raw
	FEATUREFS_FAULT=compress=ENOSPC mount_store -o compress=zstd
	mkdir "$MNT/AAPL"
	cp "$DATA/a.parquet" "$MNT/AAPL/$K1.parquet"
	cmp "$DATA/a.parquet" "$MNT/AAPL/$K1.parquet"
	[ "$(xattr compression "$MNT/AAPL/$K1.parquet")" = none ]
	log_has "publish AAPL/$K1: no room to compress it (No space left on device): stored as written"
	[ -z "$(ls -A "$STORE/tmp")" ]
	rm "$MNT/AAPL/$K1.parquet"
	unmount_store
	FEATUREFS_FAULT=compress=crash mount_store
	cp "$DATA/a.parquet" "$MNT/AAPL/$K1.parquet" || true
	wait_daemon_gone || true
	fusermount3 -uz "$MNT" 2>/dev/null || true
	[ ! -e "$STORE/objects/AAPL/$K1.parquet" ]
	# cp's close() returned 0: the tmp file it filled is published
	mount_store
	cmp "$DATA/a.parquet" "$MNT/AAPL/$K1.parquet"
	[ "$(xattr compression "$MNT/AAPL/$K1.parquet")" = none ]
	[ -z "$(ls -A "$STORE/tmp")" ]
	rm "$MNT/AAPL/$K1.parquet"
	publish_file AAPL "$K1" "$DATA/a.parquet"
	cmp "$DATA/a.parquet" "$MNT/AAPL/$K1.parquet"
	[ "$(xattr compression "$MNT/AAPL/$K1.parquet")" = zstd ]
	unmount_store
	run "$FEATUREFS" fsck -n --verify "$STORE"
	[ "$status" -eq 0 ]
}

@test "compression options: bad values fail the mount clearly; init records the choice" {
	for o in compress=lz4 compress_level=0 compress_level=23 compress_level=3x compress_level=+3 compress_level= frame_cache=lots; do
		run "$FEATUREFS" "$STORE" "$MNT" -f -o "$o"
		[ "$status" -ne 0 ]
		[[ "$output" == *"invalid ${o%%=*}=${o#*=}: expected"* ]]
	done
	refute mountpoint -q "$MNT"
	run "$FEATUREFS" init "$STORE" --compress gzip
	[ "$status" -ne 0 ]
	[[ "$output" == *"--compress gzip: expected none, zstd or auto"* ]]
	run "$FEATUREFS" init "$STORE" --compress auto
	[ "$status" -eq 0 ]
	grep -qx 'compression = auto' "$STORE/store.conf"
	mount_store -o compress_level=19
	grep -qx 'compress = auto' "$MNT/.featurefs/config"
	grep -qx 'compress_level = 19' "$MNT/.featurefs/config"
	unmount_store
	sed -i 's/^compression = .*/compression = brotli/' "$STORE/store.conf"
	run "$FEATUREFS" "$STORE" "$MNT" -f
	[ "$status" -ne 0 ]
	[[ "$output" == *"store.conf:5: compression = brotli: expected none, zstd or auto"* ]]
	# a new store is uncompressed unless asked
	rm -rf "$STORE"
	mount_store
	grep -qx 'compress = none' "$MNT/.featurefs/config"
	grep -qx 'compression = none' "$STORE/store.conf"
}
