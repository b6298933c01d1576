// Package stream is domination's consumer runtime: it reads one topic in a
// Kafka consumer group, hands every record to a Processor, produces what the
// processor emits, and commits an input offset only after everything it
// caused has been acknowledged by all in-sync replicas.
//
// # Ownership and concurrency
//
//   - Runner.Run owns the consumer group. It joins a generation, starts one
//     goroutine per assigned partition with Generation.Start, and waits for
//     the next generation. kafka-go ends a generation's context at the next
//     rebalance and waits for its goroutines before joining again, so two
//     goroutines never own one partition inside this process.
//   - Each partition goroutine owns its partition Reader and its Processor
//     (made by the Factory for that partition); neither is shared, so a
//     Processor needs no locks.
//   - The Writer is shared by all partitions of all runners; kafka-go's
//     Writer is safe for concurrent use and merges their batches.
//
// # The batch cycle (per partition)
//
//  1. Fetch: wait for one record, then gather more until Config.MaxBatch
//     records or Config.MaxWait after the first.
//  2. Process: call Processor.Process for each record, in offset order.
//  3. Produce: write every emitted record synchronously with the Writer
//     (RequireAll). Failed records are retried with backoff until they are
//     acknowledged or the runner stops; records the broker refuses as too
//     large go to the Processor's dead-letter hook instead.
//  4. Commit: Generation.CommitOffsets with the offset after the batch's last
//     record (or what the Processor's Committer allows).
//
// A crash between 3 and 4 re-delivers the batch: at-least-once. Processors
// make their output a pure function of the input so that a re-delivered
// record produces identical output, which the stores de-duplicate.
//
// # Stopping
//
// When Run's context ends, each partition finishes the batch it holds
// (produce and commit, bounded by Config.DrainTimeout) and then the group is
// left, so a restart re-processes at most that one batch.
package stream
