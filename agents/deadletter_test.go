package agents

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/domination/domination/internal/stream"
	"github.com/domination/domination/metrics"
	"github.com/domination/domination/wire"
)

func newTestShadowProcessor() *shadowProcessor {
	cfg := ShadowConfig{}.WithDefaults()
	return &shadowProcessor{
		cfg:  cfg,
		dead: deadCounters(metrics.New(), ShadowAgentName, ShadowReasons),
		log:  slog.New(slog.DiscardHandler),
	}
}

// only returns the one record out holds.
func only(t *testing.T, out *stream.Output) kafka.Message {
	t.Helper()
	msgs := out.Messages()
	if len(msgs) != 1 {
		t.Fatalf("%d records emitted, want 1", len(msgs))
	}
	return msgs[0]
}

func wantHeaders(t *testing.T, m kafka.Message, want map[string]string) {
	t.Helper()
	for k, v := range want {
		if got := wire.HeaderValue(m.Headers, k); got != v {
			t.Errorf("header %s = %q, want %q", k, got, v)
		}
	}
}

func TestShadowDeadLettersTheInputOfARefusedOutput(t *testing.T) {
	p := newTestShadowProcessor()
	in := kafka.Message{
		Topic: "dominate", Partition: 3, Offset: 41, Key: []byte("k"),
		Value:   []byte(`{"rating": 30, "unique_id": "u-1"}`),
		Headers: []kafka.Header{{Key: "trace", Value: []byte("t1")}},
		Time:    time.Unix(1_700_000_000, 0),
	}
	var out stream.Output
	p.Process(&in, &out)
	refused := only(t, &out)

	var dl stream.Output
	p.Rejected(refused, &in, kafka.MessageSizeTooLarge, &dl)
	m := only(t, &dl)
	if m.Topic != p.cfg.DeadLetterTopic || string(m.Value) != string(in.Value) || string(m.Key) != "k" {
		t.Errorf("dead letter = %s %q %q, want the input's bytes on %s", m.Topic, m.Key, m.Value, p.cfg.DeadLetterTopic)
	}
	wantHeaders(t, m, map[string]string{
		"trace":              "t1",
		wire.HeaderReason:    string(wire.ReasonOutputRejected),
		wire.HeaderTopic:     "dominate",
		wire.HeaderPartition: "3",
		wire.HeaderOffset:    "41",
		wire.HeaderAgent:     ShadowAgentName,
		wire.HeaderTimestamp: "1700000000000",
	})
	if !m.Time.Equal(in.Time) {
		t.Errorf("dead letter stamped %s, want the input's time %s", m.Time, in.Time)
	}
	if d := wire.HeaderValue(m.Headers, wire.HeaderDetail); !strings.Contains(d, "output to "+p.cfg.OutputTopic+" refused") {
		t.Errorf("detail %q does not name the refusing topic", d)
	}
}

func TestARefusedDeadLetterIsCutTo1KiB(t *testing.T) {
	p := newTestShadowProcessor()
	in := kafka.Message{Topic: "dominate", Partition: 0, Offset: 7, Value: []byte(strings.Repeat("x", 5000))}
	var out stream.Output
	p.Process(&in, &out) // malformed: dead-lettered
	refused := only(t, &out)
	if refused.Topic != p.cfg.DeadLetterTopic {
		t.Fatalf("malformed input went to %s", refused.Topic)
	}
	var dl stream.Output
	p.Rejected(refused, &in, kafka.MessageSizeTooLarge, &dl)
	m := only(t, &dl)
	if len(m.Value) != 1<<10 {
		t.Errorf("value of %d bytes, want 1024", len(m.Value))
	}
	wantHeaders(t, m, map[string]string{wire.HeaderTruncated: "5000", wire.HeaderOffset: "7"})
}

func TestWindowerDeadLettersARefusedCountItself(t *testing.T) {
	w := newTestWindower(stream.Partition{})
	count := kafka.Message{Topic: w.cfg.OutputTopic, Value: []byte(`{"account_id":1,"store_id":null,"window":[0,10],"count":2}`)}
	visit := kafka.Message{Topic: w.cfg.RepartitionTopic, Partition: 1, Offset: 9, Value: []byte(`{"id":"v"}`)}
	var dl stream.Output
	w.Rejected(count, &visit, kafka.MessageSizeTooLarge, &dl)
	m := only(t, &dl)
	if string(m.Value) != string(count.Value) {
		t.Errorf("dead letter value %q, want the refused count", m.Value)
	}
	wantHeaders(t, m, map[string]string{wire.HeaderTopic: w.cfg.OutputTopic, wire.HeaderPartition: "-1", wire.HeaderOffset: "-1"})
}
