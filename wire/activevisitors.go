package wire

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// ActiveVisitors is one record of the active-visitors topic: the count of
// distinct visits of one (account, store) in one closed window, as the
// visits agent emits it. Its key is AppendGroupKey's of (AccountID,
// StoreID), its value AppendActiveVisitors'.
type ActiveVisitors struct {
	// AccountID is the account counted.
	AccountID int64
	// StoreID is the store, nil for visits without a store.
	StoreID *string
	// Start and End bound the window [Start, End), unix seconds.
	Start, End int64
	// Count is the number of distinct visits in the window.
	Count uint64
}

// WindowKey identifies one window of one (account, store): a window
// emitted twice has the same key.
type WindowKey struct {
	AccountID int64
	// Store is the store id when HasStore; HasStore false is the null
	// store, which differs from the empty one.
	Store    string
	HasStore bool
	// Start is the window's start, unix seconds.
	Start int64
}

// Key returns the key of c's window.
func (c ActiveVisitors) Key() WindowKey {
	k := WindowKey{AccountID: c.AccountID, Start: c.Start}
	if c.StoreID != nil {
		k.Store, k.HasStore = *c.StoreID, true
	}
	return k
}

// CompareWindowKeys orders windows as they are emitted and as history is
// served: by start, then account, then store with the null store last (as
// ClickHouse orders NULLs).
func CompareWindowKeys(a, b WindowKey) int {
	if c := cmp.Compare(a.Start, b.Start); c != 0 {
		return c
	}
	if c := cmp.Compare(a.AccountID, b.AccountID); c != 0 {
		return c
	}
	switch {
	case a.HasStore != b.HasStore && a.HasStore:
		return -1
	case a.HasStore != b.HasStore:
		return 1
	}
	return strings.Compare(a.Store, b.Store)
}

// AppendActiveVisitors appends the active-visitors topic's JSON for c and
// returns the extended buffer:
//
//	{"account_id":1,"store_id":"uk","window":[1700000000,1700000010],"count":3}
//
// with "store_id":null when the store is nil.
func AppendActiveVisitors(dst []byte, c ActiveVisitors) []byte {
	dst = append(dst, `{"account_id":`...)
	dst = strconv.AppendInt(dst, c.AccountID, 10)
	dst = append(dst, `,"store_id":`...)
	if c.StoreID == nil {
		dst = append(dst, "null"...)
	} else {
		dst = AppendJSONString(dst, []byte(*c.StoreID))
	}
	dst = append(dst, `,"window":[`...)
	dst = strconv.AppendInt(dst, c.Start, 10)
	dst = append(dst, ',')
	dst = strconv.AppendInt(dst, c.End, 10)
	dst = append(dst, `],"count":`...)
	dst = strconv.AppendUint(dst, c.Count, 10)
	return append(dst, '}')
}

// activeVisitorsJSON is what DecodeActiveVisitors reads, with
// encoding/json's rules.
type activeVisitorsJSON struct {
	AccountID *int64        `json:"account_id"`
	StoreID   *string       `json:"store_id"`
	Window    []json.Number `json:"window"`
	Count     *uint64       `json:"count"`
}

// DecodeActiveVisitors parses a record of the active-visitors topic, as
// encoding/json reads it: store_id absent means null, and the window's
// bounds may be written as integral floats (1700000000.0). The stricter
// CheckActiveVisitors says whether the stores keep the record.
func DecodeActiveVisitors(value []byte) (ActiveVisitors, error) {
	var w activeVisitorsJSON
	dec := json.NewDecoder(bytes.NewReader(value))
	dec.UseNumber()
	if err := dec.Decode(&w); err != nil {
		return ActiveVisitors{}, fmt.Errorf("decode count: %w", err)
	}
	switch {
	case w.AccountID == nil:
		return ActiveVisitors{}, errors.New("decode count: no account_id")
	case w.Count == nil:
		return ActiveVisitors{}, errors.New("decode count: no count")
	case len(w.Window) != 2:
		return ActiveVisitors{}, fmt.Errorf("decode count: window has %d bounds, want 2", len(w.Window))
	}
	start, err := unixSeconds(w.Window[0])
	if err != nil {
		return ActiveVisitors{}, fmt.Errorf("decode count: window start: %w", err)
	}
	end, err := unixSeconds(w.Window[1])
	if err != nil {
		return ActiveVisitors{}, fmt.Errorf("decode count: window end: %w", err)
	}
	if end <= start {
		return ActiveVisitors{}, fmt.Errorf("decode count: window [%d, %d) is empty", start, end)
	}
	return ActiveVisitors{AccountID: *w.AccountID, StoreID: w.StoreID, Start: start, End: end, Count: *w.Count}, nil
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

// CheckActiveVisitors reports why value is not a windowed count the stores
// keep, or nil if it is one:
//
//	{"account_id":<Int64>,"store_id":"<string>" or null,"window":[<start>,<end>],"count":<1..>}
//
// with start < end, both unix seconds that fit a UInt32.
func CheckActiveVisitors(value []byte) error {
	var (
		window []int64
		count  int64
	)
	err := checkObject(value, []field{
		{"account_id", func(d *json.Decoder) error { _, err := intValue(d, math.MinInt64, math.MaxInt64); return err }},
		{"store_id", func(d *json.Decoder) error {
			if d.More() {
				var raw json.RawMessage
				if err := d.Decode(&raw); err != nil {
					return contractErr("store_id: %v", err)
				}
				if string(raw) == "null" {
					return nil
				}
				var s string
				if err := json.Unmarshal(raw, &s); err != nil {
					return contractErr("store_id is neither a string nor null")
				}
				return nil
			}
			return contractErr("store_id has no value")
		}},
		{"window", func(d *json.Decoder) (err error) { window, err = pairValue(d); return }},
		{"count", func(d *json.Decoder) (err error) { count, err = intValue(d, 0, math.MaxInt64); return }},
	})
	switch {
	case err != nil:
		return err
	case window[0] >= window[1]:
		return contractErr("window [%d,%d] does not end after it starts", window[0], window[1])
	case count < 1:
		return contractErr("count %d is below 1", count)
	}
	return nil
}
