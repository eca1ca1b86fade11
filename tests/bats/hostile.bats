#!/usr/bin/env bats
# hostile.bats - hostile input through a real mount (issue 12): malformed
# Parquet footers that a careless parser would crash on or allocate for
# (close fails with EIO, the daemon lives, its peak memory stays small),
# names that SPEC §2 refuses (traversal, odd bytes, length limits,
# Unicode look-alikes), and manifest rows no mount would write (malformed
# names, times out of range).  badinput.bats has the everyday cases; these are
# the adversarial ones.  The same parsers are fuzzed in tests/fuzz/.

load helpers

setup() {
	setup_store
	mount_store
	mkdir "$MNT/AAPL"
}

teardown() {
	teardown_store
}

# vmhwm_kib: the daemon's peak resident set so far.
vmhwm_kib() {
	awk '/^VmHWM:/ { print $2 }' "/proc/$DAEMON_PID/status"
}

# hostile NAME: write the malformed file $DATA/NAME.parquet as an entry;
# prints the outcome as write_entry does ("close EIO" expected).
hostile() {
	write_entry "$MNT/AAPL/$(key_of "$1").parquet" "$DATA/$1.parquet"
}

# make_footers: the malformed files, each "PAR1" + body + footer + length
# + "PAR1", written by one python run into $DATA.
make_footers() {
	python3 - "$DATA" <<'PY'
import os, struct, sys
out = sys.argv[1]

def wrap(footer, declared=None, body=b"\0" * 16):
    n = len(footer) if declared is None else declared
    return b"PAR1" + body + footer + struct.pack("<I", n) + b"PAR1"

def varint(v):
    b = bytearray()
    while True:
        if v < 0x80:
            b.append(v)
            return bytes(b)
        b.append((v & 0x7f) | 0x80)
        v >>= 7

def zz(v):
    return varint((v << 1) ^ (v >> 63))

# a minimal valid FileMetaData: version, schema [root(1 child), leaf],
# num_rows, row_groups []
def meta(num_rows=0, children=1, extra=b""):
    schema = (b"\x19\x2c"                       # field 2: list of 2 structs
              + b"\x48" + b"\x04root" + b"\x15" + zz(children) + b"\x00"   # name(4), num_children(5)
              + b"\x15" + zz(2) + b"\x38" + b"\x01x" + b"\x00")            # type(1)=INT64, name(4)
    return (b"\x15" + zz(1) + schema + b"\x16" + zz(num_rows)
            + b"\x19\x0c" + extra + b"\x00")

cases = {
    # the control: the smallest FileMetaData this validator accepts
    "ok-minimal": wrap(meta()),
    # declared lengths that do not fit
    "len-ffffffff": wrap(b"\x00" * 8, declared=0xFFFFFFFF),
    "len-7fffffff": wrap(b"\x00" * 8, declared=0x7FFFFFFF),
    "len-zero": wrap(b"", declared=0),
    "len-plus-one": wrap(meta(), declared=len(meta()) + 1 + 16 + 4),
    # deeply nested structs, lists and maps
    "nest-struct": wrap(b"\x1c" * 100000),
    "nest-list": wrap(b"\x19" + b"\x19" * 100000),
    "nest-map": wrap(b"\x1b" + b"\x01\xbb" * 50000),
    # negative or huge sizes
    "neg-rows": wrap(meta(num_rows=-5)),
    "neg-children": wrap(meta(children=-3)),
    "neg-binary": wrap(b"\x18" + varint(0xFFFFFFFFFFFFFFF0) + b"x"),
    "huge-binary": wrap(b"\x18" + varint(0x7FFFFFF0) + b"x"),
    "huge-list": wrap(b"\x19\xfc" + varint(1 << 62)),
    "huge-map": wrap(b"\x1b" + varint(1 << 40) + b"\xcc"),
    "huge-field-delta": wrap(b"\x15\x02" + b"\xf5\x02" * 5000),
    # truncated and overlong varints
    "varint-cut": wrap(b"\x15" + b"\x80\x80\x80"),
    "varint-long": wrap(b"\x16" + b"\xff" * 11 + b"\x01"),
    "varint-i32": wrap(b"\x15" + varint(1 << 40)),
    # not Parquet at all, or barely
    "only-magic": b"PAR1" + struct.pack("<I", 0) + b"PAR1",
    "encrypted": b"PARE" + b"\0" * 32 + struct.pack("<I", 16) + b"PARE",
    "bad-types": wrap(b"\x1e\x1f\x0e\x0f" * 100),
    "stop-only": wrap(b"\x00"),
}
for name, data in cases.items():
    with open(os.path.join(out, name + ".parquet"), "wb") as f:
        f.write(data)
# footers declared large, padded by a hole: over the 64 MiB limit, and
# 4 MiB of garbage under it
big = b"\x1c" * 64
for name, flen in (("len-over-limit", (64 << 20) + 1), ("len-4m", 4 << 20)):
    tail = big + struct.pack("<I", flen) + b"PAR1"
    with open(os.path.join(out, name + ".parquet"), "wb") as f:
        f.write(b"PAR1" + tail)
    with open(os.path.join(out, name + ".hole"), "w") as f:
        f.write(str(flen + 12 - len(tail)))
PY
}

