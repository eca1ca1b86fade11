#!/usr/bin/env bats
# security.bats - who may reach what (issue 12, docs/security.md): the
# default mount is private to the mounting user, default_permissions is
# honoured, the store is 0700 and nothing in it is group- or
# world-writable, virtual files and xattrs are read-only, no password is
# accepted or written anywhere, the control socket refuses other uids,
# and what a hostile store holds (links, FIFOs) is not followed.
#
# "Another user" is nobody/nogroup through setpriv(1); the tests skip when
# not run as root (only root can switch users).  They call the system's
# python, which nobody can run (a pyenv shim under /root cannot).

load helpers

PY=/usr/bin/python3

setup() {
	setup_store
	[ "$(id -u)" = 0 ] || skip "needs root to act as another user"
	command -v setpriv >/dev/null || skip "no setpriv"
	getent passwd nobody >/dev/null || skip "no user nobody"
	[ -x "$PY" ] || skip "no $PY"
	# the test directory must not be what stops nobody: the mount must
	chmod 0755 "$TEST_DIR" "$MNT"
	K=$(key_of secret)
	make_parquet "$DATA/a.parquet" 1000
	chmod 0644 "$DATA/a.parquet"
}

teardown() {
	teardown_store
}

# as_nobody 'python statement': run it as nobody:nogroup without
# supplementary groups; prints OK or the errno name.
as_nobody() {
	setpriv --reuid=nobody --regid=nogroup --clear-groups \
		"$PY" - "$1" 3>&- <<'PY'
import errno, os, sys
try:
    exec(sys.argv[1])
    print("OK")
except OSError as e:
    print(errno.errorcode.get(e.errno, str(e.errno)))
PY
}

# publish_one: one published entry AAPL/$K.
publish_one() {
	mkdir -p "$MNT/AAPL"
	cp "$DATA/a.parquet" "$MNT/AAPL/$K.parquet"
	wait_published "$MNT/AAPL/$K.parquet"
}

@test "the default mount is private: another uid cannot list, stat, read or write it" {
	mount_store
	publish_one
	[ "$(as_nobody "os.listdir('$TEST_DIR')")" = OK ]
	[ "$(as_nobody "os.stat('$MNT')")" = EACCES ]
	[ "$(as_nobody "os.listdir('$MNT')")" = EACCES ]
	[ "$(as_nobody "os.stat('$MNT/AAPL/$K.parquet')")" = EACCES ]
	[ "$(as_nobody "open('$MNT/AAPL/$K.parquet', 'rb').read()")" = EACCES ]
	[ "$(as_nobody "open('$MNT/.featurefs/stats').read()")" = EACCES ]
	[ "$(as_nobody "os.close(os.open('$MNT/AAPL/$(key_of other).parquet', os.O_WRONLY | os.O_CREAT | os.O_EXCL))")" = EACCES ]
	[ "$(as_nobody "os.mkdir('$MNT/MSFT')")" = EACCES ]
	[ "$(as_nobody "os.unlink('$MNT/AAPL/$K.parquet')")" = EACCES ]
	[ "$(as_nobody "os.getxattr('$MNT/AAPL/$K.parquet', 'user.featurefs.sha256')")" = EACCES ]
	# the mounting user is served, and nothing changed
	cmp "$DATA/a.parquet" "$MNT/AAPL/$K.parquet"
	[ "$(ls "$MNT")" = AAPL ]
	[ "$(manifest_sql "select count(*) from entries")" = 1 ]
	grep -q '^allow_other = no$' "$MNT/.featurefs/config"
	refute grep -q allow_other < <(grep " $MNT " /proc/self/mountinfo)
}

