// Package query answers questions about what ClickHouse holds: the logic
// behind `domination query shadow` and `domination query active-visitors`.
//
// A command fills in a ShadowQuery or an ActiveVisitorsQuery from its flags
// (ParseTime turns --since and --until into times), checks --format with
// ValidFormat, calls Shadow or ActiveVisitors, and prints the Result with
// Result.Write. Everything that can be rejected without a server is rejected
// by Validate before any query is sent.
//
// # Exact answers
//
// The pipeline delivers at least once, so the stores may hold the same row
// more than once until ClickHouse merges their parts. Both are
// ReplacingMergeTree, whose sort key identifies an event (shadow) or a
// window of a key (active_visitors); FINAL collapses rows with equal sort
// keys at read time, so a repeated event counts once whether or not the
// parts have merged. But FINAL re-reads and re-merges the whole range on
// every query, so the queries use it only where they must:
//
//  1. cleanMinutes reads, for the range's whole minutes, which have a clean
//     seal: a seal (shadow_minutes, active_visitors_seals) whose arrival
//     count equals the minute's arrival counter now. Why such a seal is
//     the minute's exact answer is argued in internal/rollup.
//  2. plan splits the range: clean whole minutes are answered from their
//     seals; every other instant (the partial minutes at both ends, minutes
//     never sealed or whose counter moved since, such as the newest ones)
//     lies in a store span, read from the store with FINAL. Spans are
//     merged down to maxStoreSpans, the closest first; the seals' branch
//     selects the range's minutes outside every span with the spans'
//     condition negated, so each instant is read by exactly one branch.
//  3. One statement adds both branches up (UNION ALL), per minute first,
//     then per bucket, so hour and day buckets are sums of minutes.
//
// With no seals at all (no worker has run a rollup pass yet) the store
// span is the whole range and the statement reads the store with FINAL,
// as before the rollups. A seal is never read for a minute it does not
// cover, so a range reaching past the newest seal is exact too.
//
// # User values never become SQL
//
// Every value a user gives — times, type names, account and store ids, the
// limit — is passed as a positional `?` argument. The only parts of the SQL
// text that vary come from fixed whitelists in this package (the bucket
// function chosen by ShadowQuery.By, and how many `?` a list needs).
//
// clickhouse-go binds `?` on the client: it writes each argument into the
// query as a quoted, escaped literal (strings with `\` and `'` escaped, times
// as toDateTime('…', 'UTC')), because ClickHouse 18.16 has no server-side
// query parameters. The driver's quoting is what keeps a value a value; the
// tests prove it against a real server with values such as `x' OR 1=1 --`.
//
// # Time
//
// Both tables store DateTime('UTC'), whole seconds. A time range is
// half-open, [Since, Until): Since is inclusive, Until exclusive, and either
// may be the zero time, meaning unbounded. A time with a fraction of a second
// is rounded up to the next whole second, which selects exactly the stored
// seconds inside the range. Times must lie in 1970-01-01T00:00:00Z ..
// 2105-12-31T23:59:59Z, the range in which ClickHouse 18.16 represents a
// DateTime; outside it, 18.16 silently turns a literal into 0 or wraps it.
//
// # ClickHouse 18.16
//
// Every statement here runs on ClickHouse 18.16.1 and on current releases.
// On 18.16 a Go slice bound to `IN (?)` becomes an array literal, which 18.16
// rejects ("Type mismatch in IN or VALUES section. Expected: String. Got:
// Array"), so lists are written as one `?` per element: `type IN (?, ?)`.
package query
