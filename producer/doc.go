// Package producer generates load for domination: the ratings behind
// `domination produce ratings` and the visits behind `domination produce
// visits`, written to Kafka at a chosen rate.
//
// # Reproducible streams
//
// A run is driven by a seed. RatingStream and VisitStream yield exactly
// what RunRatings and RunVisits send for a seed, so a test or an
// end-to-end check can compute offline which ids (and how many ratings of
// each class) a run produced. A zero seed in a config picks a random one,
// which the run logs and reports in its Summary, so any run can be
// replayed.
//
//	{"rating":42,"unique_id":"0b8c9f0e-3a6f-4c55-9b1e-8d7c2f1a0e11"}
//	{"id":"…","account_id":352,"store_id":"default","timestamp":1700000000.123}
//
// # Running
//
// The command builds a writer with NewWriter, fills a RatingsConfig or
// VisitsConfig from its flags and calls RunRatings or RunVisits with a
// context that a signal cancels, and prints Summary.String() at the end.
// ProgressPrinter and IsTerminal show progress meanwhile.
//
// # Concurrency
//
// A run owns the goroutine that calls it: that goroutine generates every
// message, paces the batches, keeps the Summary and calls Progress. Each
// WriteMessages call runs in a goroutine of its own, at most InFlight at
// once; it owns its batch (messages and the buffer their keys and values
// point into) until it sends the batch and its error back on a channel
// to the run's goroutine, which accounts for it and reuses the batch. The
// writes use a context detached from the caller's, cancelled
// DrainTimeout after the run starts stopping, so an interrupt lets the
// writes in flight finish; the run returns only when every write it
// started has returned.
package producer
