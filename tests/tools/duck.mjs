// duck.mjs - the DuckDB client the tests drive (npm @duckdb/node-api).
//
//   node duck.mjs make OUT [--rows N] [--seed S] [--start TS] [--row-group N]
//       write tick-like Parquet (ts, price, size, side) to OUT with COPY
//   node duck.mjs sql 'SQL'
//       run SQL, print each result row as one JSON line
import { DuckDBInstance } from '@duckdb/node-api';

function option(args, name, dflt) {
	const i = args.indexOf(name);
	return i >= 0 ? args[i + 1] : dflt;
}

function quote(s) {
	return "'" + String(s).replaceAll("'", "''") + "'";
}

// JSON for DuckDB values: big integers, decimals and timestamps as text.
function plain(key, v) {
	if (typeof v === 'bigint') return v.toString();
	if (v && typeof v === 'object' && !Array.isArray(v) &&
	    v.constructor !== Object)
		return v.toString();
	return v;
}

const [cmd, ...args] = process.argv.slice(2);
const db = await DuckDBInstance.create(':memory:');
const con = await db.connect();
try {
	if (cmd === 'make') {
		const out = args[0];
		const rows = Number(option(args, '--rows', '1000'));
		const seed = Number(option(args, '--seed', '1'));
		const start = option(args, '--start', '2024-01-02 09:30:00');
		const rg = Number(option(args, '--row-group', '100000'));
		await con.run(`SELECT setseed(${(seed % 1000) / 1000})`);
		await con.run(
			`COPY (SELECT TIMESTAMP ${quote(start)} + INTERVAL (i * 10) MILLISECOND AS ts,
			              round(100 + ${seed} + random() * 5, 4) AS price,
			              (1 + (random() * 900)::INTEGER) AS size,
			              CASE WHEN random() < 0.5 THEN 'B' ELSE 'S' END AS side
			       FROM range(${rows}) t(i))
			 TO ${quote(out)} (FORMAT parquet, ROW_GROUP_SIZE ${rg})`);
	} else if (cmd === 'sql') {
		const reader = await con.runAndReadAll(args[0]);
		for (const row of reader.getRowObjects())
			console.log(JSON.stringify(row, plain));
	} else {
		console.error('usage: duck.mjs make OUT [...] | sql SQL');
		process.exit(2);
	}
} catch (e) {
	console.error(`duck.mjs: ${e.message}`);
	process.exit(1);
}
