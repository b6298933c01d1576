// Package stream is domination's consumer runtime: it reads one topic in a
// Kafka consumer group, hands every record to a Processor, produces what the
// processor emits, and commits an input offset only after everything it
// caused has been acknowledged by all in-sync replicas.
//
// # Ownership and concurrency
//
//   - Runner.Run owns the group membership. It joins a generation
//     (JoinGroup, the leader's range assignment, SyncGroup), starts one
//     goroutine per assigned partition plus a heartbeat goroutine (and, on
//     the leader, a partition watcher), and joins the next generation only
//     after every one of them has returned, so two goroutines never own one
//     partition inside this process.
//   - Each partition goroutine owns its fetcher and its Processor (made by
//     the Factory for that partition); neither is shared, so a Processor
//     needs no locks. The fetcher (fetch.go) is one goroutine that reads the
//     partition from its leader one fetch response ahead and hands each
//     response over whole, so the cost of reading is per response, not per
//     record. Each response is read into one buffer, which its records'
//     keys, values and header values alias. In a Runner that buffer (and
//     the response's record slice) goes back to the fetcher for a later
//     response once the batch holding the response's last records has been
//     produced, so a Processor, and what it emits, may use a record's bytes
//     until its batch is produced and must copy what it keeps longer (the
//     windows agent hashes ids and interns stores). ReadPartition's
//     responses are never reused.
//   - The Writer is shared by all partitions of all runners; kafka-go's
//     Writer is safe for concurrent use and merges their batches.
//   - ReadPartition reads one partition outside any consumer group and
//     commits nothing, for a reader that must see every record (the live
//     feed). It owns one fetcher, the one a Runner's partitions use, and
//     calls back on its own goroutine with every fetch response, and from
//     the fetcher's with every failure.
//
// # The batch cycle (per partition)
//
//  1. Fetch: wait for one record, then gather more until Config.MaxBatch
//     records or Config.MaxWait after the first.
//  2. Process: call Processor.Process for each record, in offset order.
//  3. Produce: write every emitted record synchronously with the Writer
//     (RequireAll). Records the broker refuses as too large go to the
//     Processor's Rejected hook instead.
//  4. Commit: the offset after the batch's last record (or what the
//     Processor's Committer allows), with the Committer's metadata.
//
// A crash between 3 and 4 re-delivers the batch: at-least-once. Processors
// make their output a pure function of the input so that a re-delivered
// record produces identical output, which the stores de-duplicate.
//
// # The rules
//
// Each is tested in this package's tests.
//
//   - Failures are retried inside the partition. A produce or commit that
//     fails (a broker outage, NOT_LEADER, a timeout, a dropped connection,
//     REBALANCE_IN_PROGRESS) is retried with backoff (Config.Retry) for as
//     long as the generation lasts; the batch is never skipped and the
//     partition is never given up. A heartbeat that cannot reach the
//     coordinator is retried too, so an outage shorter than the session
//     timeout as the coordinator counts it (it restarts the count when it
//     comes back) ends no generation: no rebalance, no re-delivery.
//   - A generation ends only when the coordinator says so (a heartbeat or
//     commit answered REBALANCE_IN_PROGRESS, ILLEGAL_GENERATION,
//     UNKNOWN_MEMBER_ID), when the leader sees the topic gain partitions,
//     or when the runner stops. A partition is never given up alone: a
//     partition goroutine that returns ends its generation, so the next
//     one assigns the partition again.
//   - A stop is bounded. When Run's context ends (or the generation does),
//     each partition finishes the batch it holds, produce and commit, within
//     Config.DrainTimeout; writes and commits still blocked then are
//     cancelled and the batch is left uncommitted, to be re-delivered. Then
//     the group is left (at most 5 s). So Run returns within DrainTimeout
//     plus the leave, and a restart re-processes at most the one batch.
//   - State is rebuilt or waited for, never replaced. A partition's committed
//     offset and metadata are read before its Processor is made; a read that
//     fails is retried with backoff until it succeeds or the generation ends,
//     so a Committer never starts from empty state at an offset that
//     assumes otherwise. Every commit, with or without a Committer, goes
//     through the coordinator client with the metadata.
//   - Idle ticks are durable. A Ticker is ticked only on an idle partition
//     whose last fetch found it caught up; when a tick changes what a
//     Committer would commit, that is committed before the next record is
//     read.
//   - Processors are closed. A Processor that implements Closer is closed
//     when its partition is revoked or the runner stops, after its last
//     batch, so it releases its gauges and memory.
//   - A partition read without a group is never given up. ReadPartition
//     starts at the first record written at most ReaderConfig.Replay ago,
//     resolved once; a failure (no leader, a refused connection, a fetch
//     that fails or goes unanswered) is reported to the caller and retried
//     with backoff for as long as its context lasts, and reading resumes at
//     the next offset, so no record is read twice or skipped (unless
//     retention removed it first, which is logged at error level).
//   - Nothing outlives Run or ReadPartition. Every goroutine the runtime
//     starts (partitions, heartbeats, the partition watcher, fetchers, drain
//     timers) has ended when Run or ReadPartition returns.
package stream
