package clickhouse

import (
	"context"
	"fmt"
	"io/fs"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/domination/domination/internal/testenv"
)

// migrationsUpTo is the shipped migrations directory holding versions 1..n
// only: a database as an older release of the product created it.
func migrationsUpTo(t *testing.T, n int) fs.FS {
	t.Helper()
	out := fstest.MapFS{}
	entries, err := fs.ReadDir(migrationFiles, "migrations")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		var v int
		if _, err := fmt.Sscanf(e.Name(), "%06d_", &v); err != nil || v > n {
			continue
		}
		b, err := fs.ReadFile(migrationFiles, "migrations/"+e.Name())
		if err != nil {
			t.Fatal(err)
		}
		out["migrations/"+e.Name()] = &fstest.MapFile{Data: b}
	}
	return out
}

// committed returns group's committed offset on partition 0 of topic.
func committed(t *testing.T, brokers, group, topic string) int64 {
	t.Helper()
	c := &kafka.Client{Addr: kafka.TCP(strings.Split(brokers, ",")...), Timeout: 10 * time.Second}
	res, err := c.OffsetFetch(context.Background(), &kafka.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: {0}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range res.Topics[topic] {
		return p.CommittedOffset
	}
	return -1
}

func TestUpgradeFromVersion2KeepsEveryRowAndOffset(t *testing.T) {
	t.Parallel() // slow: the Kafka engine tables take seconds to come and go
	cfg, conn := testDB(t)
	src := testKafkaSource(t)
	ctx := context.Background()
	old, err := newMigrator(conn, cfg.Database, migrationsUpTo(t, 2), "migrations", src, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := old.Up(ctx); err != nil {
		t.Fatalf("up to version 2: %v", err)
	}
	mustVersion(t, old, 2, false)

	// Rows consumed under version 2.
	w := newWriter(t, src.Brokers, src.ShadowTopic)
	now := time.Now().Unix()
	var before []string
	for i := range 20 {
		before = append(before, fmt.Sprintf(`{"type":"Sha","unique_id":"v2-%d","emit_timestamp":%d,"rating":3}`, i, now))
	}
	deliver(t, conn, w, before, "SELECT count() FROM shadow WHERE unique_id = 'v2-19'")
	end := endOffset(t, src.Brokers, src.ShadowTopic)
	testenv.WaitFor(t, "the engine to commit what it stored", time.Minute, func() bool {
		return committed(t, src.Brokers, src.ShadowGroup, src.ShadowTopic) == end
	})
	offset := end
	var stored uint64 // copies included: deliver may produce more than once
	mustScan(t, conn, "SELECT count() FROM shadow WHERE unique_id LIKE 'v2-%'", &stored)

	// The new release migrates up.
	m, err := NewMigrator(conn, cfg.Database, src, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Down(context.Background()) })
	if err := m.Up(ctx); err != nil {
		t.Fatalf("up from version 2: %v", err)
	}
	ms, err := RenderUp(src, Oldest)
	if err != nil {
		t.Fatal(err)
	}
	mustVersion(t, m, ms[len(ms)-1].Version, false)
	if got := committed(t, src.Brokers, src.ShadowGroup, src.ShadowTopic); got != offset {
		t.Errorf("after the upgrade the engine group is at %d, want %d", got, offset)
	}
	var n uint64
	mustScan(t, conn, "SELECT count() FROM shadow FINAL WHERE unique_id LIKE 'v2-%'", &n)
	if n != uint64(len(before)) {
		t.Errorf("after the upgrade shadow holds %d of the %d rows stored before", n, len(before))
	}

	// The engine goes on from the same offset: a new event lands, none of
	// the old ones twice, and a record breaking the contract stays out.
	after := []string{
		`{"type":"Dow","unique_id":"v3-mismatch","emit_timestamp":` + fmt.Sprint(now) + `,"rating":3}`,
		`{"type":"Dow","unique_id":"v3-0","emit_timestamp":` + fmt.Sprint(now) + `,"rating":5}`,
	}
	deliver(t, conn, w, after, "SELECT count() FROM shadow WHERE unique_id = 'v3-0'")
	mustScan(t, conn, "SELECT count() FROM shadow WHERE unique_id LIKE 'v2-%'", &n)
	if n != stored {
		t.Errorf("after the upgrade shadow stores %d rows of the version-2 events, want the %d it had (none read again)", n, stored)
	}
	mustScan(t, conn, "SELECT count() FROM shadow WHERE unique_id = 'v3-mismatch'", &n)
	if n != 0 {
		t.Errorf("a record whose type is not its rating's was stored %d times", n)
	}
}

// endOffset returns the end of partition 0 of topic.
func endOffset(t *testing.T, brokers, topic string) int64 {
	t.Helper()
	c := &kafka.Client{Addr: kafka.TCP(strings.Split(brokers, ",")...), Timeout: 10 * time.Second}
	res, err := c.ListOffsets(context.Background(), &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: {kafka.LastOffsetOf(0)}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range res.Topics[topic] {
		return p.LastOffset
	}
	return -1
}
