// Package agents holds domination's stream agents: the pieces that read a
// record from one Kafka topic, decide something about it and write the
// result to another. The first is the shadow agent, which classifies
// ratings; a visits agent will follow.
//
// # The shadow agent
//
// The shadow agent reads the topic "dominate", whose records are JSON
// objects such as
//
//	{"rating": 42, "unique_id": "0b8c9f0e-3a6f-4c55-9b1e-8d7c2f1a0e11"}
//
// and writes to the topic "shadow" one JSON object per rating:
//
//	{"type":"Sha","unique_id":"0b8c9f0e-3a6f-4c55-9b1e-8d7c2f1a0e11","emit_timestamp":1700000000,"rating":42}
//
// The type is ShaDow for a multiple of 15, else Sha for a multiple of 3,
// else Dow for a multiple of 5, else Incompatible (see Classify). A record
// that cannot be decoded goes to a dead-letter topic instead, tagged with a
// Reason.
//
// # The codec
//
// DecodeRating, Classify and AppendShadow are the agent's hot path: pure
// functions without I/O that together handle a typical record in well under
// a microsecond without allocating. DecodeRating is a small, strict JSON
// scanner rather than encoding/json, which costs about a microsecond and
// several allocations per record; its rules (which inputs are rejected and
// with which Reason) are documented on the function. A decoded Rating may
// alias the record's bytes, so it must be used before the consumer reuses
// them.
package agents
