package agents

import (
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/domination/domination/internal/stream"
	"github.com/domination/domination/metrics"
	"github.com/domination/domination/wire"
)

const exampleUUID = "0b8c9f0e-3a6f-4c55-9b1e-8d7c2f1a0e11"

// visitRecorded is the Kafka timestamp the visit tests decode against.
var visitRecorded = time.Unix(1_700_000_000, 0)

// faustVisit is a visit as the original Faust producer sent it: Python's
// json.dumps spacing, the record's namespace under "__faust", a float
// timestamp.
const faustVisit = `{"id": "` + exampleUUID + `", "account_id": 352, "store_id": "uk", "timestamp": 1700000000.123456, "__faust": {"ns": "visit_aggregator.models.Visit"}}`

func storePtr(s string) *string { return &s }

func TestWindowerDeadLettersABadRepartitionedVisitWithItsReason(t *testing.T) {
	w := newTestWindower(stream.Partition{})
	var out stream.Output
	w.Process(&kafka.Message{Offset: 0, Value: []byte(`{"id":"a","id":"b","account_id":1,"store_id":null,"timestamp":1700000000}`)}, &out)
	w.Process(&kafka.Message{Offset: 1, Value: []byte(`{"id":"a","account_id":1,"store_id":null}`)}, &out)
	msgs := outputMessages(&out)
	if len(msgs) != 2 {
		t.Fatalf("windower emitted %d records, want 2 dead letters", len(msgs))
	}
	for i, want := range []wire.Reason{wire.ReasonMalformedJSON, wire.ReasonMissingField} {
		if got := wire.HeaderValue(msgs[i].Headers, wire.HeaderReason); got != string(want) || !strings.HasPrefix(wire.HeaderValue(msgs[i].Headers, wire.HeaderDetail), "repartitioned visit: ") {
			t.Errorf("dead letter %d: reason %s, detail %q; want %s and a detail naming the repartitioned visit", i, got, wire.HeaderValue(msgs[i].Headers, wire.HeaderDetail), want)
		}
	}
}

func TestWindowerCountsOneStoreAsOneKeyWhateverItsBuffer(t *testing.T) {
	w := newTestWindower(stream.Partition{})
	var out stream.Output
	for i := range 3 {
		// A new buffer per record: the interned store must not alias one.
		v := wire.Visit{ID: fmt.Sprint("v", i), AccountID: 1, StoreID: storePtr("uk"), Timestamp: 1700000000 + float64(i)}
		w.Process(&kafka.Message{Offset: int64(i), Value: wire.AppendVisit(nil, v)}, &out)
	}
	v := wire.Visit{ID: "v9", AccountID: 1, StoreID: storePtr("us"), Timestamp: 1700000100}
	w.Process(&kafka.Message{Offset: 3, Value: wire.AppendVisit(nil, v)}, &out)
	var got []string
	for _, m := range outputMessages(&out) {
		got = append(got, string(m.Key)+" "+string(m.Value))
	}
	want := []string{`1:"uk" {"account_id":1,"store_id":"uk","window":[1700000000,1700000010],"count":3}`}
	if !slices.Equal(got, want) {
		t.Errorf("windower emitted %q, want %q", got, want)
	}
}

// benchVisit is a typical visit.
var benchVisit = []byte(`{"id":"` + exampleUUID + `","account_id":42,"store_id":"s3","timestamp":1700000000.123456}`)

// BenchmarkRepartitionProcess is the visits agent's work per record:
// decode, check, re-key and encode, emitting into a batch's Output.
func BenchmarkRepartitionProcess(b *testing.B) {
	p := &repartitioner{cfg: VisitsConfig{}.WithDefaults(), dead: deadCounters(metrics.New(), VisitsAgentName, VisitReasons), now: func() time.Time { return visitRecorded }}
	m := kafka.Message{Value: benchVisit, Time: visitRecorded}
	var out stream.Output
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		p.Process(&m, &out)
		if i%4096 == 4095 {
			out = stream.Output{}
		}
	}
}

// BenchmarkWindowerProcess counts distinct visits over 250 keys (one
// repartition partition's share of 1,000), 10,000 visits per second of
// event time, in runs of 65,536 visits, each with a fresh windower.
func BenchmarkWindowerProcess(b *testing.B) {
	cfg := VisitsConfig{}.WithDefaults()
	m := metrics.New()
	fresh := func() *windower {
		return newWindower(cfg, stream.Partition{}, deadCounters(m, WindowsAgentName, VisitReasons), m.OpenWindows.WithLabelValues(WindowsAgentName), slog.New(slog.DiscardHandler))
	}
	const n = 1 << 16
	msgs := make([]kafka.Message, n)
	for i := range msgs {
		v := wire.Visit{ID: fmt.Sprintf("%08x-0000-4000-8000-%012x", i, i), AccountID: int64(i % 25), Timestamp: 1700000000 + float64(i)/10000}
		if s := i % 10; s > 0 {
			v.StoreID = storePtr(fmt.Sprint("s", s))
		}
		msgs[i] = kafka.Message{Value: wire.AppendVisit(nil, v), Time: visitRecorded.Add(time.Hour)}
	}
	w := fresh()
	var out stream.Output
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		j := i % n
		if j == 0 && i > 0 {
			w = fresh() // event time restarts with the same visits
		}
		msg := msgs[j]
		msg.Offset = int64(i)
		w.Process(&msg, &out)
		if out.Len() > 4096 {
			out = stream.Output{}
		}
	}
}
