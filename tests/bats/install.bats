#!/usr/bin/env bats
# install.bats - featurefs as operators run it: installed by meson, mounted
# through mount(8) -t fuse.featurefs and from an fstab line, unmounted with
# umount(8); and the manual page and help describe the same commands.

load helpers

setup_file() {
	# one installation for the whole file, into a private root
	export INSTALL_ROOT=$BATS_FILE_TMPDIR/root
	meson install -C "$(dirname "$FEATUREFS")" --no-rebuild --quiet \
		--destdir "$INSTALL_ROOT" >/dev/null
	export INSTALLED_BIN
	INSTALLED_BIN=$(dirname "$(find "$INSTALL_ROOT" -type f -name featurefs -perm -u+x | head -1)")
	# mount(8) starts its helper without PATH, so mount.fuse3's shell
	# looks for featurefs on sh's default path only, /usr/local/sbin
	# first: the binary under test is linked there while this file runs
	# (as root), rather than whatever featurefs the machine has
	export HELPER_LINK=/usr/local/sbin/featurefs HELPER_LINKED=
	if [ "$(id -u)" -eq 0 ] && [ ! -e "$HELPER_LINK" ] && [ ! -L "$HELPER_LINK" ] &&
		mkdir -p "${HELPER_LINK%/*}" && ln -s "$INSTALLED_BIN/featurefs" "$HELPER_LINK"; then
		HELPER_LINKED=1
	fi
}

teardown_file() {
	[ -z "$HELPER_LINKED" ] || rm -f "$HELPER_LINK"
}

setup() {
	setup_store
	command -v mount.fuse3 >/dev/null || skip "no mount.fuse3"
	[ "$(id -u)" -eq 0 ] || skip "mount(8) with a private PATH needs root"
	[ -n "$HELPER_LINKED" ] || skip "$HELPER_LINK exists: mount(8) would run that featurefs"
	K=$(key_of installed)
}

teardown() {
	teardown_store
}

@test "meson install puts featurefs, its fsck helper and the manual in place" {
	[ -x "$INSTALLED_BIN/featurefs" ]
	[ -n "$(find "$INSTALL_ROOT" -name fsck.featurefs -perm -u+x)" ]
	[ -n "$(find "$INSTALL_ROOT" -name fsck.fuse.featurefs)" ]
	[ -n "$(find "$INSTALL_ROOT" -path '*man1/featurefs.1')" ]
}