@test "allow_other with default_permissions: others read 0644 entries, may not change anything" {
	mount_store -o allow_other,default_permissions
	publish_one
	grep -q '^default_permissions = yes$' "$MNT/.featurefs/config"
	[ "$(as_nobody "os.listdir('$MNT/AAPL')")" = OK ]
	[ "$(as_nobody "assert open('$MNT/AAPL/$K.parquet', 'rb').read() == open('$DATA/a.parquet', 'rb').read()")" = OK ]
	[ "$(as_nobody "open('$MNT/.featurefs/stats').read()")" = OK ]
	# directories are 0755 and files belong to the mounting user: the
	# kernel refuses every change before it reaches the daemon
	[ "$(as_nobody "os.close(os.open('$MNT/AAPL/$(key_of other).parquet', os.O_WRONLY | os.O_CREAT | os.O_EXCL))")" = EACCES ]
	[ "$(as_nobody "os.close(os.open('$MNT/AAPL/.scratch', os.O_WRONLY | os.O_CREAT | os.O_EXCL))")" = EACCES ]
	[ "$(as_nobody "os.mkdir('$MNT/MSFT')")" = EACCES ]
	[ "$(as_nobody "os.rmdir('$MNT/AAPL')")" = EACCES ]
	[ "$(as_nobody "os.unlink('$MNT/AAPL/$K.parquet')")" = EACCES ]
	[ "$(as_nobody "os.utime('$MNT/AAPL/$K.parquet', (0, 0))")" = EPERM ]
	[ "$(as_nobody "os.chmod('$MNT/AAPL/$K.parquet', 0o666)")" = EPERM ]
	# a scratch file its owner made private stays private, and so does
	# an entry written under umask 077
	cp "$DATA/a.parquet" "$MNT/AAPL/.private"
	chmod 0600 "$MNT/AAPL/.private"
	[ "$(as_nobody "open('$MNT/AAPL/.private', 'rb').read()")" = EACCES ]
	(umask 077 && cp "$DATA/a.parquet" "$MNT/AAPL/$(key_of private).parquet")
	[ "$(stat -c %a "$MNT/AAPL/$(key_of private).parquet")" = 600 ]
	[ "$(as_nobody "open('$MNT/AAPL/$(key_of private).parquet', 'rb').read()")" = EACCES ]
	rm "$MNT/AAPL/$(key_of private).parquet"
	[ "$(manifest_sql "select count(*) from entries")" = 1 ]
	[ "$(ls "$MNT")" = AAPL ]
	cmp "$DATA/a.parquet" "$MNT/AAPL/$K.parquet"
}

@test "the store is 0700, and nothing in it is group- or world-writable, whatever the umask" {
	(umask 000 && mount_store) || false
	# mount_store ran in a subshell: find the daemon again
	DAEMON_PID=$(sed -n 's/^pid=//p' "$STORE/store.lock")
	publish_one
	exec 5>"$MNT/AAPL/$(key_of inflight).parquet"
	cp "$DATA/a.parquet" "$MNT/AAPL/.scratch"
	[ "$(stat -c %a "$STORE")" = 700 ]
	for d in objects objects/AAPL tmp lost+found; do
		[ "$(stat -c %a "$STORE/$d")" = 700 ] || { echo "$d: $(stat -c %a "$STORE/$d")" >&2; false; }
	done
	# tmp files, objects, store.conf, the lock and the socket: 0600
	find "$STORE/tmp" "$STORE/objects" "$STORE/store.conf" "$STORE/store.lock" \
		"$STORE/control.sock" ! -type d -printf '%m %p\n' >"$TEST_DIR/modes"
	cat "$TEST_DIR/modes" >&2
	[ "$(awk '$1 != 600' "$TEST_DIR/modes" | wc -l)" = 0 ]
	[ "$(wc -l <"$TEST_DIR/modes")" -ge 6 ]
	# SQLite's files: never writable by others
	[ -z "$(find "$STORE" -perm /022 -printf '%m %p\n')" ]
	exec 5>&-
	unmount_store
	[ -z "$(find "$STORE" -perm /022 -printf '%m %p\n')" ]
}

@test "set-id and sticky bits never reach an entry or an object" {
	mount_store
	mkdir "$MNT/AAPL"
	cp "$DATA/a.parquet" "$MNT/AAPL/.upload"
	chmod 6755 "$MNT/AAPL/.upload"
	[ "$(stat -c %a "$MNT/AAPL/.upload")" = 755 ]
	mv "$MNT/AAPL/.upload" "$MNT/AAPL/$K.parquet"
	[ "$(stat -c %a "$MNT/AAPL/$K.parquet")" = 755 ]
	[ -z "$(find "$STORE" -perm /7000 -printf '%m %p\n')" ]
	[ "$(manifest_sql "select mode & 3584 from entries where key = '$K'")" = 0 ]
}

