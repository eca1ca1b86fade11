#!/usr/bin/env bats
# fsck.bats - featurefs fsck (SPEC §8, docs/fsck.md): each test damages a
# store made through a real mount, then checks what -n reports, what -p
# and -y repair, the fsck(8) exit codes, and that a second run is clean.

load helpers

setup() {
	setup_store
	K1=$(key_of one)
	K2=$(key_of two)
	K3=$(key_of three)
	HELPER=${FEATUREFS_SOURCE:-$BATS_TEST_DIRNAME/../..}/mount-helpers/fsck.featurefs
}

teardown() {
	teardown_store
}

# A store with two published entries of AAPL, unmounted.
make_store() {
	make_parquet "$DATA/a.parquet" 20000 1
	make_parquet "$DATA/b.parquet" 1000 2
	mount_store
	publish_file AAPL "$K1" "$DATA/a.parquet"
	publish_file AAPL "$K2" "$DATA/b.parquet"
	unmount_store
}

# fsck ARGS...: run featurefs fsck, stdout and stderr in $output.
fsck_run() {
	run "$FEATUREFS" fsck "$@"
}

# What fsck could change: files (but SQLite's -wal/-shm and the lock
# file's holder record) with sizes, modes and contents, and the rows.
snapshot() {
	(
		cd "$STORE"
		find . -path ./store.lock -prune -o -name 'manifest.db-*' -prune \
			-o -printf '%p %y %s %m\n' | sort
		find objects lost+found tmp -type f -exec sha256sum {} + | sort
	)
	"$FEATUREFS" ls --json "$STORE"
	manifest_sql "select * from symbols order by symbol"
}

@test "a clean store: exit 0 and nothing changes, whatever the mode" {
	make_store
	# and an entry hashed with hash=footer, which --verify checks too
	mount_store -o hash=footer
	publish_file MSFT "$K3" "$DATA/b.parquet"
	unmount_store
	before=$(snapshot)
	for args in "" -n -p -y "-n --verify" "-p --verify" "-y --verify"; do
		# shellcheck disable=SC2086
		"$FEATUREFS" fsck $args "$STORE" >"$TEST_DIR/out" 2>"$TEST_DIR/err"
		grep -q ': 3 entries checked.*: clean$' "$TEST_DIR/out"
		# no progress line and no warnings when stderr is not a TTY
		[ ! -s "$TEST_DIR/err" ]
	done
	[ "$(snapshot)" = "$before" ]
	"$FEATUREFS" fsck --verify --json "$STORE" >"$TEST_DIR/out"
	python3 -c "
import json, sys
c = json.load(open(sys.argv[1]))['counts']
assert (c['entries'], c['verified'], c['findings']) == (3, 3, 0), c" "$TEST_DIR/out"
}

@test "an object deleted behind the manifest's back: -n 4, -p 1 drops the row, then 0" {
	make_store
	rm "$STORE/objects/AAPL/$K2.parquet"
	fsck_run -n "$STORE"
	[ "$status" -eq 4 ]
	[[ "$output" == *"fsck: AAPL/$K2: object missing (left; run fsck -p)"* ]]
	[ "$(manifest_sql "select count(*) from entries")" = 2 ]
	fsck_run -p "$STORE"
	[ "$status" -eq 1 ]
	[[ "$output" == *"fsck: AAPL/$K2: object missing (row dropped)"* ]]
	[ "$(manifest_sql "select key from entries")" = "$K1" ]
	fsck_run -n "$STORE"
	[ "$status" -eq 0 ]
	mount_store
	[ "$(try_errno "os.stat('$MNT/AAPL/$K2.parquet')")" = ENOENT ]
	cmp "$DATA/a.parquet" "$MNT/AAPL/$K1.parquet"
}

