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
// The pipeline delivers at least once, so the tables may hold the same row
// more than once until ClickHouse merges their parts. Both tables are
// ReplacingMergeTree, whose sort key identifies an event (shadow) or a window
// of a key (active_visitors); every query reads with FINAL, which collapses
// rows with equal sort keys at read time, so a repeated event is counted once
// whether or not the parts have merged.
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
