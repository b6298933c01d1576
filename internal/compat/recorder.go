package compat

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"

	chproto "github.com/ClickHouse/ch-go/proto"
	clickhousego "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/column"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/ClickHouse/clickhouse-go/v2/lib/proto"
)

// helloSQL is the statement clickhouse-go's HTTP protocol opens a
// connection with (conn_http.go, queryHello).
const helloSQL = "SELECT displayName(), version(), revision(), timezone()"

// Recorder is as much of a ClickHouse server as a clickhouse-go client needs
// to send it statements: it answers the HTTP protocol's hello, records
// every other statement as it arrives and answers it with no rows, or with
// the row given to Answer.
//
// The statements arrive with their arguments already bound: clickhouse-go
// writes each positional `?` argument into the text as a literal on the
// client, with the same function (bindQueryOrAppendParameters) over HTTP as
// over the native protocol the product uses. So what a Recorder holds is
// exactly what a server is sent, and can be replayed on an Engine.
type Recorder struct {
	srv *httptest.Server
	tz  string

	mu      sync.Mutex
	stmts   []string
	inserts []string
	answers []answer
}

// answer is the rows to send for the statements that start with prefix.
type answer struct {
	prefix string
	types  []string
	rows   [][]any
}

// NewRecorder starts a Recorder that tells clients its timezone is tz (the
// zone clickhouse-go writes time.Time arguments for). Close stops it.
func NewRecorder(tz string) *Recorder {
	r := &Recorder{tz: tz}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	return r
}

func (r *Recorder) serve(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	// A statement comes as the body, or as the query parameter when the
	// body carries an INSERT's data (a batch).
	sql := req.URL.Query().Get("query")
	if sql == "" {
		sql = string(body)
	}
	if strings.TrimSpace(sql) == helloSQL {
		r.reply(w, answer{types: []string{"String", "String", "UInt32", "String"},
			rows: [][]any{{"recorder", "26.9.0", uint32(clickhousego.ClientTCPProtocolVersion), r.tz}}})
		return
	}
	r.mu.Lock()
	if req.URL.Query().Has("query") && len(body) > 0 {
		r.inserts = append(r.inserts, sql)
	} else {
		r.stmts = append(r.stmts, sql)
	}
	var reply *answer
	for i := range r.answers {
		if strings.HasPrefix(sql, r.answers[i].prefix) {
			reply = &r.answers[i]
			break
		}
	}
	r.mu.Unlock()
	if reply != nil {
		r.reply(w, *reply)
		return
	}
	w.Header().Set("Content-Length", "0") // clickhouse-go reads it as no rows
}

// reply writes a's rows as one Native block, encoded for the revision the
// hello names, which is also the one the client decodes the hello with.
func (r *Recorder) reply(w http.ResponseWriter, a answer) {
	b := proto.NewBlock()
	for i, typ := range a.types {
		if err := b.AddColumn(fmt.Sprintf("c%d", i+1), column.Type(typ)); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
	}
	var buf chproto.Buffer
	var err error
	for _, row := range a.rows {
		if err = b.Append(row...); err != nil {
			break
		}
	}
	if err == nil {
		err = b.Encode(&buf, clickhousego.ClientTCPProtocolVersion)
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Write(buf.Buf)
}

// Answer makes the Recorder answer each statement that starts with prefix
// with rows of values, in columns of the given ClickHouse types (the Go
// values must suit them: string for String, uint32 for UInt32, …), instead
// of with no rows: for code that stops at an empty answer. The first
// matching prefix wins.
func (r *Recorder) Answer(prefix string, types []string, rows ...[]any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.answers = append(r.answers, answer{prefix: prefix, types: types, rows: rows})
}

// Conn opens a clickhouse-go connection to the Recorder, over HTTP.
func (r *Recorder) Conn(ctx context.Context) (driver.Conn, error) {
	conn, err := clickhousego.Open(&clickhousego.Options{
		Protocol: clickhousego.HTTP,
		Addr:     []string{strings.TrimPrefix(r.srv.URL, "http://")},
	})
	if err != nil {
		return nil, fmt.Errorf("connect to the recorder: %w", err)
	}
	return conn, nil
}

// Take returns the statements recorded since the last Take, in the order
// they arrived, except the INSERTs that came with data.
func (r *Recorder) Take() []string { return r.take(&r.stmts) }

// TakeInserts returns the INSERTs that came with data (batches, such as
// the migration version table's rows) since the last TakeInserts. Only
// their text is kept: a replay would need the data.
func (r *Recorder) TakeInserts() []string { return r.take(&r.inserts) }

// take empties list, one of r's, and returns what it held.
func (r *Recorder) take(list *[]string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := *list
	*list = nil
	return out
}

// Close stops the Recorder.
func (r *Recorder) Close() { r.srv.Close() }