@test "rows dropped for missing objects leave no symbol row made for them" {
	make_store
	# rows of a symbol with neither a symbols row nor objects/<symbol>/
	sqlite3 "$STORE/manifest.db" "insert into entries select 'MSFT', key,
		'objects/MSFT/' || key || '.parquet', state, start_ts, end_ts,
		rows, file_size_bytes, stored_size_bytes, compression,
		hash_method, sha256, created_ts, last_accessed_ts, access_count,
		writer, mtime_ns, mode, ctime_ns, sealed_tmp from entries"
	fsck_run -p "$STORE"
	echo "$output" >&2
	[ "$status" -eq 1 ]
	[[ "$output" == *"fsck: MSFT/$K1: object missing (row dropped)"* ]]
	[[ "$output" != *"symbol row created"* ]]
	[ "$(manifest_sql "select group_concat(symbol) from symbols")" = AAPL ]
	fsck_run -n "$STORE"
	[ "$status" -eq 0 ]
}

@test "a removed entry whose object path is a directory: -p moves the directory to lost+found, once" {
	make_store
	rm "$STORE/objects/AAPL/$K2.parquet"
	mkdir "$STORE/objects/AAPL/$K2.parquet"
	echo kept >"$STORE/objects/AAPL/$K2.parquet/note"
	mount_store
	rm "$MNT/AAPL/$K2.parquet"
	unmount_store
	fsck_run -p "$STORE"
	echo "$output" >&2
	[ "$status" -eq 1 ]
	[[ "$output" == *"fsck: AAPL/$K2: its row was removed, its object was not"*"(removed)"* ]]
	[ "$(cat "$STORE/lost+found/AAPL.$K2.parquet/note")" = kept ]
	fsck_run -n "$STORE"
	[ "$status" -eq 0 ]
}

@test "a valid orphan is adopted by -p and served by the next mount" {
	make_store
	make_parquet "$DATA/c.parquet" 3000 3
	cp "$DATA/c.parquet" "$STORE/objects/AAPL/$K3.parquet"
	# an orphan in a symbol the manifest has never heard of
	mkdir "$STORE/objects/MSFT"
	cp "$DATA/b.parquet" "$STORE/objects/MSFT/$K1.parquet"
	fsck_run -n "$STORE"
	[ "$status" -eq 4 ]
	[[ "$output" == *"fsck: AAPL/$K3: valid object without a manifest row (left; run fsck -p)"* ]]
	[[ "$output" == *"fsck: objects/MSFT: objects/ holds files but no symbol row (left; run fsck -p)"* ]]
	fsck_run -p "$STORE"
	[ "$status" -eq 1 ]
	[[ "$output" == *"fsck: AAPL/$K3: valid object without a manifest row (adopted)"* ]]
	[[ "$output" == *"fsck: MSFT/$K1: valid object without a manifest row (adopted)"* ]]
	[[ "$output" == *"symbol row created"* ]]
	[ "$(manifest_sql "select state, rows, sha256 from entries where key='$K3'")" = \
		"published|3000|$(sha256sum <"$DATA/c.parquet" | cut -c1-64)" ]
	fsck_run -n --verify "$STORE"
	[ "$status" -eq 0 ]
	mount_store
	cmp "$DATA/c.parquet" "$MNT/AAPL/$K3.parquet"
	cmp "$DATA/b.parquet" "$MNT/MSFT/$K1.parquet"
	[ "$(ls "$MNT")" = "$(printf 'AAPL\nMSFT')" ]
}

@test "a store whose manifest was lost says so at mount; fsck -p brings its entries back" {
	make_store
	rm "$STORE"/manifest.db*
	# fsck alone cannot: it says what can
	fsck_run -n "$STORE"
	[ "$status" -eq 8 ]
	[[ "$output" == *"manifest $STORE/manifest.db is missing: restore it from a backup, or mount the store once"* ]]
	mount_store
	log_has "the manifest holds no symbol, but objects/ holds files: its rows were lost"
	[ -z "$(ls -A "$MNT")" ]
	unmount_store
	fsck_run -p "$STORE"
	[ "$status" -eq 1 ]
	mount_store
	cmp "$DATA/a.parquet" "$MNT/AAPL/$K1.parquet"
	cmp "$DATA/b.parquet" "$MNT/AAPL/$K2.parquet"
	unmount_store
	[ "$(grep -c 'its rows were lost' "$TEST_DIR/daemon.log")" = 1 ]
}

