// Package wire owns domination's record formats: for each Kafka topic, the
// one Go type its records decode to and the one pair of functions that
// write and read them. The agents, the producer, the live feed, the
// reconciler and the benchmark all go through it, so a record's shape is
// defined here and nowhere else.
//
// # Topics and their records
//
// Every topic can be renamed by configuration; its default name is a
// constant (topics.go), which the packages' own defaults refer to.
//
//	topic (default)      constant                       record
//	dominate             RatingsTopic                   Rating
//	dominate-dlq         RatingsDeadLetterTopic         dead letter of a Rating
//	shadow               ShadowTopic                    Shadow
//	shadow-dlq           ShadowDeadLetterTopic          dead letter of a Shadow
//	visits               VisitsTopic                    Visit
//	visits-repartition   RepartitionTopic               Repartitioned
//	visits-dlq           VisitsDeadLetterTopic          dead letter of a Visit or Repartitioned
//	active-visitors      ActiveVisitorsTopic            ActiveVisitors
//	active-visitors-dlq  ActiveVisitorsDeadLetterTopic  dead letter of an ActiveVisitors
//
//	record          encoder               decoder                   file
//	Rating          AppendRating          DecodeRating              rating.go
//	Shadow          AppendShadow          DecodeShadow, CheckShadow shadow.go
//	Visit           AppendVisit           DecodeVisit, ScanVisit    visit.go
//	Repartitioned   AppendRepartitioned,  DecodeRepartitioned       repartition.go
//	                AppendRepartitionedJSON
//	ActiveVisitors  AppendActiveVisitors  DecodeActiveVisitors,     activevisitors.go
//	                                      CheckActiveVisitors
//	dead letter     Header* constants     HeaderValue               deadletter.go, reason.go
//
// The keys: a rating's and a shadow event's is the unique_id, a visit's its
// id, a repartitioned visit's and an active-visitors count's the group key
// of (account_id, store_id), AppendGroupKey. A dead-letter record keeps the
// refused input's key, value and headers and adds the dlq.* headers; its
// dlq.reason is a Reason.
//
// # The decoders
//
// DecodeRating and DecodeVisit (and DecodeRepartitioned, DecodeVisit
// without the copies) share a small, strict JSON scanner (json.go) rather
// than encoding/json, which costs about a microsecond and several
// allocations per record. Their rules are documented on the functions: one
// JSON object, keys matched exactly after unescaping, none of their keys
// twice, other keys skipped (such as the Faust producer's "__faust"
// metadata). A refusal is a *DecodeError whose Reason says which check
// failed. A decoded Rating or Repartitioned may alias the record's bytes, so
// it must be used before the consumer reuses them.
//
// CheckShadow and CheckActiveVisitors are the output topics' contracts
// (contract.go): what a record must be for ClickHouse's Kafka engine tables
// to parse it and for the stores to keep it. DecodeShadow decodes under
// that contract; DecodeActiveVisitors reads the way encoding/json does,
// which is what the live feed has always accepted.
//
// Every decoder has a fuzz test (`make fuzz`) and every record a round trip
// through its encoder and decoder; the hot paths (decode a rating, classify,
// append the shadow event; decode and re-encode a visit) do not allocate.
package wire
