//go:build benchpprof

// Micro-benchmarks of the visits agents' hot paths, which the agents
// package does not have yet. Like zz_pprof.go this file is laid over the
// product's package with `go build -overlay`, so it can reach unexported
// names without changing the product's source (see bench/README.md):
//
//	go test -tags benchpprof -overlay bench/bin/visits-overlay.json -run '^$' -bench 'Visit|Window' -benchmem ./agents/

package agents

import (
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/domination/domination/internal/metrics"
	"github.com/domination/domination/internal/stream"
)

var benchVisit = []byte(`{"id":"3f2b6c1e-9d4a-4b7e-8a51-0c2d9e7f6a13","account_id":42,"store_id":"s3","timestamp":1763860000.123456}`)

func BenchmarkDecodeVisit(b *testing.B) {
	rec := time.Unix(1763860000, 0)
	b.SetBytes(int64(len(benchVisit)))
	for b.Loop() {
		if _, err := DecodeVisit(benchVisit, rec, VisitLimits{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRepartitionProcess(b *testing.B) {
	cfg := VisitsConfig{}.WithDefaults()
	p := &repartitioner{cfg: cfg, dead: deadCounters(metrics.New(), VisitsAgentName, VisitReasons)}
	m := kafka.Message{Value: benchVisit, Time: time.Unix(1763860000, 0)}
	var out stream.Output
	for i := 0; b.Loop(); i++ {
		p.Process(&m, &out)
		if i%4096 == 0 {
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
	w := newWindower(cfg, stream.Partition{}, deadCounters(m, WindowsAgentName, VisitReasons), m.OpenWindows.WithLabelValues(WindowsAgentName), slog.New(slog.DiscardHandler))
	const n = 1 << 16
	msgs := make([]kafka.Message, n)
	for i := range msgs {
		v := Visit{ID: fmt.Sprintf("%08x-0000-4000-8000-%012x", i, i), AccountID: int64(i % 25), Timestamp: 1763860000 + float64(i)/10000}
		if s := i % 10; s > 0 {
			store := fmt.Sprintf("s%d", s)
			v.StoreID = &store
		}
		msgs[i] = kafka.Message{Value: v.AppendJSON(nil)}
	}
	var out stream.Output
	for i := 0; b.Loop(); i++ {
		j := i % n
		if j == 0 && i > 0 {
			// A fresh windower replays the same visits: event time restarts.
			w = newWindower(cfg, stream.Partition{}, deadCounters(m, WindowsAgentName, VisitReasons), m.OpenWindows.WithLabelValues(WindowsAgentName), slog.New(slog.DiscardHandler))
		}
		msg := msgs[j]
		msg.Offset = int64(i)
		w.Process(&msg, &out)
		if out.Len() > 4096 {
			out = stream.Output{}
		}
	}
}