@test "a damaged manifest: the mount says so once, its health turns to error, fsck exits 8" {
	make_store
	# the root page of the entries table, its page type made invalid
	IFS='|' read -r root size < <(sqlite3 "$STORE/manifest.db" \
		"select rootpage, (select page_size from pragma_page_size) from sqlite_master where name = 'entries'")
	printf '\xff' | dd of="$STORE/manifest.db" bs=1 seek=$(((root - 1) * size)) conv=notrunc status=none
	mount_store
	[ "$(try_errno "open('$MNT/AAPL/$K3.parquet', 'xb')")" = EIO ]
	[ "$(try_errno "open('$MNT/AAPL/$(key_of four).parquet', 'xb')")" = EIO ]
	[ "$(python3 -c "import json; print(json.load(open('$MNT/.featurefs/health'))['components']['manifest'])")" = error ]
	unmount_store
	[ "$(grep -c 'manifest.db is damaged: what touches the damaged pages fails' "$TEST_DIR/daemon.log")" = 1 ]
	fsck_run -n "$STORE"
	[ "$status" -eq 8 ]
}

@test "another filesystem mounted inside objects/ is left alone" {
	make_store
	mkdir "$STORE/objects/MNT2"
	mount -t tmpfs tmpfs "$STORE/objects/MNT2" || skip "cannot mount a tmpfs"
	mkdir "$STORE/objects/MNT2/AAPL"
	echo junk >"$STORE/objects/MNT2/junk"
	fsck_run -y "$STORE"
	st=$status out=$output
	ls -A "$STORE/objects/MNT2" >"$TEST_DIR/left"
	umount "$STORE/objects/MNT2"
	[ "$st" -eq 0 ]
	[[ "$out" == *"fsck: objects/MNT2: another filesystem is mounted there; left alone"* ]]
	[ "$(cat "$TEST_DIR/left")" = "$(printf 'AAPL\njunk')" ]
	[ "$(manifest_sql "select count(*) from symbols where symbol = 'MNT2'")" = 0 ]
}