@test "virtual files and xattrs are read-only" {
	mount_store
	publish_one
	for f in stats stats.json metrics health config; do
		[ -e "$MNT/.featurefs/$f" ] || continue
		p=$MNT/.featurefs/$f
		[ "$(try_errno "open('$p', 'w')")" = EACCES ]
		[ "$(try_errno "open('$p', 'a')")" = EACCES ]
		[ "$(try_errno "os.open('$p', os.O_RDONLY | os.O_TRUNC)")" = EACCES ]
		[ "$(try_errno "os.truncate('$p', 0)")" = EACCES ] || [ "$(try_errno "os.truncate('$p', 0)")" = EPERM ]
		[ "$(try_errno "os.chmod('$p', 0o666)")" = EPERM ]
		[ "$(try_errno "os.utime('$p', (0, 0))")" = EPERM ]
		out=$(try_errno "os.unlink('$p')")
		[ "$out" = EPERM ] || [ "$out" = EACCES ] || [ "$out" = EISDIR ] || { echo "unlink $f: $out" >&2; false; }
		[ "$(try_errno "os.rename('$p', '$MNT/AAPL/.stolen')")" = EPERM ]
		[ "$(try_errno "os.setxattr('$p', 'user.featurefs.sha256', b'x')")" = EPERM ]
		[ -n "$(head -c 1 "$p")" ] # still there (size 0, as in /proc)
	done
	[ "$(try_errno "open('$MNT/.featurefs/new', 'w')")" = EACCES ]
	out=$(try_errno "os.mkdir('$MNT/.featurefs/dir')")
	[ "$out" = EPERM ] || [ "$out" = EACCES ] || [ "$out" = EINVAL ]
	[ "$(try_errno "os.rmdir('$MNT/.featurefs')")" != OK ]
	[ -d "$MNT/.featurefs" ]
	f=$MNT/AAPL/$K.parquet
	for a in sha256 rows created last_accessed access_count compression stored_size state; do
		[ "$(try_errno "os.setxattr('$f', 'user.featurefs.$a', b'1')")" = EPERM ]
		[ "$(try_errno "os.removexattr('$f', 'user.featurefs.$a')")" = EPERM ]
	done
	[ "$(getfattr --only-values -n user.featurefs.sha256 "$f")" = "$(sha256sum <"$DATA/a.parquet" | cut -c1-64)" ]
	log_has "featurefs attributes are read-only"
}

# no_secret TEXT...: none of the places a secret could land holds it.
no_secret() {
	refute grep -rq -- "$1" "$TEST_DIR/daemon.log" "$TEST_DIR/out" 2>/dev/null
	if [ -d "$STORE" ]; then
		refute grep -rqa -- "$1" "$STORE"
	fi
}

@test "a manifest URI with a password is refused, and the password is written nowhere (existing store)" {
	"$FEATUREFS" init "$STORE" >/dev/null
	for uri in 'postgresql://app:hunter2pw@db.example/features' \
		'postgres://app:hunter2pw@db.example:5432/features?sslmode=require' \
		'postgresql://db.example/features?password=hunter2pw' \
		'host=db.example password=hunter2pw dbname=features' \
		'host=db.example password = hunter2pw dbname=features' \
		'postgresql://db.example/features?%70assword=hunter2pw' \
		'postgresql://app:hunter2pw%40x@db.example/features' \
		'service=features password=hunter2pw'; do
		run "$FEATUREFS" "$STORE" "$MNT" -f -o "manifest=$uri"
		echo "$uri: $status $output" >&2
		[ "$status" -ne 0 ]
		[[ "$output" == *"password"*"refused"* ]]
		[[ "$output" != *hunter2pw* ]]
		refute mountpoint -q "$MNT"
		run "$FEATUREFS" init --manifest "$uri" "$TEST_DIR/other"
		[ "$status" -ne 0 ]
		[[ "$output" != *hunter2pw* ]]
		[ ! -e "$TEST_DIR/other" ]
	done
	no_secret hunter2pw
	grep -q '^manifest = sqlite$' "$STORE/store.conf"
	# and a mount's effective options carry no secret either
	mount_store
	refute grep -qi 'password' "$MNT/.featurefs/config"
	grep -q '^manifest = sqlite$' "$MNT/.featurefs/config"
}

