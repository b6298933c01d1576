package clickhouse

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/domination/domination/internal/broker"
	"github.com/domination/domination/internal/testenv"
)

// testDB creates a database of its own for t, dropped when t ends, and
// returns its Config and a connection to it.
func testDB(t *testing.T) (Config, driver.Conn) {
	t.Helper()
	cfg := Config{Addr: []string{testenv.ClickHouseAddr(t)}, Database: testenv.Name(t, "db")}
	ctx := context.Background()
	if err := EnsureDatabase(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	conn, err := Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+quoteIdentifier(cfg.Database)); err != nil {
			t.Errorf("drop test database: %v", err)
		}
		_ = conn.Close()
	})
	return cfg, conn
}

// testKafkaSource returns a KafkaSource with topics and groups of t's own,
// the topics created (and deleted when t ends), as the CLI does before Up.
func testKafkaSource(t *testing.T) KafkaSource {
	t.Helper()
	brokers := testenv.KafkaBrokers(t)
	src := KafkaSource{
		Brokers:             brokers[0],
		ShadowTopic:         testenv.Name(t, "shadow"),
		ShadowGroup:         testenv.Name(t, "ch_shadow"),
		ActiveVisitorsTopic: testenv.Name(t, "av"),
		ActiveVisitorsGroup: testenv.Name(t, "ch_av"),
	}
	createTopics(t, brokers[0], src.ShadowTopic, src.ActiveVisitorsTopic)
	return src
}

// createTopics creates the topics with one partition each, the way the CLI
// does (waiting until every partition has a leader, so the first produce
// cannot meet an unknown topic), and deletes them when t ends.
func createTopics(t *testing.T, brokers string, topics ...string) {
	t.Helper()
	client, err := broker.Config{Brokers: []string{brokers}}.Client()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	want := make([]broker.Topic, len(topics))
	for i, name := range topics {
		want[i] = broker.Topic{Name: name, Partitions: 1}
	}
	if err := broker.EnsureTopics(ctx, client, want...); err != nil {
		t.Fatal(err)
	}
	testenv.DeleteTopicsAtCleanup(t, client, topics...)
}

// testMigrator returns a Migrator of a database and Kafka source of this
// test's own, with the database's Config and connection and the source.
func testMigrator(t *testing.T) (Config, driver.Conn, KafkaSource, *Migrator) {
	t.Helper()
	cfg, conn := testDB(t)
	src := testKafkaSource(t)
	m, err := NewMigrator(conn, cfg.Database, src, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	return cfg, conn, src, m
}

// testLogger sends a component's logs to t.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(string(p[:len(p)-1]))
	return len(p), nil
}