@test "a flipped byte is found by --verify only; -y quarantines it into lost+found" {
	make_store
	obj=$STORE/objects/AAPL/$K1.parquet
	size=$(stat -c %s "$obj")
	sum=$(manifest_sql "select sha256 from entries where key='$K1'")
	python3 -c "
import sys
with open(sys.argv[1], 'r+b') as f:
    f.seek(int(sys.argv[2]) // 2); b = f.read(1)
    f.seek(int(sys.argv[2]) // 2); f.write(bytes([b[0] ^ 0xff]))" "$obj" "$size"
	fsck_run -n "$STORE"
	[ "$status" -eq 0 ]
	fsck_run -n --verify "$STORE"
	[ "$status" -eq 4 ]
	[[ "$output" == *"fsck: AAPL/$K1: checksum mismatch"*"(left; run fsck -y)"* ]]
	# preening never moves data
	fsck_run -p --verify "$STORE"
	[ "$status" -eq 4 ]
	[ -f "$obj" ]
	fsck_run -y --verify "$STORE"
	[ "$status" -eq 1 ]
	[[ "$output" == *"quarantined: lost+found/AAPL.$K1.parquet, row dropped"* ]]
	[ ! -e "$obj" ]
	[ "$(stat -c %s "$STORE/lost+found/AAPL.$K1.parquet")" = "$size" ]
	python3 -c "
import json, sys
r = json.load(open(sys.argv[1]))
assert r['key'] == sys.argv[2] and r['sha256'] == sys.argv[3], r
assert r['object'] == 'lost+found/AAPL.' + sys.argv[2] + '.parquet', r" \
		"$STORE/lost+found/AAPL.$K1.parquet.row.json" "$K1" "$sum"
	[ "$(manifest_sql "select count(*) from entries where key='$K1'")" = 0 ]
	fsck_run -n --verify "$STORE"
	[ "$status" -eq 0 ]
	mount_store
	[ "$(try_errno "os.stat('$MNT/AAPL/$K1.parquet')")" = ENOENT ]
	cmp "$DATA/b.parquet" "$MNT/AAPL/$K2.parquet"
}

@test "a daemon killed mid-write: -p cleans the writing row and tmp file without a remount" {
	make_parquet "$DATA/a.parquet" 20000
	mount_store
	mkdir "$MNT/AAPL"
	exec 5>"$MNT/AAPL/$K1.parquet"
	head -c 100 "$DATA/a.parquet" >&5
	[ "$(manifest_sql "select state from entries where key='$K1'")" = writing ]
	kill_daemon
	exec 5>&- || true
	[ -n "$(ls -A "$STORE/tmp")" ]
	fsck_run -n "$STORE"
	[ "$status" -eq 4 ]
	[[ "$output" == *"fsck: AAPL/$K1: writer "*" is gone; the write was unfinished (left; run fsck -p)"* ]]
	[[ "$output" == *"tmp file of a writer that is gone (left; run fsck -p)"* ]]
	fsck_run -p "$STORE"
	[ "$status" -eq 1 ]
	[[ "$output" == *"the write was unfinished (row dropped)"* ]]
	[[ "$output" == *"tmp file of a writer that is gone (removed)"* ]]
	[ "$(manifest_sql "select count(*) from entries")" = 0 ]
	[ -z "$(ls -A "$STORE/tmp")" ]
	fsck_run -n "$STORE"
	[ "$status" -eq 0 ]
}

@test "a crash between rename and manifest update: -p adopts the object, no data lost" {
	[ -n "${FEATUREFS_FAULT_INJECTION:-}" ] || skip "needs a -Dfault_injection=true build"
	make_parquet "$DATA/a.parquet" 5000
	FEATUREFS_FAULT=after_rename=crash mount_store
	mkdir "$MNT/AAPL"
	cp "$DATA/a.parquet" "$MNT/AAPL/$K1.parquet" || true
	daemon_gone_detach # it killed itself (fault injection)
	cmp "$DATA/a.parquet" "$STORE/objects/AAPL/$K1.parquet"
	[ "$(manifest_sql "select state from entries where key='$K1'")" = writing ]
	fsck_run -n "$STORE"
	[ "$status" -eq 4 ]
	[[ "$output" == *"fsck: AAPL/$K1: writer "*" is gone; its object is complete (left; run fsck -p)"* ]]
	fsck_run -p "$STORE"
	[ "$status" -eq 1 ]
	[[ "$output" == *"its object is complete (adopted)"* ]]
	[ "$(manifest_sql "select state, sha256 from entries where key='$K1'")" = \
		"published|$(sha256sum <"$DATA/a.parquet" | cut -c1-64)" ]
	fsck_run -n --verify "$STORE"
	[ "$status" -eq 0 ]
	mount_store
	cmp "$DATA/a.parquet" "$MNT/AAPL/$K1.parquet"
}

@test "a crash after close() returned: -p publishes the tmp file the writer closed; a row naming another's file publishes nothing" {
	[ -n "${FEATUREFS_FAULT_INJECTION:-}" ] || skip "needs a -Dfault_injection=true build"
	make_parquet "$DATA/a.parquet" 5000
	FEATUREFS_FAULT=publish_rename=crash mount_store
	mkdir "$MNT/AAPL"
	cp "$DATA/a.parquet" "$MNT/AAPL/$K1.parquet"
	daemon_gone_detach # it killed itself (fault injection)
	[ ! -e "$STORE/objects/AAPL/$K1.parquet" ]
	tmp=$(manifest_sql "select sealed_tmp from entries where key='$K1' and state='writing'")
	cmp "$DATA/a.parquet" "$STORE/tmp/$tmp"
	# hostile rows: a tmp file of another mount, a path out of tmp/, a FIFO
	mkfifo "$STORE/tmp/${tmp%%.*}.99.entry"
	cp "$DATA/a.parquet" "$STORE/objects/AAPL/$K3.parquet"
	writer=$(manifest_sql "select writer from entries where key='$K1'")
	K4=$(key_of four)
	K5=$(key_of five)
	sqlite3 "$STORE/manifest.db" "insert into entries (symbol, key, path, state, created_ts, writer, sealed_tmp) values
		('AAPL', '$K2', 'x', 'writing', 1, 'h pid=1 mount=other', '$tmp'),
		('AAPL', '$K4', 'x', 'writing', 1, '$writer', '../objects/AAPL/$K3.parquet'),
		('AAPL', '$K5', 'x', 'writing', 1, '$writer', '${tmp%%.*}.99.entry')"
	fsck_run -n "$STORE"
	[ "$status" -eq 4 ]
	[[ "$output" == *"fsck: AAPL/$K1: writer "*" is gone; it was closed, and its tmp file is complete (left; run fsck -p)"* ]]
	[[ "$output" == *"fsck: AAPL/$K2: writer h pid=1 mount=other is gone; the write was unfinished"* ]]
	[[ "$output" == *"fsck: AAPL/$K4: writer "*" is gone; the write was unfinished"* ]]
	[[ "$output" == *"fsck: AAPL/$K5: writer "*" is gone; the write was unfinished"* ]]
	[[ "$output" != *"tmp/$tmp"* ]] # reported with its row
	fsck_run -p "$STORE"
	[ "$status" -eq 1 ]
	[[ "$output" == *"it was closed, and its tmp file is complete (adopted)"* ]]
	[ "$(manifest_sql "select key, state, sha256 from entries where key in ('$K1', '$K2', '$K4', '$K5') order by key")" = \
		"$K1|published|$(sha256sum <"$DATA/a.parquet" | cut -c1-64)" ]
	cmp "$DATA/a.parquet" "$STORE/objects/AAPL/$K1.parquet"
	cmp "$DATA/a.parquet" "$STORE/objects/AAPL/$K3.parquet" # left where it was
	[ -z "$(ls -A "$STORE/tmp")" ]
	fsck_run -n --verify "$STORE"
	[ "$status" -eq 0 ]
	mount_store
	cmp "$DATA/a.parquet" "$MNT/AAPL/$K1.parquet"
}

@test "a row giving an impossible size: the mount answers EIO and says why; -y quarantines it" {
	make_store
	sqlite3 "$STORE/manifest.db" "update entries set file_size_bytes = -5 where key = '$K1';
		update entries set file_size_bytes = 7 where key = '$K2'"
	mount_store
	run ls -l "$MNT/AAPL"
	[[ "$output" == *"$K1.parquet"* ]]
	[ "$(try_errno "os.stat('$MNT/AAPL/$K1.parquet')")" = EIO ]
	[ "$(try_errno "open('$MNT/AAPL/$K2.parquet').read()")" = EIO ]
	log_has "lookup AAPL/$K1.parquet: its row gives a negative size; fsck -y quarantines it"
	log_has "lookup AAPL/$K2.parquet: its row gives an uncompressed object whose stored and logical sizes differ"
	unmount_store
	fsck_run -n "$STORE"
	[ "$status" -eq 4 ]
	[[ "$output" == *"fsck: AAPL/$K1: the row gives a negative size (left; run fsck -y)"* ]]
	fsck_run -y "$STORE"
	[ "$status" -eq 1 ]
	[[ "$output" == *"quarantined: lost+found/AAPL.$K1.parquet, row dropped"* ]]
	[[ "$output" == *"quarantined: lost+found/AAPL.$K2.parquet, row dropped"* ]]
	cmp "$DATA/a.parquet" "$STORE/lost+found/AAPL.$K1.parquet"
	fsck_run -n "$STORE"
	[ "$status" -eq 0 ]
}

@test "a truncated manifest.db: exit 8, a clear message, nothing touched" {
	make_store
	truncate -s 100 "$STORE/manifest.db"
	objects=$(cd "$STORE" && find objects lost+found tmp -type f -exec sha256sum {} + | sort)
	for mode in -n -p -y; do
		fsck_run "$mode" --verify "$STORE"
		[ "$status" -eq 8 ]
		[[ "$output" == *"manifest"*"nothing was changed"* ]]
	done
	[ "$(stat -c %s "$STORE/manifest.db")" = 100 ]
	[ "$objects" = "$(cd "$STORE" && find objects lost+found tmp -type f -exec sha256sum {} + | sort)" ]
	"$FEATUREFS" fsck --json "$STORE" >"$TEST_DIR/out" 2>/dev/null || [ $? -eq 8 ]
	python3 -c "
import json, sys
d = json.load(open(sys.argv[1]))
assert d['exit_status'] == 8 and 'manifest' in d['error'], d" "$TEST_DIR/out"
}

@test "repairs are refused while mounted (naming the pid); -n works on a live mount" {
	make_parquet "$DATA/a.parquet" 5000
	mount_store
	publish_file AAPL "$K1" "$DATA/a.parquet"
	for mode in -p -y; do
		fsck_run "$mode" "$STORE"
		[ "$status" -eq 8 ]
		[[ "$output" == *"mounted by pid $DAEMON_PID"* ]]
	done
	fsck_run -n --verify "$STORE"
	[ "$status" -eq 0 ]
	[[ "$output" == *": clean"* ]]
	# the live mount's writer and tmp file are in flight, not stale
	exec 5>"$MNT/AAPL/$K2.parquet"
	head -c 100 "$DATA/a.parquet" >&5
	[ -n "$(ls -A "$STORE/tmp")" ]
	fsck_run -n "$STORE"
	[ "$status" -eq 0 ]
	[[ "$output" == *"1 in flight: clean"* ]]
	tail -c +101 "$DATA/a.parquet" >&5
	exec 5>&-
	wait_published "$MNT/AAPL/$K2.parquet"
	fsck_run "$STORE"
	[ "$status" -eq 0 ]
	[[ "$output" == *"2 entries checked"* ]]
}

@test "--json output parses and carries findings and counts" {
	make_store
	rm "$STORE/objects/AAPL/$K2.parquet"
	echo notes >"$STORE/objects/AAPL/README"
	run "$FEATUREFS" fsck --json "$STORE"
	[ "$status" -eq 4 ]
	python3 -c '
import json, sys
d = json.load(sys.stdin)
assert d["mode"] == "check" and d["exit_status"] == 4 and d["error"] is None, d
kinds = sorted(f["kind"] for f in d["findings"])
assert kinds == ["object_missing", "stray"], kinds
m = [f for f in d["findings"] if f["kind"] == "object_missing"][0]
assert m["symbol"] == "AAPL" and m["key"] == sys.argv[1], m
assert m["path"] == "objects/AAPL/" + sys.argv[1] + ".parquet", m
assert m["action"] == "left; run fsck -p" and m["repair"] == "fsck -p", m
c = d["counts"]
assert (c["entries"], c["findings"], c["corrected"], c["uncorrected"]) == (2, 2, 0, 2), c
assert c["by_kind"] == {"object_missing": 1, "stray": 1}, c
' "$K2" <<<"$output"
	"$FEATUREFS" fsck -y --json "$STORE" >"$TEST_DIR/out" || [ $? -eq 1 ]
	python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
assert d["exit_status"] == 1 and d["counts"]["corrected"] == 2, d
assert all(f["corrected"] for f in d["findings"]), d' "$TEST_DIR/out"
	[ -f "$STORE/lost+found/AAPL.README" ]
}

@test "invalid orphans and stray names: -p leaves them, -y moves them to lost+found" {
	make_store
	head -c 5000 "$DATA/a.parquet" >"$STORE/objects/AAPL/$K3.parquet"
	echo junk >"$STORE/objects/AAPL/notes.txt"
	echo junk >"$STORE/objects/toplevel"
	mkdir "$STORE/objects/bad name"
	fsck_run -p "$STORE"
	[ "$status" -eq 4 ]
	[[ "$output" == *"fsck: AAPL/$K3: object without a manifest row, not valid Parquet"*"(left; run fsck -y)"* ]]
	[[ "$output" == *"fsck: objects/AAPL/notes.txt: not a <key>.parquet name (left; run fsck -y)"* ]]
	[ -f "$STORE/objects/AAPL/$K3.parquet" ]
	fsck_run -y "$STORE"
	[ "$status" -eq 1 ]
	[ "$(ls "$STORE/lost+found")" = "$(printf '%s\n' "AAPL.$K3.parquet" AAPL.notes.txt 'bad name' toplevel)" ]
	cmp <(head -c 5000 "$DATA/a.parquet") "$STORE/lost+found/AAPL.$K3.parquet"
	# a second quarantine of the same name does not replace the first
	echo again >"$STORE/objects/AAPL/notes.txt"
	fsck_run -y "$STORE"
	[ "$status" -eq 1 ]
	[ "$(cat "$STORE/lost+found/AAPL.notes.txt.1")" = again ]
	fsck_run -n "$STORE"
	[ "$status" -eq 0 ]
	# a name with a newline and an escape sequence is reported on one
	# line, escaped as the log escapes it
	echo junk >"$STORE/objects/AAPL/$(printf 'x\nfsck: forged\033[31m')"
	fsck_run -n "$STORE"
	[ "$status" -eq 4 ]
	[[ "$output" == *'fsck: objects/AAPL/x\nfsck: forged\x1b[31m: not a <key>.parquet name'* ]]
	[ "$(grep -c '^fsck: forged' <<<"$output")" = 0 ]
	[ "$(grep -c $'\x1b' <<<"$output")" = 0 ]
}

@test "symbol rows: missing ones are created, empty directories without one removed" {
	make_store
	sqlite3 "$STORE/manifest.db" "delete from symbols where symbol='AAPL'"
	mkdir "$STORE/objects/GONE"
	fsck_run -n "$STORE"
	[ "$status" -eq 4 ]
	[[ "$output" == *"fsck: objects/AAPL: published entries but no symbol row (left; run fsck -p)"* ]]
	[[ "$output" == *"fsck: objects/GONE: empty directory without a symbol row (left; run fsck -p)"* ]]
	fsck_run -p "$STORE"
	[ "$status" -eq 1 ]
	[ "$(manifest_sql "select symbol from symbols")" = AAPL ]
	# made again, the row counts the entries it finds
	[ "$(manifest_sql "select entries, stored_bytes from symbols")" = "2|$(manifest_sql "select sum(stored_size_bytes) from entries")" ]
	[ ! -e "$STORE/objects/GONE" ]
	fsck_run -n "$STORE"
	[ "$status" -eq 0 ]
	mount_store
	[ "$(ls "$MNT")" = AAPL ]
	[ "$(stats_get "['entries']")" = 2 ]
}

@test "a symbol's totals that are not what its rows add up to are found, and recounted by -p" {
	make_store
	local bytes
	bytes=$(manifest_sql "select sum(stored_size_bytes) from entries")
	# only the logical bytes off: both halves must still differ
	sqlite3 "$STORE/manifest.db" "update symbols set file_bytes = 7"
	fsck_run -n "$STORE"
	[ "$status" -eq 4 ]
	[[ "$output" == *"fsck: AAPL: its totals say 2 published (7 bytes, $bytes stored) and 0 in flight; its rows hold 2 ($bytes bytes, $bytes stored) and 0 (left; run fsck -p)"* ]]
	# what stats, the metrics and the GC quota read: 10 GiB for 2 entries
	sqlite3 "$STORE/manifest.db" "update symbols set entries = 100, file_bytes = $bytes, stored_bytes = 10737418240"
	fsck_run -n "$STORE"
	[ "$status" -eq 4 ]
	[[ "$output" == *"fsck: AAPL: its totals say 100 published ($bytes bytes, 10737418240 stored) and 0 in flight; its rows hold 2 ($bytes bytes, $bytes stored) and 0 (left; run fsck -p)"* ]]
	fsck_run -p --json "$STORE"
	[ "$status" -eq 1 ]
	python3 -c "import json,sys; d=json.loads(sys.argv[1]); assert d['counts']['by_kind'] == {'usage_mismatch': 1}, d" "$output"
	[ "$(manifest_sql "select entries, stored_bytes from symbols")" = "2|$bytes" ]
	fsck_run -n "$STORE"
	[ "$status" -eq 0 ]
}

@test "stale tmp files of an unmounted store are removed by -p" {
	make_store
	echo partial >"$STORE/tmp/0123456789abcdef.7.entry"
	echo scratch >"$STORE/tmp/0123456789abcdef.8.scratch"
	# a directory: featurefs makes none there; it is set aside, whole
	mkdir "$STORE/tmp/0123456789abcdef.9.entry"
	echo keep >"$STORE/tmp/0123456789abcdef.9.entry/x"
	fsck_run -n "$STORE"
	[ "$status" -eq 4 ]
	fsck_run -p "$STORE"
	[ "$status" -eq 1 ]
	[[ "$output" == *"fsck: tmp/0123456789abcdef.7.entry: tmp file of a writer that is gone (removed)"* ]]
	[[ "$output" == *"fsck: tmp/0123456789abcdef.9.entry: tmp file of a writer that is gone (removed)"* ]]
	[ -z "$(ls -A "$STORE/tmp")" ]
	[ "$(cat "$STORE/lost+found/tmp.0123456789abcdef.9.entry/x")" = keep ]
	fsck_run -n "$STORE"
	[ "$status" -eq 0 ]
}

@test "a stale tmp file -p cannot remove: the reason the system gives, said once" {
	make_store
	t=0123456789abcdef.7.entry
	echo partial >"$STORE/tmp/$t"
	chattr +i "$STORE/tmp/$t" 2>/dev/null || skip "no immutable files here"
	fsck_run -p "$STORE"
	chattr -i "$STORE/tmp/$t"
	[ "$status" -eq 4 ]
	[[ "$output" == *"fsck: tmp/$t: tmp file of a writer that is gone (left: repair failed: Operation not permitted)"* ]]
	[ "$(grep -c "tmp/$t: a file of a writer that is gone; cannot remove it: Operation not permitted" <<<"$output")" = 1 ]
	fsck_run -p "$STORE"
	[ "$status" -eq 1 ]
	[ -z "$(ls -A "$STORE/tmp")" ]
}

@test "usage errors exit 16; a missing store exits 8" {
	fsck_run -n -p "$STORE"
	[ "$status" -eq 16 ]
	[[ "$output" == *"only one of -n, -p and -y"* ]]
	fsck_run --bogus "$STORE"
	[ "$status" -eq 16 ]
	fsck_run
	[ "$status" -eq 16 ]
	fsck_run -n "$TEST_DIR/nowhere"
	[ "$status" -eq 8 ]
	[[ "$output" == *"not a featurefs store"* ]]
}

@test "fsck.featurefs maps fsck(8)'s options; fsck -t featurefs runs it" {
	make_store
	rm "$STORE/objects/AAPL/$K2.parquet"
	run sh "$HELPER" -n "$STORE"
	[ "$status" -eq 4 ]
	run sh "$HELPER" -n -y "$STORE"
	[ "$status" -eq 16 ]
	run sh "$HELPER" -Z "$STORE"
	[ "$status" -eq 16 ]
	# -a is fsck(8)'s automatic repair: preen
	run sh "$HELPER" -C0 -a "$STORE"
	[ "$status" -eq 1 ]
	[[ "$output" == *"(row dropped)"* ]]
	run sh "$HELPER" -fn "$STORE"
	[ "$status" -eq 0 ]
	# no featurefs to run: an operational error, not the shell's 127
	FEATUREFS=/nonexistent/featurefs run sh "$HELPER" -n "$STORE"
	[ "$status" -eq 8 ]
	[[ "$output" == *"cannot run /nonexistent/featurefs"* ]]
	command -v fsck >/dev/null || skip "no fsck(8)"
	mkdir "$TEST_DIR/bin"
	cp "$HELPER" "$TEST_DIR/bin/fsck.featurefs"
	chmod +x "$TEST_DIR/bin/fsck.featurefs"
	rm "$STORE/objects/AAPL/$K1.parquet"
	PATH="$TEST_DIR/bin:$PATH" run fsck -t featurefs -n "$STORE"
	[ "$status" -eq 4 ]
	PATH="$TEST_DIR/bin:$PATH" run fsck -t featurefs -a "$STORE"
	[ "$status" -eq 1 ]
	PATH="$TEST_DIR/bin:$PATH" run fsck -t featurefs -n "$STORE"
	[ "$status" -eq 0 ]
}
