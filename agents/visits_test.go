package agents

import (
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/domination/domination/internal/stream"
	"github.com/domination/domination/metrics"
)

// visitRecorded is the Kafka timestamp the visit tests decode against.
var visitRecorded = time.Unix(1_700_000_000, 0)

// benchVisit is a typical visit.
var benchVisit = []byte(`{"id":"0b8c9f0e-3a6f-4c55-9b1e-8d7c2f1a0e11","account_id":42,"store_id":"s3","timestamp":1700000000.123456}`)

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
