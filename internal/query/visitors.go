package query

import (
	"context"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// ActiveVisitorsQuery lists the closed windows of distinct-visit counts in
// the active_visitors table.
type ActiveVisitorsQuery struct {
	// Since and Until bound window_start to [Since, Until): a window is
	// listed when it starts in the range. A zero Since is no lower bound, a
	// zero Until no upper bound.
	Since, Until time.Time
	// AccountIDs keeps only these accounts. Empty: all accounts.
	AccountIDs []int64
	// StoreIDs and NullStore choose stores. With neither, all rows are
	// listed, whatever their store. Otherwise a row is listed when its
	// store_id is one of StoreIDs, or when NullStore is set and its store_id
	// is NULL (a visit without a store). A store id is always a value: the
	// string "null" means a store named null, not NULL.
	StoreIDs  []string
	NullStore bool
	// Limit is the most rows returned; 0 means no limit.
	Limit int
}

// Validate reports the first problem that would make q an invalid query: a
// time outside ClickHouse's range, Until not after Since, or a negative
// Limit.
func (q ActiveVisitorsQuery) Validate() error {
	if err := checkRange(q.Since, q.Until); err != nil {
		return err
	}
	return checkLimit(q.Limit)
}

// ActiveVisitors runs q against the active_visitors table of conn's
// database. The windows of whole minutes with a clean seal are read from
// their copy in active_visitors_sealed, everything else from
// active_visitors with FINAL, so that a window emitted again is listed
// once (see the package doc).
// The result's columns are account_id, store_id (nil for NULL),
// window_start, window_end and count, ordered by window_start, account_id
// and store_id, NULL stores last. It validates q first and sends nothing if
// q is invalid.
func ActiveVisitors(ctx context.Context, conn driver.Conn, q ActiveVisitorsQuery) (*Result, error) {
	rows, err := queryStore(ctx, conn, q, q.Since, q.Until, visitorsStore, func(clean []time.Time) (string, []any) { return activeVisitorsSQL(q, clean) })
	if err != nil {
		return nil, err
	}
	columns := []string{"account_id", "store_id", "window_start", "window_end", "count"}
	return readResult(rows, visitorsStore.table, columns, func(rows driver.Rows) ([]any, error) {
		var (
			account    int64
			store      *string
			start, end time.Time
			n          uint64
		)
		if err := rows.Scan(&account, &store, &start, &end, &n); err != nil {
			return nil, err
		}
		var storeVal any
		if store != nil {
			storeVal = *store
		}
		return []any{account, storeVal, start.UTC(), end.UTC(), n}, nil
	})
}

// activeVisitorsSQL builds the statement for a valid q, given the clean
// minutes of its range: fixed text with `?` placeholders, and the values
// for them.
func activeVisitorsSQL(q ActiveVisitorsQuery, clean []time.Time) (string, []any) {
	lo, hi, store := plan(q.Since, q.Until, clean)
	filters := func(w *where) {
		if len(q.AccountIDs) > 0 {
			w.add("account_id IN ("+placeholders(len(q.AccountIDs))+")", anys(q.AccountIDs)...)
		}
		switch stores := "store_id IN (" + placeholders(len(q.StoreIDs)) + ")"; {
		case len(q.StoreIDs) > 0 && q.NullStore:
			w.add("("+stores+" OR store_id IS NULL)", anys(q.StoreIDs)...)
		case len(q.StoreIDs) > 0:
			w.add(stores, anys(q.StoreIDs)...)
		case q.NullStore:
			w.add("store_id IS NULL")
		}
	}
	const columns = "SELECT account_id, store_id, window_start, window_end, `count` FROM "
	var (
		branches []string
		args     []any
	)
	if lo.Before(hi) {
		// The copy each clean minute's seal names; a copy still being
		// written has no seal naming it yet.
		var w where
		c, a := sealedCond("window_start", lo, hi, store)
		w.add(c, a...)
		w.add("(toStartOfMinute(window_start), sealed) IN (SELECT minute, sealed FROM active_visitors_seals FINAL WHERE minute >= ? AND minute < ?)", lo, hi)
		filters(&w)
		branches = append(branches, columns+"active_visitors_sealed"+w.String())
		args = append(args, w.args...)
	}
	if len(store) > 0 {
		var w where
		c, a := spansCond("window_start", store)
		w.add(c, a...)
		filters(&w)
		branches = append(branches, columns+"active_visitors FINAL"+w.String())
		args = append(args, w.args...)
	}

	var b strings.Builder
	b.WriteString(columns + "(" + strings.Join(branches, " UNION ALL ") + ")")
	b.WriteString(" ORDER BY window_start, account_id, store_id")
	limit, args := limitClause(q.Limit, args)
	b.WriteString(limit)
	return b.String(), args
}
