// duckscan.mjs - DuckDB full scans of Parquet files, timed in-process.
//
//   node duckscan.mjs TOOLS_DIR REPS warm|cold|ask LABEL=PATH [LABEL=PATH ...]
//
// Runs `SELECT count(*), sum(price) FROM read_parquet(PATH)` REPS times
// for each file, taking the files in turn (A B A B ...) so drift hits all
// alike.  cold drops the page cache before every query (root only).  ask
// prints `next LABEL` before every query and waits for a line on stdin:
// the caller makes the read cold its own way (a fresh daemon too, whose
// caches drop_caches does not reach).
// Prints one JSON object: {label: [seconds, ...], ...}.  The DuckDB
// client is the tests' (TOOLS_DIR/node_modules/@duckdb/node-api).
import { createRequire } from 'node:module';
import { execFileSync } from 'node:child_process';
import { readSync, writeFileSync, writeSync } from 'node:fs';
import path from 'node:path';

const [toolsDir, repsArg, mode, ...files] = process.argv.slice(2);
const require = createRequire(path.join(path.resolve(toolsDir), 'package.json'));
const { DuckDBInstance } = require('@duckdb/node-api');

function dropCaches() {
	execFileSync('sync');
	writeFileSync('/proc/sys/vm/drop_caches', '3');
}

// Tell the caller which file comes next; return once it answers.
function ask(label) {
	writeSync(1, `next ${label}\n`);
	const b = Buffer.alloc(1);
	while (readSync(0, b, 0, 1, null) === 1 && b[0] !== 10)
		;
}

const db = await DuckDBInstance.create(':memory:');
const con = await db.connect();
const targets = files.map((f) => {
	const i = f.indexOf('=');
	return { label: f.slice(0, i), path: f.slice(i + 1) };
});
const out = {};
for (const t of targets) out[t.label] = [];
for (const t of targets) // one untimed scan each: warms the page cache
	await con.runAndReadAll(`SELECT count(*), sum(price) FROM read_parquet('${t.path}')`);
for (let r = 0; r < Number(repsArg); r++) {
	for (const t of targets) {
		if (mode === 'cold') dropCaches();
		if (mode === 'ask') ask(t.label);
		const t0 = process.hrtime.bigint();
		const reader = await con.runAndReadAll(
			`SELECT count(*) AS n, sum(price) AS s FROM read_parquet('${t.path}')`);
		const dt = Number(process.hrtime.bigint() - t0) / 1e9;
		if (reader.getRows().length !== 1) throw new Error('no result');
		out[t.label].push(dt);
	}
}
console.log(JSON.stringify(out));
