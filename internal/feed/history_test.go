package feed

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/domination/domination/internal/testenv"
)

// clickHouseDB creates a database of t's own with the active_visitors
// table and returns a connection whose default database it is.
func clickHouseDB(t *testing.T) (driver.Conn, string) {
	return testenv.ClickHouseDatabase(t, "feed", testenv.CreateActiveVisitors)
}

// insertCounts inserts counts in one batch, hence one part.
func insertCounts(t *testing.T, conn driver.Conn, db string, counts ...Count) {
	t.Helper()
	ctx := context.Background()
	batch, err := conn.PrepareBatch(ctx, "INSERT INTO "+db+".active_visitors (account_id, store_id, window_start, window_end, count)")
	if err != nil {
		t.Fatalf("prepare batch: %v", err)
	}
	for _, c := range counts {
		if err := batch.Append(c.AccountID, c.StoreID, time.Unix(c.Start, 0).UTC(), time.Unix(c.End, 0).UTC(), c.Count); err != nil {
			t.Fatalf("append %v: %v", c, err)
		}
	}
	if err := batch.Send(); err != nil {
		t.Fatalf("send batch: %v", err)
	}
}

func TestClickHouseHistoryReturnsTheLastNOldestFirstDeduplicated(t *testing.T) {
	conn, db := clickHouseDB(t)
	const t0 = 1700000000
	at := func(account int64, store *string, start int64, n uint64) Count {
		return Count{AccountID: account, StoreID: store, Start: t0 + start, End: t0 + start + 10, Count: n}
	}
	uk, us := str("uk"), str("us")
	rows := []Count{
		at(1, uk, 0, 3),
		at(1, nil, 0, 2),
		at(1, str(""), 0, 6),
		at(1, us, 10, 5),
		at(2, uk, 10, 1),
		at(2, uk, 20, 7),
		at(1, uk, 30, 4),
	}
	insertCounts(t, conn, db, rows...)
	// Re-emitted windows, in another part: FINAL collapses them.
	insertCounts(t, conn, db, at(1, uk, 0, 3), at(2, uk, 20, 7), at(1, nil, 0, 2))

	h := NewClickHouseHistory(conn)
	ctx := context.Background()
	tests := []struct {
		name    string
		account *int64
		n       int
		want    []Count
	}{
		{"last 3 of all", nil, 3, []Count{at(1, us, 10, 5), at(2, uk, 20, 7), at(1, uk, 30, 4)}},
		{"all, fewer rows than n", nil, 100, []Count{
			at(1, str(""), 0, 6), at(1, uk, 0, 3), at(1, nil, 0, 2), at(1, us, 10, 5), at(2, uk, 10, 1), at(2, uk, 20, 7), at(1, uk, 30, 4)}},
		{"account 1", i64(1), 10, []Count{at(1, str(""), 0, 6), at(1, uk, 0, 3), at(1, nil, 0, 2), at(1, us, 10, 5), at(1, uk, 30, 4)}},
		{"account 2, last 1", i64(2), 1, []Count{at(2, uk, 20, 7)}},
		{"unknown account", i64(3), 10, nil},
		{"none asked", nil, 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := h.Recent(ctx, tt.account, tt.n)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) == 0 && len(tt.want) == 0 {
				return
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %v\nwant %v", got, tt.want)
			}
		})
	}
	if err := h.(Pinger).Ping(ctx); err != nil {
		t.Errorf("ping: %v", err)
	}
}

func TestClientGetsClickHouseHistoryThenLive(t *testing.T) {
	conn, db := clickHouseDB(t)
	insertCounts(t, conn, db, win(1, 0, 1), win(1, 10, 2))
	f, srv := newTestFeed(t, Config{}, NewClickHouseHistory(conn))
	f.receive(win(1, 10, 2)) // Kafka and ClickHouse both have it
	f.receive(win(1, 20, 3)) // ClickHouse does not have it yet
	c := dial(t, wsURL(srv, ""), nil)
	for _, want := range []Count{win(1, 0, 1), win(1, 10, 2), win(1, 20, 3)} {
		if got := readCount(t, c); !same(got, want) {
			t.Fatalf("history: got %v, want %v", got, want)
		}
	}
	f.receive(win(1, 30, 1))
	if got := readCount(t, c); !same(got, win(1, 30, 1)) {
		t.Fatalf("live: got %v", got)
	}
	if err := f.Ready(context.Background()); err == nil || !contains(err.Error(), "kafka") || contains(err.Error(), "clickhouse") {
		t.Errorf("Ready = %v, want only kafka failing (Run never started)", err)
	}
}

func TestClickHouseHistoryFailsOnAClosedConnection(t *testing.T) {
	conn, _ := clickHouseDB(t)
	h := NewClickHouseHistory(conn)
	_ = conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := h.Recent(ctx, nil, 5); err == nil {
		t.Error("Recent on a closed connection succeeded")
	}
	if err := h.(Pinger).Ping(ctx); err == nil {
		t.Error("Ping on a closed connection succeeded")
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