@test "a password put in store.conf by hand is refused by every command and echoed by none" {
	"$FEATUREFS" init "$STORE" >/dev/null
	sed -i 's|^manifest = .*|manifest = postgresql://app:hunter2pw@db.example/features|' "$STORE/store.conf"
	for cmd in ls stats fsck "gc --dry-run"; do
		run "$FEATUREFS" $cmd "$STORE"
		echo "$cmd: $status $output" >&2
		[ "$status" -ne 0 ]
		[[ "$output" == *"store.conf names a manifest with a password, which is refused"* ]]
		[[ "$output" != *hunter2pw* ]]
	done
	run "$FEATUREFS" "$STORE" "$MNT" -f
	[ "$status" -ne 0 ]
	[[ "$output" != *hunter2pw* ]]
	refute mountpoint -q "$MNT"
	run "$FEATUREFS" "$STORE" "$MNT" -f -o manifest=sqlite
	[ "$status" -ne 0 ]
	[[ "$output" == *"disagrees with store.conf"* ]]
	[[ "$output" != *hunter2pw* ]]
	# nor a stray line holding one
	echo 'postgresql://app:hunter2pw@db.example/features?password=x' >>"$STORE/store.conf"
	run "$FEATUREFS" ls "$STORE"
	[[ "$output" == *"an unknown key (not a word, not shown) ignored"* ]]
	[[ "$output" != *hunter2pw* ]]
	# nor is a connection string without one, which might spell it
	# in a way not recognised
	sed -i 's|^manifest = .*|manifest = host=db.example passwrd=hunter2pw|' "$STORE/store.conf"
	run "$FEATUREFS" ls "$STORE"
	[ "$status" -ne 0 ]
	[[ "$output" == *"no PostgreSQL backend"* ]]
	[[ "$output" != *hunter2pw* ]]
}

@test "a manifest URI with a password or of an unknown kind given to the mount of a new store creates nothing" {
	run "$FEATUREFS" "$STORE" "$MNT" -f -o 'manifest=postgresql://app:hunter2pw@db.example/features'
	[ "$status" -ne 0 ]
	[[ "$output" == *"password"*"refused"* ]]
	no_secret hunter2pw
	[ ! -e "$STORE" ]
	run "$FEATUREFS" "$STORE" "$MNT" -f -o 'manifest=postgresql://db.example/features'
	[ "$status" -ne 0 ]
	[ ! -e "$STORE" ]
}

@test "the control socket refuses other uids even when the store directory lets them in" {
	mount_store
	publish_one
	[ -S "$STORE/control.sock" ]
	[ "$(stat -c %a "$STORE/control.sock")" = 600 ]
	# nobody cannot reach it through a 0700 store
	[ "$(as_nobody "import socket; s = socket.socket(socket.AF_UNIX); s.connect('$STORE/control.sock')")" = EACCES ]
	# a careless admin opens the store; the daemon still checks the peer
	chmod 0711 "$STORE"
	chmod 0666 "$STORE/control.sock"
	run as_nobody "
import socket
s = socket.socket(socket.AF_UNIX)
s.settimeout(20)
s.connect('$STORE/control.sock')
s.sendall(b'gc older_than=0 dry_run=0 json=1\n')
reply = s.recv(4096)
assert reply == b'', reply"
	chmod 0700 "$STORE"
	echo "$output" >&2
	# closed unanswered: an empty read, or a reset (the request unread)
	[ "$output" = OK ] || [ "$output" = ECONNRESET ] || [ "$output" = EPIPE ]
	log_has "control socket: refused uid 65534"
	# the entry is still there: no GC ran for nobody
	[ "$(manifest_sql "select count(*) from entries")" = 1 ]
	cmp "$DATA/a.parquet" "$MNT/AAPL/$K.parquet"
	# and nobody's featurefs cannot open the store at all
	run setpriv --reuid=nobody --regid=nogroup --clear-groups "$FEATUREFS" gc "$STORE"
	[ "$status" -ne 0 ]
	[ "$(manifest_sql "select count(*) from entries")" = 1 ]
}

# ctl_send TEXT: send TEXT on the control socket as it is; print the reply.
ctl_send() {
	python3 - "$STORE/control.sock" "$1" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(60)
s.connect(sys.argv[1])
s.sendall(sys.argv[2].encode())
print(s.recv(4096).decode())
PY
}

