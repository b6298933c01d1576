package clickhouse

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/segmentio/kafka-go"
)

// TestKafkaToClickHouse proves the migrations end to end on the real
// services: what is produced to the topics lands in the stores, and an event
// delivered twice is counted once when read with FINAL.
func TestKafkaToClickHouse(t *testing.T) {
	t.Parallel() // slow: dropping a Kafka engine table takes ~3s on 18.16
	_, conn, src, m := testMigrator(t)
	if err := m.Up(context.Background()); err != nil {
		t.Fatalf("Up: %v", err)
	}
	// Down before the database and topics go, so that the Kafka engine's
	// consumers stop first.
	t.Cleanup(func() {
		if err := m.Down(context.Background()); err != nil {
			t.Errorf("Down: %v", err)
		}
	})

	t.Run("shadow", func(t *testing.T) {
		t.Parallel()
		w := newWriter(t, src.Brokers, src.ShadowTopic)
		now := time.Now().Unix()
		event := fmt.Sprintf(`{"type":"Sha","unique_id":"u1","emit_timestamp":%d,"rating":3}`, now)
		deliver(t, conn, w, []string{event}, "SELECT count() FROM shadow WHERE unique_id = 'u1'")

		// The same event again, then a marker: one partition, so once the
		// marker is in, so is the duplicate.
		marker := fmt.Sprintf(`{"type":"Dow","unique_id":"marker","emit_timestamp":%d,"rating":5}`, now)
		deliver(t, conn, w, []string{event, marker}, "SELECT count() FROM shadow WHERE unique_id = 'marker'")

		var raw, final uint64
		mustScan(t, conn, "SELECT count() FROM shadow WHERE unique_id = 'u1'", &raw)
		mustScan(t, conn, "SELECT count() FROM shadow FINAL WHERE unique_id = 'u1'", &final)
		t.Logf("u1: %d rows stored, %d read with FINAL", raw, final)
		if final != 1 {
			t.Errorf("u1 counted %d times with FINAL, want 1", final)
		}
		var (
			typ, id string
			ts      time.Time
			rating  int32
		)
		row := conn.QueryRow(context.Background(), "SELECT toString(type), unique_id, emit_timestamp, rating FROM shadow FINAL WHERE unique_id = 'u1'")
		if err := row.Scan(&typ, &id, &ts, &rating); err != nil {
			t.Fatal(err)
		}
		if typ != "Sha" || id != "u1" || ts.Unix() != now || rating != 3 {
			t.Errorf("row = %s %s %v %d, want Sha u1 %v 3", typ, id, ts, rating, time.Unix(now, 0).UTC())
		}
	})

	t.Run("active visitors", func(t *testing.T) {
		t.Parallel()
		w := newWriter(t, src.Brokers, src.ActiveVisitorsTopic)
		events := []string{
			`{"account_id":1,"store_id":null,"window":[1700000000,1700000010],"count":3}`,
			`{"account_id":1,"store_id":"uk","window":[1700000000,1700000010],"count":5}`,
		}
		deliver(t, conn, w, events, "SELECT count() FROM active_visitors WHERE account_id = 1")
		marker := `{"account_id":2,"store_id":"marker","window":[1700000000,1700000010],"count":1}`
		deliver(t, conn, w, append(events, marker), "SELECT count() FROM active_visitors WHERE account_id = 2")

		rows, err := conn.Query(context.Background(), `
			SELECT ifNull(store_id, '<null>'), isNull(store_id), window_start, window_end, count
			FROM active_visitors FINAL WHERE account_id = 1 ORDER BY isNull(store_id)`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var got []string
		for rows.Next() {
			var (
				store      string
				isNull     uint8
				start, end time.Time
				count      uint64
			)
			if err := rows.Scan(&store, &isNull, &start, &end, &count); err != nil {
				t.Fatal(err)
			}
			got = append(got, fmt.Sprintf("%s/%d %d-%d %d", store, isNull, start.Unix(), end.Unix(), count))
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		want := []string{"uk/0 1700000000-1700000010 5", "<null>/1 1700000000-1700000010 3"}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("active_visitors FINAL for account 1 = %q, want %q", got, want)
		}
	})
}

// newWriter returns a writer to topic with a transport of its own: kafka-go's
// shared default transport serves metadata from a cache that can predate the
// test's topics, and then refuses them as unknown for up to six seconds.
func newWriter(t *testing.T, brokers, topic string) *kafka.Writer {
	w := &kafka.Writer{
		Addr:         kafka.TCP(brokers),
		Topic:        topic,
		RequiredAcks: kafka.RequireAll,
		BatchTimeout: 10 * time.Millisecond,
		Transport:    &kafka.Transport{},
	}
	t.Cleanup(func() { _ = w.Close() })
	return w
}

// deliver produces the messages to w until the count query answers more
// than zero. A Kafka engine table joins its consumer group when its view
// starts reading, at the latest offset, so what is produced before that is
// never read: produce again every few seconds until something arrives.
func deliver(t *testing.T, conn driver.Conn, w *kafka.Writer, values []string, countQuery string) {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(30 * time.Second)
	var nextProduce time.Time
	for {
		if time.Now().After(nextProduce) {
			msgs := make([]kafka.Message, len(values))
			for i, v := range values {
				msgs[i] = kafka.Message{Value: []byte(v)}
			}
			if err := w.WriteMessages(ctx, msgs...); err != nil {
				t.Fatalf("produce to %s: %v", w.Topic, err)
			}
			nextProduce = time.Now().Add(3 * time.Second)
		}
		var n uint64
		mustScan(t, conn, countQuery, &n)
		if n > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("nothing from topic %s in ClickHouse after 30s: %s is 0", w.Topic, countQuery)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func mustScan(t *testing.T, conn driver.Conn, query string, dest ...any) {
	t.Helper()
	if err := conn.QueryRow(context.Background(), query).Scan(dest...); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
}
