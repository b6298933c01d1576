package broker

import (
	"bytes"
	"context"
	"encoding/binary"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/protocol"

	"github.com/domination/domination/internal/testenv"
)

// The record batches the Producer encodes itself read back through a real
// broker (which checks their CRC and framing) as what was written: null
// and empty keys and values, headers, long records, times out of order,
// and the zero time, which is stamped when sent.
func TestProducerRecordBatchesReadBackAsWritten(t *testing.T) {
	cfg, c := testClient(t)
	topic := testenv.Name(t, "batch")
	testenv.DeleteTopicsAtCleanup(t, c, topic)
	if err := EnsureTopics(context.Background(), c, Topic{Name: topic, Partitions: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := Spans(context.Background(), c, topic, []int{0}); err != nil {
		t.Fatal(err)
	}
	p, err := NewProducer(cfg, ProducerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	base := time.UnixMilli(1_700_000_000_123)
	long := []byte(strings.Repeat("v", 70_000))
	msgs := []kafka.Message{
		{Key: []byte("k"), Value: []byte("plain"), Time: base},
		{Key: nil, Value: []byte("no key"), Time: base.Add(-time.Hour)},
		{Key: []byte{}, Value: nil, Time: base.Add(time.Minute)},
		{Key: []byte("headers"), Value: []byte{}, Time: base, Headers: []kafka.Header{{Key: "a", Value: []byte("1")}, {Key: "", Value: nil}, {Key: "dlq.reason", Value: []byte("late")}}},
		{Key: long[:300], Value: long, Time: base.Add(3 * 24 * time.Hour)},
		{Key: []byte("stamped when sent"), Value: []byte("zero time")},
	}
	for i := range msgs {
		msgs[i].Topic = topic
	}
	sent := time.Now()
	// One partition, no keys balanced elsewhere: the records form one batch.
	if err := p.WriteMessages(context.Background(), msgs...); err != nil {
		t.Fatal(err)
	}
	got := readAll(t, c, cfg.Brokers, topic, 1, len(msgs))[0]
	for i, g := range got {
		w := msgs[i]
		// kafka-go reads an empty key or value as nil; the encoding's
		// null and empty are compared with kafka-go's own below.
		if !bytes.Equal(g.Key, w.Key) || !bytes.Equal(g.Value, w.Value) {
			t.Errorf("record %d reads back as key %q value %.20q, want %q %.20q", i, g.Key, g.Value, w.Key, w.Value)
		}
		if len(g.Headers) != len(w.Headers) {
			t.Fatalf("record %d has headers %v, want %v", i, g.Headers, w.Headers)
		}
		for j, h := range g.Headers {
			if h.Key != w.Headers[j].Key || !bytes.Equal(h.Value, w.Headers[j].Value) {
				t.Errorf("record %d header %d is %s=%q, want %s=%q", i, j, h.Key, h.Value, w.Headers[j].Key, w.Headers[j].Value)
			}
		}
		switch {
		case w.Time.IsZero():
			if g.Time.Before(sent.Add(-time.Second)) || g.Time.After(time.Now().Add(time.Second)) {
				t.Errorf("record %d without a time was stamped %s, sent at %s", i, g.Time, sent)
			}
		case !g.Time.Equal(w.Time):
			t.Errorf("record %d has the time %s, want %s", i, g.Time, w.Time)
		}
		if g.Offset != got[0].Offset+int64(i) {
			t.Errorf("record %d has the offset %d, want %d", i, g.Offset, got[0].Offset+int64(i))
		}
	}
}

// The batch is byte for byte what kafka-go's encoder writes for the same
// records, null and empty keys, values and header values included.
func TestRecordBatchIsKafkaGosEncoding(t *testing.T) {
	base := time.UnixMilli(1_700_000_000_123)
	msgs := []kafka.Message{
		{Key: []byte("k"), Value: []byte("plain"), Time: base},
		{Key: nil, Value: []byte("no key"), Time: base.Add(-time.Hour)},
		{Key: []byte{}, Value: nil, Time: base.Add(time.Minute)},
		{Key: []byte("headers"), Value: []byte{}, Time: base, Headers: []kafka.Header{{Key: "a", Value: []byte("1")}, {Key: "", Value: nil}, {Key: "e", Value: []byte{}}}},
		{Key: bytes.Repeat([]byte("k"), 300), Value: bytes.Repeat([]byte("v"), 70_000), Time: base.Add(3 * 24 * time.Hour)},
	}
	idx := []int{0, 1, 2, 3, 4}
	mine := appendRecordBatch(nil, msgs, idx, 0)
	var recs []protocol.Record
	for _, m := range msgs {
		r := protocol.Record{Time: m.Time, Headers: m.Headers}
		if m.Key != nil {
			r.Key = protocol.NewBytes(m.Key)
		}
		if m.Value != nil {
			r.Value = protocol.NewBytes(m.Value)
		}
		recs = append(recs, r)
	}
	var theirs bytes.Buffer
	rs := protocol.RecordSet{Version: 2, Records: protocol.NewRecordReader(recs...)}
	if _, err := rs.WriteTo(&theirs); err != nil {
		t.Fatal(err)
	}
	// kafka-go's record set starts with its size.
	if got, want := mine, theirs.Bytes()[4:]; !bytes.Equal(got, want) {
		for i := range min(len(got), len(want)) {
			if got[i] != want[i] {
				t.Fatalf("the batch differs from kafka-go's at byte %d of %d/%d: % x, want % x", i, len(got), len(want), got[i:min(i+16, len(got))], want[i:min(i+16, len(want))])
			}
		}
		t.Fatalf("the batch is %d bytes, kafka-go's %d", len(got), len(want))
	}
}

func TestRecordBatchVarintLengths(t *testing.T) {
	for _, v := range []int64{0, 1, -1, 63, 64, -64, -65, 8191, 8192, 1 << 40, -(1 << 62), 1<<63 - 1, -1 << 63} {
		var b [16]byte
		if got, want := varintLen(v), len(binary.AppendVarint(b[:0], v)); got != want {
			t.Errorf("varintLen(%d) = %d, the encoding is %d bytes", v, got, want)
		}
	}
}