@test "a control request cut short is refused, and a slow client does not hold up the unmount" {
	mount_store
	publish_one
	# "gc older_than=3" of "gc older_than=3600000000\n", stalled: refused
	# after the 5 s a request line has, not run with an age of 3 us
	run ctl_send "gc older_than=3"
	[ "$status" -eq 0 ]
	[[ "$output" == *"bad control request"* ]]
	log_has "control socket: refused a request line not finished within 5 s"
	[ "$(manifest_sql "select count(*) from entries")" = 1 ]
	# trailing garbage in a number is no number
	run ctl_send $'gc older_than=3abc dry_run=0\n'
	[[ "$output" == *"bad control request"* ]]
	[ "$(manifest_sql "select count(*) from entries")" = 1 ]
	# one byte a second: each read comes within any per-read timeout
	python3 - "$STORE/control.sock" 3>&- <<'PY' &
import socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
try:
    for c in b"stats" * 100:
        s.send(bytes([c]))
        time.sleep(1)
except OSError:
    pass
PY
	local trickler=$!
	sleep 1
	unmount_store
	kill "$trickler" 2>/dev/null || true
	wait "$trickler" || true
	# and the store is free for the next mount at once
	mount_store
	cmp "$DATA/a.parquet" "$MNT/AAPL/$K.parquet"
}

@test "idle keep-alive connections of local clients leave /health/live answered" {
	mount_store -o metrics=127.0.0.1:0
	local port
	port=$(sed -n 's/^metrics = 127.0.0.1://p' "$MNT/.featurefs/config")
	# a browser's and a pooled client's: all from 127.0.0.1
	python3 - "$port" <<'PY'
import socket, sys, urllib.request
port = int(sys.argv[1])
idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(16)]
r = urllib.request.urlopen("http://127.0.0.1:%d/health/live" % port, timeout=60)
assert r.status == 200, r.status
PY
}

@test "slow HTTP clients from one address cannot keep scrapes from others out, nor fill the log" {
	mount_store -o metrics=127.0.0.1:0
	local port
	port=$(sed -n 's/^metrics = 127.0.0.1://p' "$MNT/.featurefs/config")
	python3 - "$port" <<'PY'
import socket, sys, threading, time
port = int(sys.argv[1])
# 40 clients on 127.0.0.1 that send a header line every second, never
# idle, until the scrape below is answered
slow, done = [], threading.Event()
for i in range(40):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"GET /metrics HTTP/1.1\r\n")
    slow.append(s)
def trickle():
    while not done.wait(1):
        for s in slow:
            try:
                s.sendall(b"X-Slow: 1\r\n")
            except OSError:
                pass
threading.Thread(target=trickle, daemon=True).start()
time.sleep(2)
# a scrape from another address is answered meanwhile (the timeout
# only keeps a broken server from hanging the test)
c = socket.socket()
c.bind(("127.0.0.2", 0))
c.settimeout(60)
c.connect(("127.0.0.1", port))
c.sendall(b"GET /health/live HTTP/1.0\r\n\r\n")
reply = b""
while True:
    b = c.recv(4096)
    if not b:
        break
    reply += b
done.set()
assert reply.split(b" ")[1] == b"200", reply[:80]
for s in slow:
    s.close()  # each hangs up mid-request
PY
	# once the server's threads have seen them hang up, the address
	# may connect again
	for ((i = 0; i < READY_TIMEOUT * 10; i++)); do
		curl -sf "http://127.0.0.1:$port/health/live" >/dev/null && break
		sleep 0.1
	done
	curl -sf "http://127.0.0.1:$port/health/live" >/dev/null
	# libmicrohttpd's lines about them: one a minute, whole
	[ "$(grep -c 'http: ' "$TEST_DIR/daemon.log")" -eq 1 ]
	refute grep -q '\\n$' "$TEST_DIR/daemon.log"
}

