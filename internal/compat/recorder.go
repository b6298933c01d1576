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
// every other statement as it arrives and answers it with no rows.
//
// The statements arrive with their arguments already bound: clickhouse-go
// writes each positional `?` argument into the text as a literal on the
// client, with the same function (bindQueryOrAppendParameters) over HTTP as
// over the native protocol the product uses. So what a Recorder holds is
// exactly what a server is sent, and can be replayed on an Engine.
type Recorder struct {
	srv *httptest.Server
	tz  string

	mu    sync.Mutex
	stmts []string
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
	sql := string(body)
	if sql == "" {
		sql = req.URL.Query().Get("query")
	}
	if strings.TrimSpace(sql) == helloSQL {
		hello, err := r.hello()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Write(hello)
		return
	}
	r.mu.Lock()
	r.stmts = append(r.stmts, sql)
	r.mu.Unlock()
	w.Header().Set("Content-Length", "0") // clickhouse-go reads it as no rows
}

// hello is the hello's answer, one Native block, encoded the way the
// client decodes it before it knows the server's revision.
func (r *Recorder) hello() ([]byte, error) {
	b := proto.NewBlock()
	for _, c := range []struct{ name, typ string }{
		{"displayName()", "String"}, {"version()", "String"}, {"revision()", "UInt32"}, {"timezone()", "String"},
	} {
		if err := b.AddColumn(c.name, column.Type(c.typ)); err != nil {
			return nil, fmt.Errorf("recorder hello: %w", err)
		}
	}
	if err := b.Append("recorder", "26.9.0", uint32(clickhousego.ClientTCPProtocolVersion), r.tz); err != nil {
		return nil, fmt.Errorf("recorder hello: %w", err)
	}
	var buf chproto.Buffer
	if err := b.Encode(&buf, clickhousego.ClientTCPProtocolVersion); err != nil {
		return nil, fmt.Errorf("recorder hello: %w", err)
	}
	return buf.Buf, nil
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
// they arrived.
func (r *Recorder) Take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.stmts
	r.stmts = nil
	return out
}

// Close stops the Recorder.
func (r *Recorder) Close() { r.srv.Close() }