@test "mount -t fuse.featurefs mounts, umount flushes access records" {
	PATH=$INSTALLED_BIN:$PATH mount -t fuse.featurefs "$STORE" "$MNT" \
		-o gc_interval=0,lock_timeout=5s
	mountpoint -q "$MNT"
	grep -q '^lock_timeout = 5s$' "$MNT/.featurefs/config"
	mkdir "$MNT/AAPL"
	make_parquet "$DATA/a.parquet"
	cp "$DATA/a.parquet" "$MNT/AAPL/$K.parquet"
	for i in 1 2 3; do cmp "$DATA/a.parquet" "$MNT/AAPL/$K.parquet"; done
	pid=$(sed -n 's/^pid=//p' "$STORE/store.lock")
	umount "$MNT"
	for ((i = 0; i < 300; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	refute kill -0 "$pid" 2>/dev/null
	[ "$(manifest_sql "select access_count from entries where key='$K'")" = 3 ]
}

@test "mount returns once the daemon serves, umount then mount works at once, and a start that fails exits non-zero" {
	local store i pid
	store=$(realpath "$STORE")
	for i in 1 2 3; do
		PATH=$INSTALLED_BIN:$PATH mount -t fuse.featurefs "$STORE" "$MNT" -o gc_interval=0
		# it serves already: its lock record and control socket are in place
		run "$INSTALLED_BIN/featurefs" stats "$STORE"
		[ "$status" -eq 0 ]
		[[ "$output" == *"mounted at     $MNT (up "* ]]
		pid=$(sed -n 's/^pid=//p' "$STORE/store.lock")
		# the next mount waits for this daemon to let go of the store
		umount "$MNT"
	done
	for ((i = 0; i < 300; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	# a start that fails after the daemon went into the background: its
	# message reaches the terminal, and mount(8) fails
	mkdir -p "$STORE/control.sock/x"
	run env PATH="$INSTALLED_BIN:$PATH" mount -t fuse.featurefs "$STORE" "$MNT" -o gc_interval=0
	[ "$status" -ne 0 ]
	[[ "$output" == *"control socket $store/control.sock: "* ]]
	refute mountpoint -q "$MNT"
}

@test "an /etc/fstab line (a private fstab with mount -T) mounts the store" {
	# the usual words of an fstab line, access-time flags included
	printf '%s %s fuse.featurefs defaults,gc_interval=0,nofail,_netdev,noatime,relatime,nodiratime,lazytime,x-systemd.mount-timeout=30 0 0\n' \
		"$STORE" "$MNT" >"$TEST_DIR/fstab"
	PATH=$INSTALLED_BIN:$PATH mount -T "$TEST_DIR/fstab" "$MNT"
	mountpoint -q "$MNT"
	# the store is the mount's source, so mount -a knows the line is
	# mounted (a second mount of the store would fail, exit 32)
	[ "$(findmnt -n -o SOURCE,FSTYPE "$MNT")" = "$(realpath "$STORE") fuse.featurefs" ]
	PATH=$INSTALLED_BIN:$PATH mount -a -T "$TEST_DIR/fstab"
	PATH=$INSTALLED_BIN:$PATH mount -a -T "$TEST_DIR/fstab"
	mkdir "$MNT/MSFT"
	make_parquet "$DATA/m.parquet"
	cp "$DATA/m.parquet" "$MNT/MSFT/$K.parquet"
	cmp "$DATA/m.parquet" "$MNT/MSFT/$K.parquet"
	umount "$MNT"
	refute mountpoint -q "$MNT"
}

@test "mount -o remount,ro and back changes the kernel's flags under the same daemon" {
	PATH=$INSTALLED_BIN:$PATH mount -t fuse.featurefs "$STORE" "$MNT" -o gc_interval=0
	pid=$(sed -n 's/^pid=//p' "$STORE/store.lock")
	mkdir "$MNT/AAPL"
	make_parquet "$DATA/a.parquet"
	cp "$DATA/a.parquet" "$MNT/AAPL/$K.parquet"
	# not while a file is open for writing, as on any filesystem
	exec 5>"$MNT/AAPL/$(key_of busy).parquet"
	run env PATH="$INSTALLED_BIN:$PATH" mount -o remount,ro "$MNT"
	[ "$status" -ne 0 ]
	[[ "$output" == *"Device or resource busy (files are open for writing there)"* ]]
	exec 5>&-
	PATH=$INSTALLED_BIN:$PATH mount -o remount,ro "$MNT"
	[[ "$(findmnt -n -o OPTIONS "$MNT")" == ro,* ]]
	cmp "$DATA/a.parquet" "$MNT/AAPL/$K.parquet"
	[ "$(try_errno "open('$MNT/AAPL/$(key_of b).parquet', 'wb')")" = EROFS ]
	PATH=$INSTALLED_BIN:$PATH mount -o remount,rw,noexec "$MNT"
	[[ "$(findmnt -n -o OPTIONS "$MNT")" == rw,*noexec* ]]
	# run by hand, without mount(8) to merge the options: the flags it
	# does not name keep their values
	"$INSTALLED_BIN/featurefs" "$STORE" "$MNT" -o remount,ro
	[[ "$(findmnt -n -o OPTIONS "$MNT")" == ro,noexec,* ]]
	"$INSTALLED_BIN/featurefs" "$STORE" "$MNT" -o remount,rw
	[[ "$(findmnt -n -o OPTIONS "$MNT")" == rw,noexec,* ]]
	# naming another store, or none that exists, changes nothing
	mkdir "$TEST_DIR/other"
	for other in "$TEST_DIR/other" "$TEST_DIR/missing"; do
		run "$INSTALLED_BIN/featurefs" "$other" "$MNT" -o remount,ro
		[ "$status" -ne 0 ]
		[[ "$output" == *"remount $MNT: it serves store $STORE, not $other"* ]]
		[[ "$(findmnt -n -o OPTIONS "$MNT")" == rw,noexec,* ]]
	done
	cp "$DATA/a.parquet" "$MNT/AAPL/$(key_of b).parquet"
	[ "$(sed -n 's/^pid=//p' "$STORE/store.lock")" = "$pid" ]
	umount "$MNT"
	# a daemon started read-only is not made writable by the kernel's flag
	PATH=$INSTALLED_BIN:$PATH mount -t fuse.featurefs "$STORE" "$MNT" -o ro
	run env PATH="$INSTALLED_BIN:$PATH" mount -o remount,rw "$MNT"
	[ "$status" -ne 0 ]
	[[ "$output" == *"it was mounted with -o ro"* ]]
	[[ "$(findmnt -n -o OPTIONS "$MNT")" == ro,* ]]
	# a remount changes no featurefs option, but a wrong one is refused
	run env PATH="$INSTALLED_BIN:$PATH" mount -o remount,ro,gc_older_than=soon "$MNT"
	[ "$status" -ne 0 ]
	[[ "$output" == *"invalid gc_older_than=soon"* ]]
	# and so is one nobody knows (a typo of noexec)
	run env PATH="$INSTALLED_BIN:$PATH" mount -o remount,noxec "$MNT"
	[ "$status" -ne 0 ]
	[[ "$output" == *"unknown option"* ]]
	umount "$MNT"
	# mount(8) names the store by the fsname= a mount was given
	PATH=$INSTALLED_BIN:$PATH mount -t fuse.featurefs "$STORE" "$MNT" -o fsname=features-test
	[ "$(findmnt -n -o SOURCE "$MNT")" = features-test ]
	PATH=$INSTALLED_BIN:$PATH mount -o remount,ro "$MNT"
	[[ "$(findmnt -n -o OPTIONS "$MNT")" == ro,* ]]
	umount "$MNT"
	run "$INSTALLED_BIN/featurefs" "$STORE" "$MNT" -o remount,ro
	[ "$status" -eq 1 ]
	[[ "$output" == *"not a featurefs mount"* ]]
}

@test "umount discards unfinished writes and keeps published entries" {
	PATH=$INSTALLED_BIN:$PATH mount -t fuse.featurefs "$STORE" "$MNT" -o gc_interval=0
	mkdir "$MNT/AAPL"
	make_parquet "$DATA/a.parquet"
	cp "$DATA/a.parquet" "$MNT/AAPL/$K.parquet"
	# a writer still busy when the filesystem goes away (lazy unmount)
	exec 5>"$MNT/AAPL/$(key_of unfinished).parquet"
	head -c 100 "$DATA/a.parquet" >&5
	umount -l "$MNT"
	exec 5>&-
	pid=$(sed -n 's/^pid=//p' "$STORE/store.lock")
	for ((i = 0; i < 300; i++)); do [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	[ "$(manifest_sql "select count(*) from entries")" = 1 ]
	[ -z "$(ls -A "$STORE/tmp")" ]
	mount_store
	cmp "$DATA/a.parquet" "$MNT/AAPL/$K.parquet"
}

@test "the manual page is lint-clean and documents every command and option" {
	man=$FEATUREFS_SOURCE/man/featurefs.1
	command -v mandoc >/dev/null || skip "no mandoc"
	mandoc -Tlint -W warning "$man"
	run "$FEATUREFS" help
	[ "$status" -eq 0 ]
	cmds=$(awk '/^commands:/ {on=1; next} on && !NF {exit} on {print $1}' <<<"$output")
	[ -n "$cmds" ]
	for c in $cmds; do
		grep -Eq "^\.Cm ${c//-/\\\\-}( |$)" "$man" || { echo "man lacks $c"; false; }
		"$FEATUREFS" help "$c" >/dev/null
	done
	# every mount option featurefs help lists is in the manual
	opts=$("$FEATUREFS" help mount | sed -n '/featurefs options (-o)/,$p' | grep -o '[a-z_]*=' | tr -d '=')
	[ "$(wc -w <<<"$opts")" -ge 11 ]
	for o in $opts; do
		grep -q "^\.It Cm $o" "$man" || { echo "man lacks option $o"; false; }
	done
	# and every long option of every command's help
	for c in $cmds; do
		for o in $("$FEATUREFS" help "$c" | grep -o -- '--[a-z-]*' | sort -u); do
			name=${o#--}
			grep -Fq "Fl \\-${name//-/\\-}" "$man" || { echo "man lacks $c $o"; false; }
		done
	done
}

@test "friendly first contact: no arguments, a wrong option, a missing mountpoint" {
	run "$FEATUREFS"
	[ "$status" -eq 2 ]
	[[ "$output" == *"usage: featurefs STORE MOUNTPOINT"* ]]
	local c
	for c in gc init ls stats fsck; do
		run "$FEATUREFS" "$c" --bogus "$STORE"
		[ "$status" -eq 2 ] || [ "$c" = fsck ]
		[[ "$output" == "featurefs $c: unrecognized option '--bogus'"*"featurefs help $c"* ]]
	done
	# a mistyped command would make a store of that name and mount it
	run bash -c 'cd "$1" && "$2" statz "$3"' _ "$TEST_DIR" "$FEATUREFS" "$MNT"
	[ "$status" -eq 2 ]
	[ "$output" = "featurefs: 'statz' is not a command; did you mean 'stats'? (A new store of that name: ./statz)" ]
	[ ! -e "$TEST_DIR/statz" ]
	refute mountpoint -q "$MNT"
	run "$FEATUREFS" "$STORE" "$TEST_DIR/no-such-dir" -f
	[ "$status" -ne 0 ]
	[[ "$output" == *"$TEST_DIR/no-such-dir"*"No such file or directory"* ]]
	# a wrong option is a usage error, found before the store is made
	run "$FEATUREFS" "$STORE" "$MNT" -f -o gc_interval=soon
	[ "$status" -eq 2 ]
	[[ "$output" == *"invalid gc_interval=soon"* ]]
	run "$FEATUREFS" "$STORE" "$MNT" -f -o gc_interval=500ms
	[ "$status" -eq 2 ]
	[[ "$output" == *"invalid gc_interval=500ms: expected 0, or a duration of at least 1s"* ]]
	run "$FEATUREFS" "$STORE" "$MNT" -f -o passthrough=always
	[ "$status" -eq 2 ]
	[[ "$output" == *"invalid passthrough=always: expected auto or off"* ]]
	run "$FEATUREFS" "$STORE" "$MNT" -f -o no_such_option
	[ "$status" -eq 2 ]
	[[ "$output" == *"unknown option"*"no_such_option"* ]]
	run "$FEATUREFS" "$STORE" "$MNT" -f -o compress=lz4
	[ "$status" -eq 2 ]
	[[ "$output" == *"invalid compress=lz4: expected none, zstd or auto"* ]]
	# SPEC's options and command for PostgreSQL say why they are missing
	run "$FEATUREFS" "$STORE" "$MNT" -f -o pool_min=2,pool_max=16
	[ "$status" -eq 2 ]
	[[ "$output" == *"pool_min=: the size of a PostgreSQL connection pool, and this featurefs has no PostgreSQL backend"* ]]
	run bash -c 'cd "$1" && "$2" migrate --to postgresql://db/x "$3"' _ "$TEST_DIR" "$FEATUREFS" "$STORE"
	[ "$status" -eq 2 ]
	[[ "$output" == "featurefs: 'migrate' is not provided: this featurefs has no PostgreSQL backend"* ]]
	[ ! -e "$STORE" ]
	run "$FEATUREFS" init "$STORE" --compress lz4
	[ "$status" -eq 2 ]
	# a mountpoint that cannot take a mount is refused before anything
	touch "$TEST_DIR/file"
	run "$FEATUREFS" "$STORE" "$TEST_DIR/file" -f
	[ "$status" -eq 1 ]
	[[ "$output" == *"mountpoint $TEST_DIR/file: not a directory"* ]]
	# a mistyped command ("featurefs stauts STORE") would mount a new
	# store over an existing one
	"$FEATUREFS" init "$TEST_DIR/other" >/dev/null
	run "$FEATUREFS" stauts "$TEST_DIR/other"
	[ "$status" -eq 2 ]
	[[ "$output" == *"'stauts' is not a command; did you mean 'stats'?"* ]]
	[ ! -e "$STORE" ] && [ ! -e stauts ]
	# a real store named so is still mounted
	run "$FEATUREFS" "$STORE" "$TEST_DIR/other"
	[ "$status" -eq 1 ]
	[[ "$output" == *"mountpoint $TEST_DIR/other is a featurefs store; the store comes first"* ]]
	run "$FEATUREFS" "$STORE" "$MNT" -f -o 'manifest=postgresql://u:secret@db/x'
	[ "$status" -ne 0 ]
	[[ "$output" == *"password"* ]]
	[[ "$output" != *secret* ]]
	refute mountpoint -q "$MNT"
	run "$FEATUREFS" --version
	[ "$status" -eq 0 ]
	[[ "$output" == "featurefs "* ]]
}
