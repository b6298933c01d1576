package feed

import (
	"context"
	"reflect"
	"slices"
	"testing"
)

func TestClickHouseRecentAccountsReadsOnlyThoseAccountsLastNOldestFirst(t *testing.T) {
	conn, db := clickHouseDB(t)
	const t0 = 1700000000
	var rows []Count
	for i := int64(0); i < 12; i++ {
		rows = append(rows, Count{AccountID: 1 + i%4, StoreID: ptr("uk"), Start: t0 + i*10, End: t0 + i*10 + 10, Count: uint64(i + 1)})
	}
	insertCounts(t, conn, db, rows...)
	insertCounts(t, conn, db, rows[3], rows[4]) // re-emitted: FINAL collapses them

	h := NewClickHouseHistory(conn).(AccountsHistory)
	got, err := h.RecentAccounts(context.Background(), []int64{2, 4}, 4)
	if err != nil {
		t.Fatal(err)
	}
	want := []Count{rows[5], rows[7], rows[9], rows[11]} // the last four of accounts 2 and 4
	if !slices.EqualFunc(got, want, func(a, b Count) bool { return reflect.DeepEqual(a, b) }) {
		t.Fatalf("RecentAccounts(2, 4; 4) = %v, want %v", got, want)
	}
	if got, err := h.RecentAccounts(context.Background(), []int64{99}, 4); err != nil || len(got) != 0 {
		t.Fatalf("RecentAccounts of an account without windows = %v, %v; want none", got, err)
	}
}