@test "malformed Parquet footers: EIO at close, nothing kept, the daemon lives, memory stays small" {
	make_footers
	make_parquet "$DATA/good.parquet" 2000
	# warm up, so the baseline holds what any publish costs
	cp "$DATA/good.parquet" "$MNT/AAPL/$(key_of warm).parquet"
	wait_published "$MNT/AAPL/$(key_of warm).parquet"
	before=$(vmhwm_kib)
	n=0
	for f in "$DATA"/*.parquet; do
		name=$(basename "$f" .parquet)
		[ "$name" != good ] || continue
		hole=0
		[ ! -f "$DATA/$name.hole" ] || hole=$(cat "$DATA/$name.hole")
		out=$(HOLE=$hole hostile "$name")
		echo "$name: $out" >&2
		kill -0 "$DAEMON_PID"
		if [ "$name" = ok-minimal ]; then
			[ "$out" = ok ]
			continue
		fi
		[ "$out" = "close EIO" ]
		n=$((n + 1))
	done
	[ "$n" -ge 20 ]
	after=$(vmhwm_kib)
	echo "VmHWM ${before} KiB -> ${after} KiB" >&2
	# the 4 MiB footer is read into memory once; nothing else is
	# allocated for what a footer declares
	[ $((after - before)) -lt $((16 * 1024)) ]
	# nothing of them is left anywhere
	for ((i = 0; i < READY_TIMEOUT * 10; i++)); do
		[ -z "$(ls -A "$STORE/tmp")" ] && [ "$(ls "$MNT/AAPL" | wc -l)" = 2 ] && break
		sleep 0.1
	done
	want=$(printf '%s\n' "$(key_of warm).parquet" "$(key_of ok-minimal).parquet" | sort)
	[ -z "$(ls -A "$STORE/tmp")" ]
	[ "$(ls "$MNT/AAPL" | sort)" = "$want" ]
	[ "$(manifest_sql "select count(*) from entries")" = 2 ]
	[ "$(ls "$STORE/objects/AAPL" | sort)" = "$want" ]
	# every refusal was counted under a reason and logged once
	python3 - "$MNT/.featurefs/stats.json" "$n" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
lf = d["load_failures"]
assert sum(lf.values()) == int(sys.argv[2]), lf
assert lf["bad_footer"] >= 15 and lf["encrypted"] == 1, lf
PY
	[ "$(grep -c '^featurefs: discard AAPL/' "$TEST_DIR/daemon.log")" = "$n" ]
	log_has "nesting deeper than"
	log_has "truncated varint"
	log_has "exceeds the limit of"
	log_has "negative num_rows"
	# and the mount still takes good data
	cp "$DATA/good.parquet" "$MNT/AAPL/$(key_of after).parquet"
	wait_published "$MNT/AAPL/$(key_of after).parquet"
	cmp "$DATA/good.parquet" "$MNT/AAPL/$(key_of after).parquet"
}

@test "the fuzz seed corpus through the mount: valid files publish, the rest is EIO" {
	corpus=${FEATUREFS_SOURCE:-$BATS_TEST_DIRNAME/../..}/tests/fuzz/corpus/parquet
	[ -d "$corpus" ] || skip "no fuzz corpus"
	for f in "$corpus"/*; do
		name=$(basename "$f")
		cp "$f" "$DATA/$name.parquet"
		out=$(hostile "$name")
		echo "$name: $out" >&2
		case $name in
		file-enc.parquet) [ "$out" = "close EIO" ] ;;	# encrypted
		file-*) [ "$out" = ok ] ;;
		*) [ "$out" = "close EIO" ] ;;	# bare footers, no magic
		esac
	done
	kill -0 "$DAEMON_PID"
	log_has "encrypted footer"
	for f in "$corpus"/file-*; do
		[ "$(basename "$f")" != file-enc.parquet ] || continue
		name=$(basename "$f")
		wait_published "$MNT/AAPL/$(key_of "$name").parquet"
		cmp "$f" "$MNT/AAPL/$(key_of "$name").parquet"
	done
}

# ---- names ----------------------------------------------------------

# errno_of 'python expression': OK or the errno name; paths are bytes
# relative to the mount, so any byte can be tried.
errno_of() {
	(cd "$MNT" && python3 - "$1" <<'PY'
import errno, os, sys
try:
    exec(sys.argv[1])
    print("OK")
except OSError as e:
    print(errno.errorcode.get(e.errno, str(e.errno)))
PY
	)
}

create() {
	errno_of "os.close(os.open($1, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))"
}

@test "name lengths at the limits: 8/128-byte keys, 64-byte symbols, 255 and 256 bytes" {
	k8=$(printf 'a%.0s' $(seq 8))
	k128=$(printf 'b%.0s' $(seq 128))
	[ "$(errno_of "os.mkdir(b'$(printf 'S%.0s' $(seq 64))')")" = OK ]
	[ "$(errno_of "os.mkdir(b'$(printf 'T%.0s' $(seq 65))')")" = ENAMETOOLONG ]
	[ "$(errno_of "os.mkdir(b'$(printf 'T%.0s' $(seq 255))')")" = ENAMETOOLONG ]
	[ "$(errno_of "os.mkdir(b'$(printf 'T%.0s' $(seq 256))')")" = ENAMETOOLONG ]
	[ "$(errno_of "os.mkdir(b'T' * 4096)")" = ENAMETOOLONG ]
	# keys: 8..128 of [A-Za-z0-9_-]
	make_parquet "$DATA/good.parquet" 1000
	[ "$(create "b'AAPL/${k8:1}.parquet'")" = EINVAL ]
	cp "$DATA/good.parquet" "$MNT/AAPL/$k8.parquet"
	cp "$DATA/good.parquet" "$MNT/AAPL/$k128.parquet"
	[ "$(create "b'AAPL/${k128}c.parquet'")" = ENAMETOOLONG ]
	# 255 bytes: the longest name the kernel passes on
	[ "$(create "b'AAPL/' + b'k' * 247 + b'.parquet'")" = ENAMETOOLONG ]
	[ "$(create "b'AAPL/' + b'k' * 248 + b'.parquet'")" = ENAMETOOLONG ]
	# a 255-byte scratch name is a scratch name
	[ "$(create "b'AAPL/.' + b's' * 254")" = OK ]
	[ "$(stat -f -c %l "$MNT")" = 255 ]
	wait_published "$MNT/AAPL/$k8.parquet"
	wait_published "$MNT/AAPL/$k128.parquet"
	[ "$(manifest_sql "select count(*) from entries")" = 2 ]
	[ "$(ls "$MNT/AAPL" | sort)" = "$(printf '%s\n' "$k128.parquet" "$k8.parquet" | sort)" ]
	[ "$(ls -A "$MNT/AAPL" | grep -c '^\.s')" = 1 ]
	[ "$(ls "$MNT" | grep -c '^S')" = 1 ]
}

@test "scratch names longer than 255 bytes are ENAMETOOLONG, as statfs promises" {
	# the kernel passes FUSE names up to 1024 bytes: the daemon must refuse
	[ "$(stat -f -c %l "$MNT")" = 255 ]
	[ "$(create "b'AAPL/.' + b's' * 255")" = ENAMETOOLONG ]
	[ "$(create "b'AAPL/.' + b's' * 1000")" = ENAMETOOLONG ]
	[ "$(errno_of "os.mkdir(b'AAPL/.' + b'd' * 300)")" = ENAMETOOLONG ] ||
		[ "$(errno_of "os.mkdir(b'AAPL/.' + b'd' * 300)")" = EPERM ]
	[ "$(ls -A "$MNT/AAPL")" = "" ]
	[ -z "$(ls -A "$STORE/tmp")" ]
}

@test "odd bytes in names: control characters, separators, invalid UTF-8 are EINVAL and create nothing" {
	k='0123456789abcdef'
	for bad in '\n' '\t' '\r' ' ' '\\' ':' '*' '?' '"' '\x27' '%' '\x01' '\x7f' '\x80' '\xff' '\xc0\xae' '~' '!' '$' ';' '|' '&' '<' '>' '@' '#' '+' ',' '.' '=' '^'; do
		[ "$(create "b'AAPL/$k$bad$k.parquet'")" = EINVAL ] || { echo "key with $bad" >&2; false; }
		# (a leading dot makes a scratch name, which is fine)
		[ "$bad" = . ] || [ "$(create "b'AAPL/$bad$k.parquet'")" = EINVAL ] || { echo "key starting with $bad" >&2; false; }
	done
	for bad in '\n' '\t' ' ' '\\' ':' '*' '?' '%' '\x01' '\x7f' '\xff' '\xc0\xae' '~' '!' '$' ';' '|' '&' '<' '>' '@' '#' '+' ','; do
		[ "$(errno_of "os.mkdir(b'AA${bad}PL')")" = EINVAL ] || { echo "symbol with $bad" >&2; false; }
	done
	# a symbol may not start with a dot, "..." included
	[ "$(errno_of "os.mkdir(b'...')")" = EINVAL ]
	[ "$(errno_of "os.mkdir(b'.AAPL')")" = EINVAL ]
	# the suffix is exact
	for suffix in '.parquet ' '.parquet\n' '.parque' '.Parquet' '.parquet.' '..parquet' '' '.zst' '.zst.parquet' '.parquet/'; do
		out=$(create "b'AAPL/$k$suffix'")
		[ "$out" = EINVAL ] || [ "$out" = EISDIR ] || { echo "suffix $suffix: $out" >&2; false; }
	done
	[ "$(manifest_sql "select count(*) from entries")" = 0 ]
	[ "$(manifest_sql "select count(*) from symbols")" = 1 ]
	[ "$(ls -A "$MNT/AAPL")" = "" ]
	[ -z "$(ls -A "$STORE/tmp")" ]
	# the log quotes such names escaped: no forged line, no terminal
	# escape sequence
	[ "$(errno_of "os.mkdir(b'X\\nfeaturefs: forged\\x1b[31m\\\\')")" = EINVAL ]
	log_has 'mkdir X\\nfeaturefs: forged\\x1b\[31m\\\\: malformed symbol name'
	[ "$(grep -c '^featurefs: forged' "$TEST_DIR/daemon.log")" = 0 ]
	[ "$(grep -c $'\x1b' "$TEST_DIR/daemon.log")" = 0 ]
}

@test "Unicode look-alikes of keys, symbols and the suffix are refused" {
	k='0123456789abcdef'
	for bad in \
		'\uff10123456789abcdef' \
		'0123456789abcde\u0066\u0301' \
		'01234567\u200b89abcdef' \
		'0123456789abcdef\u202e' \
		'\u0430\u0430\u0430\u0430\u0430\u0430\u0430\u0430' \
		'0123456789\uff41bcdef' \
		'\u2010123456789abcdef'; do
		[ "$(create "('AAPL/$bad.parquet').encode()")" = EINVAL ] || { echo "key $bad" >&2; false; }
	done
	for suffix in '.parqu\u0435t' '\u2024parquet' '\uff0eparquet' '.\u0440arquet' '.parquet\u200b'; do
		[ "$(create "('AAPL/$k$suffix').encode()")" = EINVAL ] || { echo "suffix $suffix" >&2; false; }
	done
	for sym in '\u0410APL' 'AAP\u04c0' '\uff21\uff21\uff30\uff2c' 'AAPL\u2215B' 'AAPL\u00a0' 'A\u0301'; do
		[ "$(errno_of "os.mkdir(('$sym').encode())")" = EINVAL ] || { echo "symbol $sym" >&2; false; }
	done
	# NFC and NFD spellings are different bytes, and both are refused
	[ "$(errno_of "os.mkdir('Caf\u00e9'.encode())")" = EINVAL ]
	[ "$(errno_of "os.mkdir('Cafe\u0301'.encode())")" = EINVAL ]
	[ "$(manifest_sql "select count(*) from entries")" = 0 ]
	[ "$(ls "$MNT")" = AAPL ]
	[ "$(ls -A "$MNT/AAPL")" = "" ]
	# lookups of all that are plain misses of nothing: no miss counted
	[ "$(errno_of "os.stat('AAPL/\u0430\u0430\u0430\u0430\u0430\u0430\u0430\u0430.parquet'.encode())")" = ENOENT ]
	[ "$(stats_get "['misses']")" = 0 ]
}

@test "traversal and escapes: dot-dot, links, devices, renames out of place" {
	make_parquet "$DATA/good.parquet" 1000
	k=$(key_of good)
	cp "$DATA/good.parquet" "$MNT/AAPL/$k.parquet"
	wait_published "$MNT/AAPL/$k.parquet"
	# the kernel resolves "..": these land at the root, where files are EPERM
	[ "$(create "b'AAPL/../$k.parquet'")" = EPERM ]
	# no way to point outside the store, or to alias an entry
	[ "$(errno_of "os.symlink('/etc/passwd', b'AAPL/$(key_of link).parquet')")" = EPERM ]
	[ "$(errno_of "os.symlink('/etc/passwd', b'AAPL/.link')")" = EPERM ]
	[ "$(errno_of "os.link(b'AAPL/$k.parquet', b'AAPL/$(key_of hard).parquet')")" = EPERM ]
	[ "$(errno_of "os.mkfifo(b'AAPL/.fifo')")" = EPERM ]
	[ "$(errno_of "os.mknod(b'AAPL/.dev', 0o600 | 0o020000, os.makedev(1, 3))")" = EPERM ]
	# renames: an entry or a symbol moves only by a copy (EXDEV, so mv
	# copies); nothing moves into /.featurefs, to the root or out of place
	mkdir "$MNT/MSFT"
	[ "$(errno_of "os.rename(b'AAPL/$k.parquet', b'MSFT/$k.parquet')")" = EXDEV ]
	[ "$(errno_of "os.rename(b'AAPL/$k.parquet', b'MSFT/x.csv')")" = EXDEV ]
	[ "$(errno_of "os.rename(b'AAPL/$k.parquet', b'$k.parquet')")" = EPERM ]
	[ "$(errno_of "os.rename(b'AAPL', b'AAPL2')")" = EXDEV ]
	# to a name no symbol has: as mkdir of it says
	[ "$(errno_of "os.rename(b'AAPL', b'.AAPL')")" = EINVAL ]
	[ "$(errno_of "os.rename(b'AAPL', b'A B')")" = EINVAL ]
	[ "$(errno_of "os.rename(b'AAPL', b'$(printf 'A%.0s' {1..65})')")" = ENAMETOOLONG ]
	[ "$(errno_of "os.rename(b'AAPL', b'MSFT/AAPL')")" = EPERM ]
	[ "$(errno_of "os.rename(b'AAPL/$k.parquet', b'.featurefs/stats')")" = EPERM ]
	make_parquet "$DATA/other.parquet" 1000 2
	cp "$DATA/other.parquet" "$MNT/AAPL/.upload"
	[ "$(errno_of "os.rename(b'AAPL/.upload', b'$k.parquet')")" = EPERM ]
	[ "$(errno_of "os.rename(b'AAPL/.upload', b'.featurefs/x')")" = EPERM ]
	[ "$(errno_of "os.rename(b'AAPL/.upload', b'AAPL/$k.parquet')")" = EEXIST ]
	[ "$(errno_of "os.rename(b'AAPL/.upload', b'AAPL/x.csv')")" = EINVAL ]
	[ "$(errno_of "os.rename(b'AAPL/.upload', b'AAPL/../escape.parquet')")" = EPERM ]
	# renameat2's RENAME_EXCHANGE would swap an entry's content
	[ "$(errno_of "import ctypes
libc = ctypes.CDLL(None, use_errno=True)
AT_FDCWD, RENAME_EXCHANGE = -100, 2
if libc.renameat2(AT_FDCWD, b'AAPL/.upload', AT_FDCWD, b'AAPL/$k.parquet', RENAME_EXCHANGE) < 0:
    raise OSError(ctypes.get_errno(), 'renameat2')")" = EINVAL ]
	log_has "rename .upload to $k.parquet: RENAME_EXCHANGE is not supported"
	# what was refused changed nothing
	cmp "$DATA/good.parquet" "$MNT/AAPL/$k.parquet"
	cmp "$DATA/other.parquet" "$MNT/AAPL/.upload"
	[ "$(manifest_sql "select count(*) from entries")" = 1 ]
	[ "$(ls "$STORE/objects")" = AAPL ]
	[ "$(ls "$STORE/objects/AAPL")" = "$k.parquet" ]
	[ "$(find "$STORE" -type l | wc -l)" = 0 ]
	log_has "rename AAPL/.upload to AAPL/$k.parquet: the key is being written, or published with other bytes, and entries are immutable (EEXIST"
	# an entry renamed onto another is EEXIST too, not a move by copy:
	# mv says "File exists" rather than replace an immutable entry
	k2=$(key_of other)
	cp "$DATA/good.parquet" "$MNT/AAPL/$k2.parquet"
	[ "$(errno_of "os.rename(b'AAPL/$k2.parquet', b'AAPL/$k.parquet')")" = EEXIST ]
	log_has "rename AAPL/$k2.parquet to AAPL/$k.parquet: the entry exists, and entries are immutable (EEXIST"
	run mv "$MNT/AAPL/$k2.parquet" "$MNT/AAPL/$k.parquet"
	[ "$status" -ne 0 ]
	[[ "$output" == *"File exists"* ]]
	cmp "$DATA/good.parquet" "$MNT/AAPL/$k2.parquet"
	[ "$(manifest_sql "select count(*) from entries")" = 2 ]
}

@test "xattr names: unknown, over-long and oddly spelled names are ENODATA; none can be set" {
	make_parquet "$DATA/good.parquet" 1000
	k=$(key_of good)
	cp "$DATA/good.parquet" "$MNT/AAPL/$k.parquet"
	wait_published "$MNT/AAPL/$k.parquet"
	f="AAPL/$k.parquet"
	for name in user.featurefs.nope user.featurefs. user.featurefs.sha256x user.featurefs.SHA256 \
		user.featurefs.sha256/../rows user.featurefs..sha256 security.selinux trusted.x; do
		out=$(errno_of "os.getxattr(b'$f', '$name')")
		[ "$out" = ENODATA ] || [ "$out" = ENOTSUP ] || { echo "$name: $out" >&2; false; }
	done
	[ "$(errno_of "os.getxattr(b'$f', 'user.featurefs.' + 'x' * 240)")" = ENODATA ]
	[ "$(errno_of "os.getxattr(b'$f', 'user.' + 'x' * 300)")" = ERANGE ]
	[ "$(errno_of "os.setxattr(b'$f', 'user.featurefs.sha256', b'0' * 64)")" = EPERM ]
	[ "$(errno_of "os.setxattr(b'$f', 'user.featurefs.new', b'x')")" = EPERM ]
	[ "$(errno_of "os.removexattr(b'$f', 'user.featurefs.rows')")" = EPERM ]
	[ "$(errno_of "os.setxattr(b'$f', 'user.other', b'x')")" = ENOTSUP ]
	[ "$(getfattr --only-values -n user.featurefs.sha256 "$MNT/$f")" = "$(sha256sum <"$DATA/good.parquet" | cut -c1-64)" ]
}

@test "manifest rows with malformed names: left out of listings, out of GC's reach, reported by fsck" {
	k128=$(printf 'b%.0s' $(seq 128))
	make_parquet "$DATA/good.parquet" 1000
	cp "$DATA/good.parquet" "$MNT/AAPL/$k128.parquet"
	wait_published "$MNT/AAPL/$k128.parquet"
	unmount_store
	# an edited or imported manifest: names with '/', '..', capitals,
	# a NUL, and a key that cut to 128 bytes would be the real entry's
	sqlite3 "$STORE/manifest.db" "
		insert into symbols (symbol, created_ts)
		values ('x/y', 1), ('..', 1), ('$(printf 'S%.0s' $(seq 70))', 1);
		insert into entries (symbol, key, path, state, created_ts,
			file_size_bytes, stored_size_bytes)
		values ('AAPL', 'a/bcdefghi', 'objects/x', 'published', 1, 9, 9),
		       ('AAPL', '..', 'objects/y', 'published', 1, 9, 9),
		       ('AAPL', 'abc' || char(27) || '[2J' || char(9) || 'x',
			'objects/v', 'published', 1, 9, 9),
		       ('AAPL', 'abcdefgh' || char(0) || 'ij', 'objects/z',
			'published', 1, 9, 9),
		       ('AAPL', '${k128}ccc', 'objects/w', 'published', 1, 9, 9),
		       ('AAPL', 'cccccccc', 'objects/AAPL/$k128.parquet',
			'published', 1, 9, 9);
		update entries set sha256 = char(27) || '[31m' || char(10) || 'x'
			where key = '..';"
	mount_store
	# a name with '/' would fail the whole readdir with EIO
	[ "$(ls -a "$MNT")" = "$(printf '%s\n' . .. AAPL)" ]
	[ "$(ls -a "$MNT/AAPL")" = "$(printf '%s\n' . .. "$k128.parquet" cccccccc.parquet)" ]
	grep -q 'listing AAPL: 5 manifest rows with malformed names left out' "$TEST_DIR/daemon.log"
	unmount_store
	# printed names are escaped, as in the log
	run "$FEATUREFS" ls "$STORE"
	[[ "$output" == *'abc\x1b[2J\tx'$'\t''published'* ]]
	[[ "$output" == *'abcdefgh\x7f'$'\t''published'* ]]
	[[ "$output" == *$'\t''\x1b[31m\nx'* ]]
	run "$FEATUREFS" fsck -n "$STORE"
	echo "$output"
	[ "$status" = 4 ]
	[ "$(grep -c '^fsck: AAPL/.*: malformed row' <<<"$output")" = 6 ]
	[ "$(grep -c ': symbol row with' <<<"$output")" = 3 ]
	# GC takes the old rows it can reach, and no other: the cut key
	# must not take the real entry's row, nor a row's path its object
	mount_store
	"$FEATUREFS" gc --older-than 1h "$MNT" >/dev/null
	grep -q 'gc: 5 rows with malformed names left alone; fsck reports them' "$TEST_DIR/daemon.log"
	cmp "$DATA/good.parquet" "$MNT/AAPL/$k128.parquet"
	unmount_store
	[ "$(manifest_sql "select count(*) from entries where key = '$k128'")" = 1 ]
	[ "$(manifest_sql "select count(*) from entries where key = 'cccccccc'")" = 0 ]
	run "$FEATUREFS" fsck -y "$STORE"
	echo "$output"
	[ "$status" = 5 ] # 1 corrected | 4 left
	[ "$(grep -c 'too long or holding a NUL; delete it from the manifest by hand' <<<"$output")" = 3 ]
	[ "$(grep -c 'symbol row with a malformed name (row dropped)' <<<"$output")" = 2 ]
	# what fsck leaves is for the operator; then the store is clean
	sqlite3 "$STORE/manifest.db" "delete from entries where key <> '$k128';
		delete from symbols where length(symbol) > 64"
	run "$FEATUREFS" fsck -n "$STORE"
	[ "$status" = 0 ]
	mount_store
	cmp "$DATA/good.parquet" "$MNT/AAPL/$k128.parquet"
}

@test "row times beyond what nanoseconds hold are clamped, not overflowed" {
	make_parquet "$DATA/good.parquet" 1000
	k=$(key_of clamp)
	cp "$DATA/good.parquet" "$MNT/AAPL/$k.parquet"
	wait_published "$MNT/AAPL/$k.parquet"
	for t in 9223372036854775000:9223372035 -9223372036854775000:-9223372035; do
		unmount_store
		sqlite3 "$STORE/manifest.db" \
			"update entries set created_ts = ${t%:*}, mtime_ns = NULL, ctime_ns = NULL"
		mount_store
		[ "$(stat -c '%Y %Z' "$MNT/AAPL/$k.parquet")" = "${t#*:} ${t#*:}" ]
	done
	# a time before 1970 is a time, never an empty attribute
	unmount_store
	sqlite3 "$STORE/manifest.db" "update entries set created_ts = -1"
	mount_store
	[ "$(getfattr --only-values -n user.featurefs.created "$MNT/AAPL/$k.parquet")" = 1969-12-31T23:59:59.999999Z ]
}

@test "manifest sizes and counters near 2^63: fsck finishes, GC's bytes and the hit ratio stay in range" {
	make_parquet "$DATA/good.parquet" 1000
	k1=$(key_of small) k2=$(key_of huge)
	cp "$DATA/good.parquet" "$MNT/AAPL/$k1.parquet"
	wait_published "$MNT/AAPL/$k1.parquet"
	# two symbols, whose figures no sum() over them could add up
	publish_file MSFT "$k1" "$DATA/good.parquet"
	unmount_store
	cp "$DATA/good.parquet" "$STORE/objects/AAPL/$k2.parquet"
	sqlite3 "$STORE/manifest.db" "
		insert into entries select symbol, '$k2',
			'objects/AAPL/$k2.parquet', state, start_ts, end_ts, rows,
			9223372036854775807, 9223372036854775807, compression,
			hash_method, sha256, created_ts, last_accessed_ts,
			access_count, writer, mtime_ns, mode, ctime_ns, sealed_tmp
			from entries where key = '$k1';
		update symbols set hits = 9223372036854775807,
			misses = 9223372036854775807"
	# the sums overflow no statement: the run finishes and says why
	run "$FEATUREFS" stats "$STORE"
	echo "$output" >&2
	[ "$status" -eq 0 ]
	run "$FEATUREFS" fsck -n "$STORE"
	echo "$output" >&2
	[ "$status" = 4 ]
	[[ "$output" == *"AAPL/$k2: object has "*" bytes, the row says 9223372036854775807"* ]]
	mount_store
	ratio=$(awk '$1 == "featurefs_hit_ratio" {print $2}' "$MNT/.featurefs/metrics")
	python3 -c "import sys; assert 0 <= float(sys.argv[1]) <= 1" "$ratio"
	grep -q '^hit ratio      0\.500$' "$MNT/.featurefs/stats"
	run "$FEATUREFS" gc --max-size 1G --dry-run "$MNT"
	echo "$output" >&2
	[ "$status" -eq 0 ]
	[[ "$output" == *"stored bytes 9223372036854775807 -> 0"* ]]
	refute grep -qE -- '-[0-9]' <<<"$output"
	unmount_store
	refute grep -q 'runtime error' "$TEST_DIR/daemon.log"
}

@test "a row in a state no featurefs writes: EIO with a log line, reported by fsck, dropped by fsck -y" {
	make_parquet "$DATA/good.parquet" 1000
	k1=$(key_of real) k2=$(key_of bogus)
	cp "$DATA/good.parquet" "$MNT/AAPL/$k1.parquet"
	wait_published "$MNT/AAPL/$k1.parquet"
	unmount_store
	cp "$DATA/good.parquet" "$STORE/objects/AAPL/$k2.parquet"
	sqlite3 "$STORE/manifest.db" "PRAGMA ignore_check_constraints = 1;
		insert into entries select symbol, '$k2',
			'objects/AAPL/$k2.parquet', 'bogus', start_ts, end_ts,
			rows, file_size_bytes, stored_size_bytes, compression,
			hash_method, sha256, created_ts, last_accessed_ts,
			access_count, writer, mtime_ns, mode, ctime_ns, sealed_tmp
			from entries where key = '$k1'"
	mount_store
	# not a key in flight to wait for, nor one free to write
	[ "$(try_errno "os.stat('$MNT/AAPL/$k2.parquet')")" = EIO ]
	[ "$(try_errno "os.open('$MNT/AAPL/$k2.parquet', os.O_CREAT | os.O_EXCL | os.O_WRONLY)")" = EIO ]
	log_has "lookup AAPL/$k2.parquet: its row is in a state no featurefs writes"
	cmp "$DATA/good.parquet" "$MNT/AAPL/$k1.parquet"
	unmount_store
	run "$FEATUREFS" ls "$STORE"
	[[ "$output" == *"$k2"*unknown* ]]
	run "$FEATUREFS" fsck -n "$STORE"
	echo "$output" >&2
	[ "$status" = 4 ]
	[[ "$output" == *"AAPL/$k2: malformed row: a state no featurefs writes"* ]]
	run "$FEATUREFS" fsck -y "$STORE"
	echo "$output" >&2
	[[ "$output" == *"AAPL/$k2: malformed row: a state no featurefs writes"*"row dropped"* ]]
	# its object, valid and now without a row, is adopted
	[[ "$output" == *"AAPL/$k2: valid object without a manifest row (adopted)"* ]]
	run "$FEATUREFS" fsck -n "$STORE"
	[ "$status" = 0 ]
	mount_store
	cmp "$DATA/good.parquet" "$MNT/AAPL/$k2.parquet"
}

@test "a removed entry reopened through /proc/self/fd: ENOENT, logged; its descriptor reads on; a scratch file reopens" {
	make_parquet "$DATA/good.parquet" 1000
	k=$(key_of reopen)
	cp "$DATA/good.parquet" "$MNT/AAPL/$k.parquet"
	wait_published "$MNT/AAPL/$k.parquet"
	cp "$DATA/good.parquet" "$MNT/AAPL/.scratch"
	python3 - "$MNT/AAPL/$k.parquet" "$MNT/AAPL/.scratch" "$DATA/good.parquet" <<'PY'
import errno, os, sys
entry, scratch, data = sys.argv[1], sys.argv[2], open(sys.argv[3], "rb").read()
for path, reopens in ((entry, False), (scratch, True)):
    fd = os.open(path, os.O_RDONLY)
    os.unlink(path)
    try:
        again = os.open("/proc/self/fd/%d" % fd, os.O_RDONLY)
        assert reopens, path
        assert os.pread(again, len(data) + 1, 0) == data
        os.close(again)
    except OSError as e:
        assert not reopens and e.errno == errno.ENOENT, (path, e)
    assert os.pread(fd, len(data) + 1, 0) == data
    os.close(fd)
PY
	log_has "open AAPL/$k.parquet: removed since it was found (ENOENT"
}

# Between a lookup and the open of its object the entry may be removed
# and its key claimed again (elsewhere, or by a writer here): the open
# then meets no object, or another write's, under a row that is not the
# one the name was found by.  That is a removed name, not an I/O error.
@test "an open whose entry was removed and its key written again meanwhile: ENOENT, then the new entry; never EIO" {
	make_parquet "$DATA/good.parquet" 1000
	make_parquet "$DATA/other.parquet" 2000
	size=$(stat -c %s "$DATA/other.parquet")
	sha=$(sha256sum <"$DATA/other.parquet" | cut -c1-64)
	# (a passthrough backing file the kernel holds keeps the old bytes:
	# such an open succeeds, with them)
	for opts in passthrough=off compress=zstd; do
		unmount_store
		mount_store -o "$opts"
		k=$(key_of "race-$opts")
		cp "$DATA/good.parquet" "$MNT/AAPL/$k.parquet"
		wait_published "$MNT/AAPL/$k.parquet"
		stat "$MNT/AAPL/$k.parquet" >/dev/null # the kernel keeps the name
		# as a removal and a new write elsewhere leave it: no object and
		# the key claimed, then another object and its row
		rm "$STORE/objects/AAPL/$k.parquet"
		sqlite3 "$STORE/manifest.db" "update entries set state = 'writing',
			created_ts = created_ts + 1 where key = '$k'"
		# (a key claimed by a writer that is not alive here is absent)
		[ "$(try_errno "open('$MNT/AAPL/$k.parquet', 'rb')")" = ENOENT ]
		cp "$DATA/other.parquet" "$STORE/objects/AAPL/$k.parquet"
		sqlite3 "$STORE/manifest.db" "update entries set state = 'published',
			file_size_bytes = $size, stored_size_bytes = $size,
			compression = 'none', sha256 = '$sha' where key = '$k'"
		# the open above dropped the stale name (the kernel's copy
		# goes through the notifier): the next lookup finds this row
		for ((i = 0; i < 50; i++)); do
			cmp -s "$DATA/other.parquet" "$MNT/AAPL/$k.parquet" && break
			sleep 0.1
		done
		cmp "$DATA/other.parquet" "$MNT/AAPL/$k.parquet"
	done
	refute log_has "is missing"
	refute log_has "bytes where its row says"
	refute log_has "unreadable"
	# while the row is the one the name was found by, it is EIO
	k=$(key_of race-missing)
	cp "$DATA/good.parquet" "$MNT/AAPL/$k.parquet"
	wait_published "$MNT/AAPL/$k.parquet"
	rm "$STORE/objects/AAPL/$k.parquet"
	[ "$(try_errno "open('$MNT/AAPL/$k.parquet', 'rb')")" = EIO ]
	log_has "open AAPL/$k.parquet: its object .* is missing"
}

# The kernel may send the OPEN of a cached name after another process
# unlinked it; FUSE does not pass O_CREAT on, so the daemon cannot create
# there.  Such an open(O_CREAT|O_TRUNC) got EEXIST, thousands of times a
# second under this loop; now the kernel looks the name up again.
@test "open(O_CREAT|O_TRUNC) of a scratch name others unlink meanwhile never gets EEXIST" {
	python3 - "$MNT/AAPL/.scratch" <<'PY'
import errno, os, sys, time
p = sys.argv[1]
end = time.time() + 3
kids = []
for r in range(4):
    pid = os.fork()
    if pid == 0:
        eexist = 0
        while time.time() < end:
            try:
                fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
                os.write(fd, b"x")
                os.close(fd)
                if r % 2:
                    os.unlink(p)
            except OSError as e:
                eexist += e.errno == errno.EEXIST
        os._exit(1 if eexist else 0)
    kids.append(pid)
bad = sum(os.waitstatus_to_exitcode(os.waitpid(k, 0)[1]) for k in kids)
sys.exit(bad)
PY
}
