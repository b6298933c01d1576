package query

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func visitorsResult() *Result {
	ws := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	we := ws.Add(time.Minute)
	return &Result{
		Columns: []string{"account_id", "store_id", "window_start", "window_end", "count"},
		Rows: [][]any{
			{int64(7), "store-1", ws, we, uint64(12)},
			{int64(1234), `a "quoted", <b> store`, ws, we, uint64(3)},
			{int64(7), nil, ws.In(time.FixedZone("X", 3600)), we, uint64(18446744073709551615)},
		},
	}
}

func emptyShadowResult() *Result {
	return &Result{Columns: []string{"type", "count"}, Rows: [][]any{}}
}

func TestResultWrite(t *testing.T) {
	tests := []struct {
		name   string
		r      *Result
		format string
		want   string
	}{
		{
			name:   "table",
			r:      visitorsResult(),
			format: "table",
			want: `account_id  store_id               window_start          window_end                           count
----------  ---------------------  --------------------  --------------------  --------------------
         7  store-1                2026-11-23T10:00:00Z  2026-11-23T10:01:00Z                    12
      1234  a "quoted", <b> store  2026-11-23T10:00:00Z  2026-11-23T10:01:00Z                     3
         7  null                   2026-11-23T10:00:00Z  2026-11-23T10:01:00Z  18446744073709551615
(3 rows)
`,
		},
		{
			name:   "table is the default",
			r:      &Result{Columns: []string{"type", "count"}, Rows: [][]any{{"ShaDow", uint64(1)}}},
			format: "",
			want: `type    count
------  -----
ShaDow      1
(1 row)
`,
		},
		{
			name:   "empty table",
			r:      emptyShadowResult(),
			format: "table",
			want: `type  count
----  -----
(0 rows)
`,
		},
		{
			name:   "json",
			r:      visitorsResult(),
			format: "json",
			want: `[
  {"account_id":7,"store_id":"store-1","window_start":"2026-11-23T10:00:00Z","window_end":"2026-11-23T10:01:00Z","count":12},
  {"account_id":1234,"store_id":"a \"quoted\", <b> store","window_start":"2026-11-23T10:00:00Z","window_end":"2026-11-23T10:01:00Z","count":3},
  {"account_id":7,"store_id":null,"window_start":"2026-11-23T10:00:00Z","window_end":"2026-11-23T10:01:00Z","count":18446744073709551615}
]
`,
		},
		{
			name:   "empty json",
			r:      emptyShadowResult(),
			format: "json",
			want:   "[]\n",
		},
		{
			name:   "nil rows json",
			r:      &Result{Columns: []string{"type", "count"}},
			format: "json",
			want:   "[]\n",
		},
		{
			name:   "csv",
			r:      visitorsResult(),
			format: "csv",
			want: `account_id,store_id,window_start,window_end,count
7,store-1,2026-11-23T10:00:00Z,2026-11-23T10:01:00Z,12
1234,"a ""quoted"", <b> store",2026-11-23T10:00:00Z,2026-11-23T10:01:00Z,3
7,,2026-11-23T10:00:00Z,2026-11-23T10:01:00Z,18446744073709551615
`,
		},
		{
			name:   "empty csv",
			r:      emptyShadowResult(),
			format: "csv",
			want:   "type,count\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b strings.Builder
			if err := tt.r.Write(&b, tt.format); err != nil {
				t.Fatalf("Write: %v", err)
			}
			if got := b.String(); got != tt.want {
				t.Errorf("Write(%q)\n got:\n%s\nwant:\n%s", tt.format, got, tt.want)
			}
		})
	}
}

func TestValidFormat(t *testing.T) {
	for _, f := range append([]string{""}, Formats...) {
		if err := ValidFormat(f); err != nil {
			t.Errorf("ValidFormat(%q): %v", f, err)
		}
	}
	for _, f := range []string{"yaml", "JSON", "tsv"} {
		err := ValidFormat(f)
		if err == nil || !strings.Contains(err.Error(), `"`+f+`"`) || !strings.Contains(err.Error(), "table, json, csv") {
			t.Errorf("ValidFormat(%q) = %v, want an error naming it and the formats", f, err)
		}
	}
}

func TestWriteRejectsUnknownFormatWithoutWriting(t *testing.T) {
	var b strings.Builder
	if err := emptyShadowResult().Write(&b, "yaml"); err == nil {
		t.Fatal("Write(yaml) succeeded")
	}
	if b.Len() != 0 {
		t.Errorf("Write(yaml) wrote %q", b.String())
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestWriteReportsWriterErrors(t *testing.T) {
	for _, f := range Formats {
		err := visitorsResult().Write(failWriter{}, f)
		if err == nil || !strings.Contains(err.Error(), "disk full") {
			t.Errorf("Write(%s) to a failing writer = %v, want the writer's error", f, err)
		}
	}
}
