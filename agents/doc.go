// Package agents holds domination's stream agents: the pieces that read a
// record from one Kafka topic, decide something about it and write the
// result to another. The shadow agent classifies ratings; the visits and
// windows agents count distinct visits per key in tumbling windows. The
// records they read and write, and their codecs, are package wire's.
//
// One file per concern:
//
//   - runtime.go: what every agent shares (Runtime, Writer, Batching,
//     Topic), the stage runner and the bounds on timestamps;
//   - shadow.go: the shadow agent;
//   - visits.go: the visits agent's first stage, re-keying;
//   - windows.go: its second stage, windowed counting, with the window
//     store (and idset.go, its set of visit ids);
//   - deadletter.go: building dead-letter records with wire's headers.
//
// # The shadow agent
//
// The shadow agent reads the topic "dominate", whose records are JSON
// objects such as
//
//	{"rating": 42, "unique_id": "0b8c9f0e-3a6f-4c55-9b1e-8d7c2f1a0e11"}
//
// (wire.Rating) and writes to the topic "shadow" one JSON object per rating
// (wire.Shadow):
//
//	{"type":"Sha","unique_id":"0b8c9f0e-3a6f-4c55-9b1e-8d7c2f1a0e11","emit_timestamp":1700000000,"rating":42}
//
// The type is ShaDow for a multiple of 15, else Sha for a multiple of 3,
// else Dow for a multiple of 5, else Incompatible (see wire.Classify). The
// emit_timestamp is the input record's Kafka timestamp, so a re-delivered
// rating yields the same row. A record that cannot be decoded goes to a
// dead-letter topic instead, tagged with a wire.Reason; so does a record
// stamped before 2000 (wire.ReasonBadTimestamp) or more than the maximum
// clock skew ahead of the worker's wall clock (wire.ReasonFutureTimestamp),
// the same bound visits get.
//
// wire.DecodeRating, wire.Classify and wire.AppendShadow are the agent's hot
// path: pure functions without I/O that together handle a typical record in
// well under a microsecond without allocating. A decoded rating may alias
// the record's bytes, so it is used before the consumer reuses them.
//
// # Visits and windows
//
// The visits agent validates each visit (wire.ScanVisit, which applies
// wire.DecodeVisit's rules in place) and re-keys it by (account_id,
// store_id) onto the repartition topic (wire.AppendGroupKey, and
// wire.AppendRepartitioned's compact binary value, or the visit's JSON
// with VisitsConfig.RepartitionFormat "json"), stamping the record with the
// time it re-keyed it. The windows agent reads either form
// (wire.DecodeRepartitioned), and neither stage allocates per visit on its
// hot path. The windows agent
// counts, per repartition partition, the distinct visit ids per key in
// tumbling windows [s, s+Window) of the visit's own timestamp, and emits
// each window's count when it closes (wire.ActiveVisitors).
//
// # Event time
//
// These rules decide which window a visit counts in, or why it does not.
// Each has a test.
//
//  1. Absurd timestamps: a visit stamped before 2000, or more than
//     wire.VisitLimits.MaxFuture (1h) after or MaxPast (7 days) before its own
//     record's Kafka timestamp, is dead-lettered as bad_timestamp. This
//     depends on the record alone. Timestamps are compared as numbers, so
//     one like 1e20 is reported as it was sent.
//  2. The clock skew bound: a visit stamped more than MaxClockSkew ahead of
//     the wall clock of the worker that re-keys it is dead-lettered as
//     future_timestamp. It opens no window and moves no clock.
//  3. The watermark: each repartition partition's event time is the largest
//     of its visits' timestamps, each taken no later than the time the
//     visit was re-keyed, and of the wall clock on ticks. So the watermark
//     never runs ahead of the wall clock at all, which is within the
//     configured skew: a visit stamped a little ahead counts in its own
//     window but cannot make anyone else's late.
//  4. Closing and lateness: a window [s, e) closes, and its count is
//     emitted, when the watermark reaches e + Grace. A visit for a closed
//     window is late: dead-lettered as late, never merged. Together with
//     rule 3: a visit re-keyed within Grace of its timestamp is never late,
//     whatever any other visit was stamped with.
//  5. Idle close: a partition with no record for a tick interval whose last
//     fetch found it caught up moves its watermark to the wall clock, so a
//     quiet key's window still closes, at most a tick after e + Grace of
//     wall-clock time. The runtime commits that watermark before the next
//     record is read, so a record judged late against it is judged late
//     again after a restart.
//  6. The oldest accepted timestamp, for watermark w, is therefore the
//     start of the window that holds the instant w - Grace: every visit of
//     that window or a later one counts, every earlier one is late. Rule 1's
//     bounds only catch values no window could ever hold.
//
// MaxClockSkew defaults to 30 s (DefaultMaxClockSkew). Clocks kept by NTP
// agree within milliseconds; a quartz clock left unsynchronised drifts by
// about a second a day (10 ppm), so 30 s admits a month without
// synchronisation, and a visit beyond it comes from a broken clock (one
// stamped 50 minutes ahead, say) or a broken producer. By rule 3 the skew
// costs no lateness; what it costs is bounded: a visit stamped ahead keeps
// its window open, and the commit offset behind it, for at most
// MaxClockSkew + Window + Grace, which bounds the memory and the replay
// after a crash. A negative MaxClockSkew accepts nothing ahead of the clock.
//
// Rule 2 is judged against the wall clock, so it is the one verdict a
// re-delivery can change: a visit stamped within moments of the bound,
// re-keyed again after a crash, may be accepted the second time. Every
// later stage sees only the repartition topic and judges the same records
// the same way.
//
// # Window state: how it survives crashes and rebalances
//
// Each repartition partition is counted by one windower. It keeps, per
// (account_id, store_id, window start), the set of distinct visit ids seen
// (64-bit FNV-1a hashes of the ids) and the offset of the window's first
// record. Nothing is kept outside Kafka. Each commit stores:
//
//   - offset C: the first record of the oldest open window (or the next
//     record when none is open), so every record of every open window is at
//     or after C;
//   - metadata "v1 wm=W next=N": the watermark W and the offset N after the
//     last processed record.
//
// A windower that is assigned the partition (after a crash, a rebalance or
// a restart) starts at C with watermark W and replays. A replayed record
// (offset < N) whose window had closed by W was already counted in an
// emitted window, or already dead-lettered as late, and is skipped; every
// other record rebuilds an open window, all of whose records are at or
// after C. Records from N on are new and are handled normally. The emitted
// counts therefore equal an offline recomputation, and a window emitted
// twice (crash between produce and commit) carries the same count; the
// store keeps one row per key and window. The runtime never starts a
// windower from empty state when the metadata cannot be read: it retries.
//
// Memory: one 8-byte hash per distinct visit id per open window, in an
// open-addressing set kept between 3/8 and 3/4 full (11 to 21 bytes an id),
// plus about 150 bytes per open (key, window). Open windows per key are
// bounded by (MaxClockSkew + Window + Grace) / Window + 1, so memory is
// bounded by the number of distinct visits that arrive within that span of
// event time. A revoked partition's windower is closed, which releases its
// memory and its share of domination_open_window_ids.
package agents