@test "a hostile store: a symlink or FIFO planted as an object is not followed" {
	mount_store
	mkdir "$MNT/AAPL"
	k2=$(key_of fifo)
	for k in "$K" "$k2"; do
		cp "$DATA/a.parquet" "$MNT/AAPL/$k.parquet"
		wait_published "$MNT/AAPL/$k.parquet"
	done
	unmount_store
	echo "not for readers of the mount" >"$TEST_DIR/secret"
	ln -sf "$TEST_DIR/secret" "$STORE/objects/AAPL/$K.parquet"
	rm "$STORE/objects/AAPL/$k2.parquet"
	mkfifo "$STORE/objects/AAPL/$k2.parquet"
	mount_store
	for k in "$K" "$k2"; do
		out=$(timeout 20 python3 -c "
import errno
try:
    open('$MNT/AAPL/$k.parquet', 'rb').read()
    print('read')
except OSError as e:
    print(errno.errorcode[e.errno])")
		echo "$k: $out" >&2
		[ "$out" = EIO ]
		log_has "open AAPL/$k.parquet: its object objects/AAPL/$k.parquet is not a regular file (a symbolic link, a FIFO, a directory); fsck -y quarantines it"
	done
	kill -0 "$DAEMON_PID"
	unmount_store
	run "$FEATUREFS" fsck -n "$STORE"
	[ "$status" -eq 4 ]
}

@test "a hostile store: a symbol directory replaced by a symlink is not followed by reads, unlinks, publishes or fsck" {
	mount_store
	mkdir "$MNT/AAPL"
	k2=$(key_of other)
	cp "$DATA/a.parquet" "$MNT/AAPL/$K.parquet"
	wait_published "$MNT/AAPL/$K.parquet"
	unmount_store
	# a directory outside the store, with a file where the object was
	mkdir "$TEST_DIR/outside"
	head -c "$(stat -c %s "$DATA/a.parquet")" /dev/zero >"$TEST_DIR/outside/$K.parquet"
	rm -r "$STORE/objects/AAPL"
	ln -s "$TEST_DIR/outside" "$STORE/objects/AAPL"
	run "$FEATUREFS" fsck -n "$STORE"
	[ "$status" -eq 4 ]
	[[ "$output" == *"object missing: objects/AAPL is not a directory (a symbolic link?), and nothing is read through it"* ]]
	[[ "$output" == *"objects/AAPL: not a symbol directory"* ]]
	mount_store
	[ "$(try_errno "open('$MNT/AAPL/$K.parquet', 'rb').read()")" = EIO ]
	log_has "its object objects/AAPL/$K.parquet is not a regular file"
	cp "$DATA/a.parquet" "$MNT/AAPL/$k2.parquet"
	rm "$MNT/AAPL/$K.parquet"
	unmount_store
	log_has "publish AAPL/$k2: objects/AAPL: not a directory (a symlink?)"
	log_has "unlink objects/AAPL/$K.parquet: Not a directory"
	# nothing outside was read, removed or added
	[ "$(ls "$TEST_DIR/outside")" = "$K.parquet" ]
	cmp -n "$(stat -c %s "$DATA/a.parquet")" /dev/zero "$TEST_DIR/outside/$K.parquet"
	# fsck moves the link away; the write that could not be published
	# meanwhile is kept, and published by the next run
	run "$FEATUREFS" fsck -y "$STORE"
	[[ "$output" == *"tmp/"*" and its row stay for the next recovery"* ]]
	[ "$(readlink "$STORE/lost+found/AAPL")" = "$TEST_DIR/outside" ]
	[ -e "$TEST_DIR/outside/$K.parquet" ]
	run "$FEATUREFS" fsck -y "$STORE"
	[ "$status" -eq 1 ]
	cmp "$DATA/a.parquet" "$STORE/objects/AAPL/$k2.parquet"
	run "$FEATUREFS" fsck -n "$STORE"
	[ "$status" -eq 0 ]
}

@test "a manifest row cannot send an unlink outside objects/" {
	"$FEATUREFS" init "$STORE" >/dev/null
	echo precious >"$TEST_DIR/victim1"
	echo precious >"$TEST_DIR/victim2"
	echo precious >"$TEST_DIR/victim3"
	k1=$(key_of row1) k2=$(key_of row2) k3=$(key_of row3)
	manifest_rw() { sqlite3 "$STORE/manifest.db" "$1"; }
	manifest_rw "insert into symbols (symbol, created_ts) values ('AAPL', 1);
		insert into entries (symbol, key, path, state, created_ts, file_size_bytes, stored_size_bytes)
		values ('AAPL', '$k1', '../victim1', 'published', 1, 9, 9),
		       ('AAPL', '$k2', 'objects/../../victim2', 'published', 1, 9, 9),
		       ('AAPL', '$k3', '$TEST_DIR/victim3', 'published', 1, 9, 9);"
	mount_store
	# reading goes by symbol and key, never by the row's path: the
	# row has no object there
	[ "$(try_errno "open('$MNT/AAPL/$k1.parquet', 'rb').read()")" = EIO ]
	rm -f "$MNT/AAPL/$k1.parquet"
	"$FEATUREFS" gc --older-than 1s "$MNT" >/dev/null || true
	unmount_store
	"$FEATUREFS" gc --older-than 1s "$STORE" >/dev/null || true
	for v in 1 2 3; do
		[ "$(cat "$TEST_DIR/victim$v")" = precious ] || { echo "victim$v removed" >&2; false; }
	done
}

@test "ro: nothing can be created, changed or removed" {
	mount_store
	publish_one
	unmount_store
	mount_store -o ro
	cmp "$DATA/a.parquet" "$MNT/AAPL/$K.parquet"
	[ "$(try_errno "open('$MNT/AAPL/$(key_of new).parquet', 'xb')")" = EROFS ]
	[ "$(try_errno "open('$MNT/AAPL/.scratch', 'xb')")" = EROFS ]
	[ "$(try_errno "os.mkdir('$MNT/MSFT')")" = EROFS ]
	[ "$(try_errno "os.unlink('$MNT/AAPL/$K.parquet')")" = EROFS ]
	[ "$(try_errno "os.rmdir('$MNT/AAPL')")" = EROFS ]
	[ "$(try_errno "os.utime('$MNT/AAPL/$K.parquet', (0, 0))")" = EROFS ]
	run "$FEATUREFS" gc --older-than 0s "$MNT"
	[ "$(manifest_sql "select count(*) from entries")" = 1 ]
}

@test "a hostile store: store.conf, manifest.db (or its -wal, -shm) or store.lock that is not a regular file is refused, never waited on or written through" {
	"$FEATUREFS" init "$STORE" >/dev/null
	echo precious >"$TEST_DIR/victim"
	mv "$STORE/store.lock" "$TEST_DIR/lock.saved" 2>/dev/null || true
	ln -s "$TEST_DIR/victim" "$STORE/store.lock"
	run timeout 20 "$FEATUREFS" "$STORE" "$MNT" -f
	[ "$status" -eq 1 ]
	[[ "$output" == *"store.lock is not a regular file (a symbolic link, a FIFO?); move it away"* ]]
	run timeout 20 "$FEATUREFS" gc "$STORE"
	[ "$status" -ne 0 ] && [ "$status" -ne 124 ]
	[ "$(cat "$TEST_DIR/victim")" = precious ]
	rm "$STORE/store.lock"
	mv "$STORE/manifest.db" "$TEST_DIR/manifest.saved"
	mkfifo "$STORE/manifest.db"
	for cmd in "fsck -n" stats ls "gc --dry-run"; do
		run timeout 20 "$FEATUREFS" $cmd "$STORE"
		echo "$cmd: $status $output" >&2
		[ "$status" -ne 0 ] && [ "$status" -ne 124 ]
		[[ "$output" == *"manifest.db is not a regular file"* ]]
	done
	rm "$STORE/manifest.db"
	mv "$TEST_DIR/manifest.saved" "$STORE/manifest.db"
	# its WAL and shared memory are the manifest's too
	for f in manifest.db-wal manifest.db-shm; do
		mkfifo "$STORE/$f"
		for cmd in "fsck -n" "fsck -p" stats; do
			run timeout 20 "$FEATUREFS" $cmd "$STORE"
			[ "$status" -ne 0 ] && [ "$status" -ne 124 ]
			[[ "$output" == *"$f is not a regular file; move it away"* ]]
		done
		run timeout 20 "$FEATUREFS" "$STORE" "$MNT" -f
		[ "$status" -eq 1 ]
		[[ "$output" == *"$f is not a regular file; move it away"* ]]
		[ -p "$STORE/$f" ]
		rm "$STORE/$f"
	done
	mv "$STORE/store.conf" "$TEST_DIR/conf.saved"
	mkfifo "$STORE/store.conf"
	run timeout 20 "$FEATUREFS" "$STORE" "$MNT" -f
	[ "$status" -eq 1 ]
	[[ "$output" == *"store.conf: not a regular file"* ]]
	refute mountpoint -q "$MNT"
}

@test "a store another uid cannot enter: its commands say so, not that there is no store" {
	"$FEATUREFS" init "$STORE" >/dev/null
	setpriv --reuid=nobody --regid=nogroup --clear-groups "$FEATUREFS" --version >/dev/null 3>&- ||
		skip "nobody cannot run $FEATUREFS"
	for cmd in "fsck -n" stats ls gc; do
		run setpriv --reuid=nobody --regid=nogroup --clear-groups \
			"$FEATUREFS" $cmd "$STORE" 3>&-
		echo "$cmd: $status $output" >&2
		[ "$status" -ne 0 ]
		[[ "$output" == *"store $STORE: Permission denied"* ]]
		[[ "$output" != *"not a featurefs store"* ]]
	done
}
