package feed

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// Count is one closed window of distinct-visit counts for an account and a
// store, as the visits agent emits it on the active-visitors topic.
type Count struct {
	// AccountID is the account counted.
	AccountID int64
	// StoreID is the store, nil for visits without a store.
	StoreID *string
	// Start and End bound the window [Start, End), unix seconds.
	Start, End int64
	// Count is the number of distinct visits in the window.
	Count uint64
}

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
type windowKey struct {
	account  int64
	store    string
	hasStore bool
	start    int64
}

func (c Count) key() windowKey {
	k := windowKey{account: c.AccountID, start: c.Start}
	if c.StoreID != nil {
		k.store, k.hasStore = *c.StoreID, true
	}
	return k
}

// compareCounts orders counts as clients receive history: by window start,
// then account, then store with the null store last (as ClickHouse orders
// NULLs).
func compareCounts(a, b Count) int {
	if a.Start != b.Start {
		return cmpInt(a.Start, b.Start)
	}
	if a.AccountID != b.AccountID {
		return cmpInt(a.AccountID, b.AccountID)
	}
	switch {
	case a.StoreID == nil && b.StoreID == nil:
		return 0
	case a.StoreID == nil:
		return 1
	case b.StoreID == nil:
		return -1
	}
	return strings.Compare(*a.StoreID, *b.StoreID)
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

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

// wireCount is a record of the active-visitors topic:
// {"account_id":1,"store_id":"uk","window":[1700000000,1700000010],"count":3}.
type wireCount struct {
	AccountID *int64        `json:"account_id"`
	StoreID   *string       `json:"store_id"`
	Window    []json.Number `json:"window"`
	Count     *uint64       `json:"count"`
}

// decodeCount parses a record of the active-visitors topic. The window's
// bounds may be written as integral floats (1700000000.0).
func decodeCount(value []byte) (Count, error) {
	var w wireCount
	dec := json.NewDecoder(bytes.NewReader(value))
	dec.UseNumber()
	if err := dec.Decode(&w); err != nil {
		return Count{}, fmt.Errorf("decode count: %w", err)
	}
	switch {
	case w.AccountID == nil:
		return Count{}, errors.New("decode count: no account_id")
	case w.Count == nil:
		return Count{}, errors.New("decode count: no count")
	case len(w.Window) != 2:
		return Count{}, fmt.Errorf("decode count: window has %d bounds, want 2", len(w.Window))
	}
	start, err := unixSeconds(w.Window[0])
	if err != nil {
		return Count{}, fmt.Errorf("decode count: window start: %w", err)
	}
	end, err := unixSeconds(w.Window[1])
	if err != nil {
		return Count{}, fmt.Errorf("decode count: window end: %w", err)
	}
	if end <= start {
		return Count{}, fmt.Errorf("decode count: window [%d, %d) is empty", start, end)
	}
	return Count{AccountID: *w.AccountID, StoreID: w.StoreID, Start: start, End: end, Count: *w.Count}, nil
}

func unixSeconds(n json.Number) (int64, error) {
	if i, err := n.Int64(); err == nil {
		return i, nil
	}
	f, err := n.Float64()
	if err != nil || f != math.Trunc(f) || math.Abs(f) > 1<<53 {
		return 0, fmt.Errorf("%s is not a whole number of seconds", n)
	}
	return int64(f), nil
}
