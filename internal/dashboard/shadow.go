package dashboard

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/domination/domination/internal/query"
)

// Defaults and bounds of GET /api/shadow.
const (
	// DefaultShadowSince is how far back the page's chart reaches.
	DefaultShadowSince = time.Hour
	// MaxShadowSince bounds ?since=, so that one request cannot make
	// ClickHouse read the whole table with FINAL.
	MaxShadowSince = 24 * time.Hour
	// DefaultShadowTimeout bounds one query.
	DefaultShadowTimeout = 10 * time.Second
)

// buckets are the groupings ?by= accepts, with the time they truncate to.
var buckets = map[string]time.Duration{"minute": time.Minute, "hour": time.Hour}

// ShadowReply is the body of GET /api/shadow.
type ShadowReply struct {
	// Since is the first bucket's start: now minus ?since=, truncated to
	// the bucket, so that every bucket shown is whole.
	Since time.Time `json:"since"`
	// By is the bucket: "minute" or "hour".
	By string `json:"by"`
	// Types are the shadow types, in the order the page stacks them.
	Types []string `json:"types"`
	// Buckets hold the counts per type of each bucket that has events,
	// oldest first.
	Buckets []ShadowBucket `json:"buckets"`
	// Totals sum Buckets per type, every type present.
	Totals map[string]uint64 `json:"totals"`
}

// ShadowBucket is one bucket's counts by type.
type ShadowBucket struct {
	At     time.Time         `json:"at"`
	Counts map[string]uint64 `json:"counts"`
}

// ShadowHandler serves GET /api/shadow?since=1h&by=minute: shadow events
// per type per bucket since then, exact (query.Shadow reads with FINAL and
// binds every value). since is a Go duration up to MaxShadowSince
// (default DefaultShadowSince), by is minute (default) or hour. A bad
// parameter is 400; ClickHouse failing is 502 with the error.
func ShadowHandler(conn driver.Conn, log *slog.Logger) http.Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		q, by, err := shadowParams(r, time.Now())
		if err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), DefaultShadowTimeout)
		defer cancel()
		res, err := query.Shadow(ctx, conn, q)
		if err != nil {
			log.Warn("dashboard shadow query failed", "err", err)
			writeJSON(w, http.StatusBadGateway, map[string]string{"error": err.Error()})
			return
		}
		reply, err := shadowReply(q.Since, by, res)
		if err != nil {
			writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, reply)
	})
}

// shadowParams reads ?since= and ?by= into a query.
func shadowParams(r *http.Request, now time.Time) (query.ShadowQuery, string, error) {
	v := r.URL.Query()
	since := DefaultShadowSince
	if s := v.Get("since"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 || d > MaxShadowSince {
			return query.ShadowQuery{}, "", fmt.Errorf("since must be a duration from 1s to %s, got %q", MaxShadowSince, s)
		}
		since = d
	}
	by := v.Get("by")
	if by == "" {
		by = "minute"
	}
	unit, ok := buckets[by]
	if !ok {
		return query.ShadowQuery{}, "", fmt.Errorf("by must be minute or hour, got %q", by)
	}
	return query.ShadowQuery{Since: now.Add(-since).UTC().Truncate(unit), By: by}, by, nil
}

// shadowReply turns query.Shadow's rows (bucket, type, count; oldest
// first) into buckets and totals.
func shadowReply(since time.Time, by string, res *query.Result) (ShadowReply, error) {
	out := ShadowReply{Since: since, By: by, Types: query.ShadowTypes, Buckets: []ShadowBucket{}, Totals: map[string]uint64{}}
	for _, t := range query.ShadowTypes {
		out.Totals[t] = 0
	}
	for _, row := range res.Rows {
		if len(row) != 3 {
			return ShadowReply{}, fmt.Errorf("read shadow rows: want 3 columns, got %d", len(row))
		}
		at, ok1 := row[0].(time.Time)
		typ, ok2 := row[1].(string)
		n, ok3 := row[2].(uint64)
		if !ok1 || !ok2 || !ok3 {
			return ShadowReply{}, fmt.Errorf("read shadow rows: unexpected row %v", row)
		}
		if k := len(out.Buckets); k == 0 || !out.Buckets[k-1].At.Equal(at) {
			out.Buckets = append(out.Buckets, ShadowBucket{At: at, Counts: map[string]uint64{}})
		}
		out.Buckets[len(out.Buckets)-1].Counts[typ] += n
		out.Totals[typ] += n
	}
	return out, nil
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
