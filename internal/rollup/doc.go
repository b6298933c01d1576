// Package rollup keeps the seals that let `domination query` answer
// exactly without reading history with FINAL.
//
// # The problem
//
// The stores (shadow, active_visitors) are ReplacingMergeTree tables that
// may hold a row more than once until ClickHouse merges their parts:
// agents and the Kafka engine deliver at least once, the guard produces
// again the valid records that preceded a bad one, and dead letters are
// replayed. FINAL collapses the copies at read time, but it re-reads and
// re-merges every part of the range on every query: 13 times the cost of a
// plain count over a month.
//
// # Seals and arrival counters (migration 000004)
//
// For each store, and for each minute of its event time (emit_timestamp,
// window_start):
//
//   - The arrival counter (shadow_arrivals, active_visitors_arrivals) is
//     a SummingMergeTree fed by a materialized view on the store itself:
//     every block inserted into the store adds, per minute, how many rows
//     it held. It counts rows, not distinct rows, so it never decreases:
//     a copy, a late first delivery and a guard's re-produced record each
//     add one, and merges of the store do not touch it.
//   - A seal (shadow_minutes; active_visitors_seals with the copy it names
//     in active_visitors_sealed) holds the minute's exact answer as the
//     store read with FINAL gave it, and the arrival count read before
//     that FINAL read.
//
// A minute is clean when its seal's arrival count equals its counter's
// sum now. The queries answer clean whole minutes from their seals and
// everything else (minutes never sealed, minutes whose counter moved, the
// partial minutes at both ends of a range) from the store with FINAL,
// over those minutes only; see internal/query.
//
// # Why a clean minute's seal is exact
//
// ClickHouse inserts a block into a table first and only then runs the
// table's materialized views on it (18.16's PushingToViewsBlockOutputStream
// says so in a comment; current releases chain the views after the
// table's sink, and skip them for a block the replicated table dropped as
// a duplicate). So a row counted by the counter is already visible in the
// store. A Sealer reads the counts first, then reads the minutes with
// FINAL, then writes the seals. Take a minute m sealed with (answer C,
// count A):
//
//   - every row counted in A was visible when C was computed, so C
//     includes it; a row inserted afterwards raises the counter above A
//     once its insert completes, and m is no longer clean;
//   - a row visible to C but not yet counted (its insert still running the
//     views) raises the counter later: m is sealed again, never wrong;
//   - merges change which copy of a key is stored, never the set of keys,
//     so they change neither FINAL's answer nor the counter.
//
// Hence while the counter still reads A, the store's FINAL answer for m is
// C for every insert that has completed: the same answer FINAL gives, for
// each minute as of some instant during the query. The cases the product
// must survive are all inserts: re-delivery by the agents or by the Kafka
// engine (an identical row twice), late first deliveries (a row for an
// old minute arriving now), the guard's copies of valid records that
// preceded a bad one (they arrive later, possibly for sealed minutes), and
// dead letters replayed. Each raises a counter; none is missed. A record
// the contract-checking views (migration 000003) keep out never reaches
// the store, so it reaches neither the counter nor a seal. A restart
// loses nothing: every seal and counter is in ClickHouse, and a Sealer
// keeps no state that matters (a new one starts by looking for minutes the
// store holds without a seal or a count: rows stored before migration
// 000004 existed; they are sealed with a count of 0).
//
// Seals are written with a version (ReplacingMergeTree(sealed)); the
// highest wins. Two Sealers sealing one minute at once each write a
// correct pair; whichever wins, the minute is either clean and exact or
// sealed again. So every worker may run a Sealer: passes are idempotent,
// and concurrent ones only repeat work. An active_visitors seal is its
// copy of the minute's windows (from FINAL, one row per window) under the
// seal's version, written before the seal row that names it: a reader
// takes only the copy a seal row names, so it never sees one half
// written.
//
// Nothing here is approximate: counts are count() over FINAL, and the
// checks are equalities of integers. What the seals rely on beyond the
// argument above: that nothing deletes from the stores (no ALTER DELETE,
// TTL or DROP PARTITION). On a cluster, replication fetches the counter's
// parts and the store's independently, so a replica may count rows it
// does not hold yet; before reading a replicated store with FINAL, a
// Sealer runs SYSTEM SYNC REPLICA on it (the inserting replica logged the
// store's part before its views counted it). That path has not been run on
// a cluster here. `domination verify rollup` reconciles the seals with the
// stores read with FINAL and reports any minute that differs.
//
// # Ownership
//
// Sealer.Run owns no goroutine but its caller's: each pass runs the
// statements one after another on the connection it was given.
package rollup
