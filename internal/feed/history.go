package feed

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// clickHouseHistory reads the active_visitors table of the connection's
// database.
type clickHouseHistory struct {
	conn driver.Conn
}

// NewClickHouseHistory returns a History reading the active_visitors table
// (as the migrations create it) of conn's default database, with FINAL so
// that a re-emitted window counts once. It also implements Pinger.
func NewClickHouseHistory(conn driver.Conn) History {
	return &clickHouseHistory{conn: conn}
}

// Recent returns the last n windows, of account when it is not nil, oldest
// first. The values are bound, never spliced into the SQL.
func (h *clickHouseHistory) Recent(ctx context.Context, account *int64, n int) ([]Count, error) {
	if n <= 0 {
		return nil, nil
	}
	if account == nil {
		return h.recent(ctx, "active_visitors", "", nil, n)
	}
	return h.recent(ctx, "active_visitors", "WHERE account_id = ?", []any{*account}, n)
}

// recent reads the last n windows that where (a WHERE clause, or "") selects
// with args bound, oldest first; what names them in errors.
func (h *clickHouseHistory) recent(ctx context.Context, what, where string, args []any, n int) ([]Count, error) {
	q := "SELECT account_id, store_id, window_start, window_end, count FROM active_visitors FINAL"
	if where != "" {
		q += " " + where
	}
	q += " ORDER BY window_start DESC, account_id, store_id LIMIT ?"
	rows, err := h.conn.Query(ctx, q, append(args, n)...)
	if err != nil {
		return nil, fmt.Errorf("query %s: %w", what, err)
	}
	defer rows.Close()
	out := make([]Count, 0, n)
	for rows.Next() {
		var (
			c          Count
			start, end time.Time
		)
		if err := rows.Scan(&c.AccountID, &c.StoreID, &start, &end, &c.Count); err != nil {
			return nil, fmt.Errorf("read active_visitors row: %w", err)
		}
		c.Start, c.End = start.Unix(), end.Unix()
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read active_visitors rows: %w", err)
	}
	// Newest first from the query; clients get them oldest first.
	slices.SortFunc(out, compareCounts)
	return out, nil
}

// Ping checks that ClickHouse answers.
func (h *clickHouseHistory) Ping(ctx context.Context) error {
	if err := h.conn.Ping(ctx); err != nil {
		return fmt.Errorf("ping: %w", err)
	}
	return nil
}
