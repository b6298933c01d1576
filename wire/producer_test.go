package wire_test

import (
	"testing"
	"time"

	"github.com/domination/domination/producer"
	"github.com/domination/domination/wire"
)

// TestDecodeVisitReadsWhatTheProducerWrites: every visit the producer's
// encoder writes decodes, against the message time the producer gives it,
// to the visit the producer meant, for accounts and stores at the edges of
// what the encoder escapes.
func TestDecodeVisitReadsWhatTheProducerWrites(t *testing.T) {
	for _, cfg := range []producer.VisitsConfig{
		{Seed: 1},
		{Seed: 2, AccountIDs: []int64{1, 2, 3}, StoreIDs: []string{"us", "uk"}},
		{Seed: 3, AccountIDs: []int64{-1 << 63, 1<<63 - 1, 0}, StoreIDs: []string{`quote " and \ slash`, "é\u2028<tag>&", "\x00\x1f\x7f", "😀"}, LateFraction: 0.5},
	} {
		enc, err := producer.NewVisitStream(cfg)
		if err != nil {
			t.Fatal(err)
		}
		want, err := producer.NewVisitStream(cfg)
		if err != nil {
			t.Fatal(err)
		}
		now := time.Unix(1700000000, 987654321)
		for i := range 1000 {
			buf, ts := enc.AppendJSON(nil, now)
			v := want.Next(now)
			got, derr := wire.DecodeVisit(buf, ts, wire.VisitLimits{})
			if derr != nil {
				t.Fatalf("seed %d, visit %d: DecodeVisit(%s) = %v", cfg.Seed, i, buf, derr)
			}
			if got.ID != v.ID || got.AccountID != v.AccountID || got.Timestamp != v.Timestamp ||
				(got.StoreID == nil) != (v.StoreID == nil) || (got.StoreID != nil && *got.StoreID != *v.StoreID) {
				t.Fatalf("seed %d, visit %d: DecodeVisit(%s) = %+v, want %+v", cfg.Seed, i, buf, got, v)
			}
			if again := wire.AppendVisit(nil, got); string(again) != string(buf) {
				t.Fatalf("seed %d, visit %d: the agent re-encodes %s as %s", cfg.Seed, i, buf, again)
			}
			now = now.Add(time.Millisecond)
		}
	}
}
