#!/usr/bin/env bats
# monitoring.bats - docs/monitoring: the Prometheus rules load, their unit
# tests prove each alert fires and stays quiet where it should, every
# alert has its runbook section, the dashboard and the rules name only
# metrics a mount exports, and metrics.md names every one it exports.

load helpers

MON=${FEATUREFS_SOURCE:?}/docs/monitoring

setup() {
	setup_store
	K=$(key_of monitored)
}

teardown() {
	teardown_store
}

@test "the recording and alert rules load" {
	promtool check rules "$MON/featurefs-rules.yml" "$MON/featurefs-alerts.yml"
}

@test "the alerts fire and stay quiet where their unit tests say" {
	(cd "$MON" && promtool test rules featurefs-alerts.test.yml)
}

@test "every alert links a section of the runbook" {
	local alert n=0
	for alert in $(sed -n 's/^ *- alert: //p' "$MON/featurefs-alerts.yml"); do
		grep -q "^## $alert\$" "$MON/runbook.md" || { echo "runbook lacks $alert"; false; }
		grep -q "runbook.md#${alert,,}\"" "$MON/featurefs-alerts.yml" || { echo "$alert links no runbook"; false; }
		n=$((n + 1))
	done
	[ "$n" -eq 7 ]
}

@test "docs/monitoring/metrics.md names every family a mount exports, and every load failure reason" {
	mount_store
	local name n=0
	for name in $(sed -n 's/^# TYPE \(featurefs_[a-z_]*\) .*/\1/p' "$MNT/.featurefs/metrics"); do
		grep -q "^| \`$name\` |" "$MON/metrics.md" || { echo "metrics.md lacks $name"; false; }
		n=$((n + 1))
	done
	[ "$n" -ge 40 ]
	[ "$(grep -c '^| `featurefs_' "$MON/metrics.md")" -eq "$n" ]
	for name in $(sed -n 's/^featurefs_load_failures_total{reason="\([a-z_]*\)"}.*/\1/p' "$MNT/.featurefs/metrics"); do
		grep -q "^| \`$name\` |" "$MON/metrics.md" || { echo "metrics.md lacks reason $name"; false; }
	done
}

@test "the dashboard parses and names only metrics a mount exports or the rules record" {
	mount_store -o metrics=127.0.0.1:0
	mkdir "$MNT/AAPL"
	make_parquet "$DATA/a.parquet"
	cp "$DATA/a.parquet" "$MNT/AAPL/$K.parquet"
	cat "$MNT/AAPL/$K.parquet" >/dev/null
	[ "$(http_get /metrics | cut -d' ' -f1)" = 200 ]
	python3 - "$TEST_DIR/body" "$MON" <<'PY'
import json, re, sys
body, mon = sys.argv[1:]
names = set()
for line in open(body):
    m = re.match(r"# TYPE (\S+) (\S+)", line)
    if m:
        names.add(m.group(1))
        if m.group(2) == "histogram":
            names |= {m.group(1) + s for s in ("_bucket", "_sum", "_count")}
rules = open(f"{mon}/featurefs-rules.yml").read()
recorded = set(re.findall(r"record: (\S+)", rules))
exprs = [t["expr"] for p in json.load(open(f"{mon}/featurefs-dashboard.json"))["panels"]
         for t in p["targets"]]
exprs += re.findall(r"expr: >?\s*((?:.|\n)*?)(?=\n\s*-|\n\s*for:|\Z)", rules)
exprs += re.findall(r"expr: (.*)", open(f"{mon}/featurefs-alerts.yml").read())
used = set()
for e in exprs:
    used |= set(re.findall(r"\bfeaturefs[:_][A-Za-z0-9_:]*", e))
unknown = sorted(used - names - recorded)
assert not unknown, f"not exported nor recorded: {unknown}"
assert len(used) > 15, used
print(f"{len(used)} metric names, all known")
PY
}

@test "a symbol row that is not UTF-8 (a damaged manifest) leaves the scrape and stats.json valid" {
	mount_store
	mkdir "$MNT/AAPL"
	unmount_store
	# a newline, a quote, a stray byte and a surrogate's encoding
	sqlite3 "$STORE/manifest.db" "insert into symbols(symbol, created_ts, hits, misses) values (cast(x'6261645f0a22ffeda080' as text), 0, 5, 7)"
	mount_store
	cat "$MNT/.featurefs/metrics" >"$TEST_DIR/metrics"
	promtool check metrics <"$TEST_DIR/metrics"
	# each byte that is no UTF-8 character stands as U+FFFD
	grep -qxF "featurefs_misses_total{symbol=\"bad_\\n\\\"$(printf '\xef\xbf\xbd%.0s' 1 2 3 4)\"} 7" "$TEST_DIR/metrics"
	python3 -c 'import json, sys; json.load(open(sys.argv[1], encoding="utf-8"))' "$MNT/.featurefs/stats.json"
}

@test "text stats escape control bytes in the store path and the mountpoint" {
	STORE=$TEST_DIR/$'s\ttore\e[31m'
	MNT=$TEST_DIR/$'m\001nt'
	mkdir -p "$MNT"
	mount_store
	run "$FEATUREFS" stats "$STORE"
	[ "$status" -eq 0 ]
	[[ "$output" == *'s\ttore\x1b[31m'* ]]
	[[ "$output" == *'m\x01nt (up '* ]]
	refute grep -q $'[\001\t\e]' <<<"$output"
}

@test "a symbol removed and made again starts its counts anew, flushed or not" {
	mount_store
	make_parquet "$DATA/a.parquet"
	mkdir "$MNT/X"
	cp "$DATA/a.parquet" "$MNT/X/$K.parquet"
	cat "$MNT/X/$K.parquet" "$MNT/X/$K.parquet" >/dev/null
	stat "$MNT/X/$(key_of missing).parquet" 2>/dev/null || true
	# within the second before the access flush, as a rule
	rm "$MNT/X/$K.parquet"
	rmdir "$MNT/X"
	mkdir "$MNT/X"
	unmount_store
	[ "$(manifest_sql "select hits || ' ' || misses from symbols where symbol = 'X'")" = "0 0" ]
}
