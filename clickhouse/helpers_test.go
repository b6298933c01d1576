package clickhouse

import (
	"context"
	"log/slog"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/segmentio/kafka-go"

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

func createTopics(t *testing.T, broker string, topics ...string) {
	t.Helper()
	controller := func() *kafka.Conn {
		t.Helper()
		conn, err := kafka.Dial("tcp", broker)
		if err != nil {
			t.Fatalf("dial kafka: %v", err)
		}
		defer conn.Close()
		c, err := conn.Controller()
		if err != nil {
			t.Fatalf("find kafka controller: %v", err)
		}
		cc, err := kafka.Dial("tcp", net.JoinHostPort(c.Host, strconv.Itoa(c.Port)))
		if err != nil {
			t.Fatalf("dial kafka controller: %v", err)
		}
		return cc
	}
	cc := controller()
	defer cc.Close()
	var configs []kafka.TopicConfig
	for _, topic := range topics {
		configs = append(configs, kafka.TopicConfig{Topic: topic, NumPartitions: 1, ReplicationFactor: 1})
	}
	if err := cc.CreateTopics(configs...); err != nil {
		t.Fatalf("create topics %v: %v", topics, err)
	}
	t.Cleanup(func() {
		cc := controller()
		defer cc.Close()
		if err := cc.DeleteTopics(topics...); err != nil {
			t.Errorf("delete topics %v: %v", topics, err)
		}
	})
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
