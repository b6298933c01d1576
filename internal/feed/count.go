package feed

import (
	"encoding/json"
	"slices"
	"strconv"

	"github.com/domination/domination/wire"
)

// Count is one closed window of distinct-visit counts for an account and a
// store: a record of the active-visitors topic (wire.ActiveVisitors), with
// the feed's own encoding for clients.
type Count wire.ActiveVisitors

// MarshalJSON encodes c as the frame clients receive:
// {"account_id":1,"store_id":"uk","ts_from":1700000000,"ts_to":1700000010,"count":3}
// with "store_id":null when the store is nil.
func (c Count) MarshalJSON() ([]byte, error) {
	return c.appendFrame(make([]byte, 0, 96)), nil
}

func (c Count) appendFrame(b []byte) []byte {
	b = append(b, `{"account_id":`...)
	b = strconv.AppendInt(b, c.AccountID, 10)
	b = append(b, `,"store_id":`...)
	if c.StoreID == nil {
		b = append(b, "null"...)
	} else {
		s, _ := json.Marshal(*c.StoreID) // a string always encodes
		b = append(b, s...)
	}
	b = append(b, `,"ts_from":`...)
	b = strconv.AppendInt(b, c.Start, 10)
	b = append(b, `,"ts_to":`...)
	b = strconv.AppendInt(b, c.End, 10)
	b = append(b, `,"count":`...)
	b = strconv.AppendUint(b, c.Count, 10)
	return append(b, '}')
}

// frame returns c encoded for clients.
func (c Count) frame() []byte { return c.appendFrame(make([]byte, 0, 96)) }

// windowKey identifies one count: a re-emitted window has the same key.
type windowKey = wire.WindowKey

func (c Count) key() windowKey { return wire.ActiveVisitors(c).Key() }

// compareCounts orders counts as clients receive history: by window start,
// then account, then store with the null store last (as ClickHouse orders
// NULLs).
func compareCounts(a, b Count) int { return wire.CompareWindowKeys(a.key(), b.key()) }

// lastN sorts counts in history order and returns the last n of them.
func lastN(counts []Count, n int) []Count {
	slices.SortFunc(counts, compareCounts)
	if len(counts) > n {
		counts = counts[len(counts)-n:]
	}
	return counts
}

// mergeHistory merges the history read from ClickHouse with the ring's
// snapshot, keeps one count per key (the ring's, which is the newer news
// when both hold one), and returns the last n in history order.
func mergeHistory(stored, recent []Count, n int) []Count {
	if n <= 0 {
		return nil
	}
	byKey := make(map[windowKey]Count, len(stored)+len(recent))
	for _, c := range stored {
		byKey[c.key()] = c
	}
	for _, c := range recent {
		byKey[c.key()] = c
	}
	out := make([]Count, 0, len(byKey))
	for _, c := range byKey {
		out = append(out, c)
	}
	return lastN(out, n)
}

// decodeCount parses a record of the active-visitors topic.
func decodeCount(value []byte) (Count, error) {
	c, err := wire.DecodeActiveVisitors(value)
	return Count(c), err
}
