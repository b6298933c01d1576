package feed

import (
	"encoding/json"
	"reflect"
	"testing"
)

func str(s string) *string { return &s }

func i64(v int64) *int64 { return &v }

// frameCount is a frame as a client decodes it.
type frameCount struct {
	Type      string  `json:"type"`
	Error     string  `json:"error"`
	AccountID int64   `json:"account_id"`
	StoreID   *string `json:"store_id"`
	TsFrom    int64   `json:"ts_from"`
	TsTo      int64   `json:"ts_to"`
	Count     uint64  `json:"count"`
}

func (f frameCount) count() Count {
	return Count{AccountID: f.AccountID, StoreID: f.StoreID, Start: f.TsFrom, End: f.TsTo, Count: f.Count}
}

func decodeFrame(t testing.TB, b []byte) frameCount {
	t.Helper()
	var f frameCount
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatalf("decode frame %s: %v", b, err)
	}
	return f
}

func TestFrameEncodesTheOriginalFields(t *testing.T) {
	tests := []struct {
		name string
		c    Count
		want string
	}{
		{"store", Count{AccountID: 1, StoreID: str("uk"), Start: 1700000000, End: 1700000010, Count: 3},
			`{"account_id":1,"store_id":"uk","ts_from":1700000000,"ts_to":1700000010,"count":3}`},
		{"null store", Count{AccountID: 2, Start: 10, End: 20, Count: 0},
			`{"account_id":2,"store_id":null,"ts_from":10,"ts_to":20,"count":0}`},
		{"empty store is not null", Count{AccountID: 3, StoreID: str(""), Start: 0, End: 1, Count: 1},
			`{"account_id":3,"store_id":"","ts_from":0,"ts_to":1,"count":1}`},
		{"store escaped", Count{AccountID: -4, StoreID: str(`a"b\c<`), Start: 1, End: 2, Count: 18446744073709551615},
			`{"account_id":-4,"store_id":"a\"b\\c\u003c","ts_from":1,"ts_to":2,"count":18446744073709551615}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := json.Marshal(tt.c)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("json.Marshal = %s\nwant %s", got, tt.want)
			}
			if string(tt.c.frame()) != tt.want {
				t.Errorf("frame = %s", tt.c.frame())
			}
			if back := decodeFrame(t, got).count(); !reflect.DeepEqual(back, tt.c) {
				t.Errorf("round trip = %+v, want %+v", back, tt.c)
			}
		})
	}
}

func TestMergeHistoryKeepsOneCountPerKeyAndTheLastN(t *testing.T) {
	uk := str("uk")
	c := func(account int64, store *string, start int64, n uint64) Count {
		return Count{AccountID: account, StoreID: store, Start: start, End: start + 10, Count: n}
	}
	tests := []struct {
		name           string
		stored, recent []Count
		n              int
		want           []Count
	}{
		{"ring fills what ClickHouse lacks",
			[]Count{c(1, uk, 0, 1), c(1, uk, 10, 1)}, []Count{c(1, uk, 10, 1), c(1, uk, 20, 1)}, 10,
			[]Count{c(1, uk, 0, 1), c(1, uk, 10, 1), c(1, uk, 20, 1)}},
		{"last n only",
			[]Count{c(1, uk, 0, 1), c(1, uk, 10, 1)}, []Count{c(1, uk, 20, 1)}, 2,
			[]Count{c(1, uk, 10, 1), c(1, uk, 20, 1)}},
		{"ring wins a key",
			[]Count{c(1, uk, 0, 1)}, []Count{c(1, uk, 0, 7)}, 5,
			[]Count{c(1, uk, 0, 7)}},
		{"null store and store differ; order start, account, store, null last",
			[]Count{c(2, nil, 0, 1), c(1, nil, 0, 1)}, []Count{c(2, uk, 0, 1), c(1, str("a"), 0, 1)}, 10,
			[]Count{c(1, str("a"), 0, 1), c(1, nil, 0, 1), c(2, uk, 0, 1), c(2, nil, 0, 1)}},
		{"zero", []Count{c(1, uk, 0, 1)}, nil, 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := mergeHistory(tt.stored, tt.recent, tt.n)
			if len(got) == 0 && len(tt.want) == 0 {
				return
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %v\nwant %v", got, tt.want)
			}
		})
	}
}
