// Package feed is the live WebSocket feed of active-visitor counts that
// every worker serves on GET /ws, as the original Faust app did.
//
// # Protocol
//
// Each count is pushed as a text frame
//
//	{"account_id":1,"store_id":"uk","ts_from":1700000000,"ts_to":1700000010,"count":3}
//
// with "store_id":null for visits without a store. A client may send
//
//	{"type":"setFilter","filter":{"account":1}}
//
// to receive one account only ({"filter":{}} or "account":null clears it),
// or the text close, after which the server closes the connection normally
// (1000). On connect and after every setFilter the client first receives
// the history: the last N counts matching its filter (N is
// Config.HistoryWindows, or ?history=N, 0..Config.MaxHistory), oldest
// first, then live counts. A message the server does not understand (bad
// JSON, unknown type, a non-integer account, an unknown filter field, a
// binary frame) is answered with {"type":"error","error":"..."} and the
// connection stays open; a message over Config.ReadLimit closes it (1009).
//
// # Scopes
//
// When the web server requires tokens (see internal/auth), a client sees
// only the accounts its token covers: its history and live counts hold
// those accounts alone, with or without a filter, and a setFilter naming
// another account closes the connection with 4403 and a reason. A token
// with accounts=* sees everything, as does every client of a server with
// no tokens. The scoped history is read with one ClickHouse query (account
// IN the scope's accounts) and filtered again on arrival.
//
// # Goroutines and ownership
//
//   - Run's goroutine reads partition 0 of the counts topic with the
//     stream runtime's partition reader, stream.ReadPartition (no consumer
//     group: every worker sees every count), from Config.Replay ago, and
//     hands each count to the hub (publish). The reader's fetcher goroutine,
//     started and waited for by ReadPartition, re-dials a lost leader with
//     backoff and resumes at the next offset. Ready knows what it reports:
//     every fetch response is a success (a caught-up reader is answered
//     empty at least every ReadyWindow/3), every failure a failure.
//   - The hub owns, under one mutex, the ring of recent counts (one per
//     account, store and window start, Config.RingSize at most, oldest
//     evicted) and the set of subscribers with their filters. publish
//     never blocks: it sends to each client's buffered queue without
//     waiting, and a client whose queue is full is dropped (1008 "too
//     slow") while the others go on.
//   - Each client has two goroutines. The reader (the HTTP handler's
//     goroutine) reads client messages, answers setFilter by computing the
//     history, and owns the read deadline. The writer drains the client's
//     queue, pings every Config.PingInterval, and alone writes data frames
//     and the close frame, each within Config.WriteTimeout. Either ending
//     stops the other: stop() closes a channel the writer selects on, and
//     the writer closing the connection ends the reader's read. The handler
//     returns only after both ended.
//   - Run ending closes every client with 1001 and waits for the handlers;
//     later connections get 503.
//
// # The seam between history and live counts
//
// Live counts must neither be missing nor repeated where the history ends.
// The client is subscribed before the snapshot is taken:
//
//  1. Under the hub's lock the client takes its new filter and starts
//     holding its live counts in a pending list (at most RingSize; more
//     drops it as slow), and the ring's last N matching counts are copied.
//  2. Without the lock, ClickHouse (active_visitors FINAL) is asked for the
//     last N matching counts. It usually lags Kafka, and the ring fills the
//     gap; it may also hold counts that arrived after step 1, or, while
//     this worker's reader replays after a start, counts the ring has not
//     seen yet.
//  3. Both are merged, one count per (account, store, window start), the
//     ring's winning, and the last N kept.
//  4. Under the lock, a history count that is also pending with the same
//     count is left out of the history (it follows live, so the order
//     stays that of arrival); the history and all pending counts go to
//     the queue as one item, and the client goes live. The keys of the
//     history counts that came from ClickHouse alone are remembered for
//     the client (at most N): when the reader publishes one later with the
//     same count it is not sent to that client again.
//
// ClickHouse failing or slower than Config.HistoryTimeout is logged and
// the ring's history alone is sent.
//
// # Re-emitted windows
//
// A window is re-emitted, with the same count, when a visits worker
// restarts. The ring is the deduplication horizon: a count equal in key,
// window and count to one the ring holds is not broadcast at all (every
// connected client got it live or in its history), and it is counted in
// domination_feed_counts_duplicate_total. A different count for a held key
// replaces the entry and is pushed as an update. Beyond the ring's horizon
// (RingSize keys) a re-emission is pushed again.
//
// # Drop policy
//
// Clients are closed by the server when their queue overflows (slow,
// 1008), a write exceeds WriteTimeout (slow), a message exceeds ReadLimit
// (read_limit, 1009), nothing (no pong, no message) arrives within
// PongWait (pong_timeout, 1008), a setFilter leaves the token's scope
// (scope, 4403), and are refused before the upgrade for a
// foreign Origin (origin, 403) or beyond MaxClients (max_clients, 503);
// domination_feed_clients_dropped_total counts each by reason.
//
// Every count received is logged at debug level ("active visitors"): the
// original app logged each at info, one line per window and key.
package feed
