package agents

import (
	"reflect"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/domination/domination/internal/stream"
	"github.com/domination/domination/metrics"
	"github.com/domination/domination/wire"
)

// visitRecorded is the Kafka timestamp the visit tests decode against.
var visitRecorded = time.Unix(1_700_000_000, 0)

// benchVisit is a typical visit.
var benchVisit = []byte(`{"id":"0b8c9f0e-3a6f-4c55-9b1e-8d7c2f1a0e11","account_id":42,"store_id":"s3","timestamp":1700000000.123456}`)

// BenchmarkRepartitionProcess is the visits agent's work per record:
// decode, check, re-key and encode, emitting into a batch's Output.
func BenchmarkRepartitionProcess(b *testing.B) {
	p := &repartitioner{cfg: VisitsConfig{}.WithDefaults(), dead: deadCounters(metrics.New(), VisitsAgentName, VisitReasons), clock: wallClock{now: func() time.Time { return visitRecorded }}}
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

// The repartitioner writes the compact form by default and the visit's
// JSON with RepartitionFormat "json" (a rolling upgrade's), the same visit
// either way: the visits topic's own decoder reads the JSON one, the
// windows stage's both.
func TestRepartitionerWritesTheFormatItIsConfiguredFor(t *testing.T) {
	for _, format := range []string{RepartitionCompact, RepartitionJSON} {
		cfg := VisitsConfig{RepartitionFormat: format}.WithDefaults()
		p := &repartitioner{cfg: cfg, dead: deadCounters(metrics.New(), VisitsAgentName, VisitReasons), clock: wallClock{now: func() time.Time { return visitRecorded }}}
		var out stream.Output
		p.Process(&kafka.Message{Value: benchVisit, Time: visitRecorded}, &out)
		msgs := out.Messages()
		if len(msgs) != 1 || msgs[0].Topic != cfg.RepartitionTopic {
			t.Fatalf("%s: emitted %v, want one record to %s", format, msgs, cfg.RepartitionTopic)
		}
		value := msgs[0].Value
		want, derr := wire.DecodeVisit(benchVisit, visitRecorded, cfg.Limits)
		if derr != nil {
			t.Fatal(derr)
		}
		got, derr := wire.DecodeRepartitioned(value, time.Time{}, cfg.Limits)
		if derr != nil {
			t.Fatalf("%s: the windows stage refuses %q: %v", format, value, derr)
		}
		if !reflect.DeepEqual(got.Visit(), want) {
			t.Errorf("%s: decodes to %+v, want %+v", format, got.Visit(), want)
		}
		_, jerr := wire.ScanVisit(value, time.Time{}, cfg.Limits)
		switch {
		case format == RepartitionJSON && (jerr != nil || value[0] != '{'):
			t.Errorf("json: wrote %q, which the visits decoder refuses (%v)", value, jerr)
		case format == RepartitionCompact && jerr == nil:
			t.Errorf("compact: wrote %q, which reads as JSON", value)
		}
	}
}
