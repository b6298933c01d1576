package feed

import (
	"context"
	"testing"

	"github.com/domination/domination/metrics"
)

// BenchmarkPublish measures the broadcaster's cost per count with 100
// clients, half of them filtered out.
func BenchmarkPublish(b *testing.B) {
	h := newHub(testLogger(nil), metrics.New(), nil, DefaultRingSize, DefaultHistoryTimeout, hubLimits{maxClients: 1000, pending: DefaultRingSize})
	subs := make([]*subscriber, 100)
	for i := range subs {
		subs[i] = &subscriber{queue: make(chan outItem, 1), stop: func(int, string) {}}
		_ = h.add(subs[i])
		f := filter{}
		if i%2 == 1 {
			f.account = i64(2)
		}
		_ = h.sync(context.Background(), subs[i], f, 0)
	}
	store := "uk"
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		h.publish(Count{AccountID: 1, StoreID: &store, Start: int64(i) * 10, End: int64(i)*10 + 10, Count: 3})
		for _, s := range subs {
			select {
			case <-s.queue:
			default:
			}
		}
	}
}

func BenchmarkFrame(b *testing.B) {
	store := "uk"
	c := Count{AccountID: 1, StoreID: &store, Start: 1700000000, End: 1700000010, Count: 3}
	b.ReportAllocs()
	for b.Loop() {
		_ = c.frame()
	}
}
