package wire

import "fmt"

// Reason says why an input was dead-lettered. It is a short, stable,
// snake_case string, fit for a metric label and a Kafka header value.
type Reason string

// The reasons, as a dead-letter record's dlq.reason header carries them.
// The first six are those DecodeRating rejects an input for; it checks them
// in this order and reports the first that applies, so a message that is
// both too large and malformed is message_too_large, and a syntax error
// anywhere outranks a problem with a field.
const (
	// ReasonTooLarge: the whole message is over
	// RatingLimits.MaxMessageBytes. Checked before parsing.
	ReasonTooLarge Reason = "message_too_large"
	// ReasonMalformedJSON: not a JSON object, a syntax error, trailing
	// bytes after the object, invalid UTF-8 in a string, nesting deeper
	// than 32, or a second "rating" or "unique_id" key (for a visit: a
	// second "id", "account_id", "store_id" or "timestamp").
	ReasonMalformedJSON Reason = "malformed_json"
	// ReasonMissingField: "rating" or "unique_id" is absent or null.
	ReasonMissingField Reason = "missing_field"
	// ReasonWrongType: "rating" is not a plain JSON integer (a string, a
	// boolean, a number with a fraction or an exponent such as 15.0 or
	// 1e2), or "unique_id" is not a string.
	ReasonWrongType Reason = "wrong_type"
	// ReasonOutOfRange: the rating is outside
	// [RatingLimits.MinRating, RatingLimits.MaxRating], including integers
	// too large for an int64.
	ReasonOutOfRange Reason = "out_of_range"
	// ReasonBadID: "unique_id" is empty, longer than
	// RatingLimits.MaxIDLen, contains a control character (U+0000–U+001F,
	// U+007F–U+009F), or contains an unpaired UTF-16 surrogate escape.
	ReasonBadID Reason = "bad_unique_id"

	// The reasons of the visit decoders and of the agents, besides
	// DecodeRating's.

	// ReasonBadTimestamp: a visit's timestamp (or a rating record's) is
	// before 2000, or a visit's is too far from the time Kafka recorded for
	// the message (VisitLimits.MaxFuture, MaxPast).
	ReasonBadTimestamp Reason = "bad_timestamp"
	// ReasonFutureTimestamp: a visit (or a rating record) is stamped more
	// than the maximum clock skew ahead of the wall clock of the worker that
	// reads it.
	ReasonFutureTimestamp Reason = "future_timestamp"
	// ReasonBadStoreID: store_id is empty, too long or not valid text.
	ReasonBadStoreID Reason = "bad_store_id"
	// ReasonLate: the visit's window had already closed when it arrived.
	ReasonLate Reason = "late"
	// ReasonOutputRejected: Kafka refused the output for good (too large).
	ReasonOutputRejected Reason = "output_rejected"
	// ReasonContract: an output-topic record breaks its topic's contract
	// (CheckShadow, CheckActiveVisitors).
	ReasonContract Reason = "contract"
)

// Reasons lists the reasons DecodeRating rejects an input for, in the
// order it checks them, so that metrics can be created with all their
// labels up front. Callers must not modify it.
var Reasons = []Reason{
	ReasonTooLarge,
	ReasonMalformedJSON,
	ReasonMissingField,
	ReasonWrongType,
	ReasonOutOfRange,
	ReasonBadID,
}

// DecodeError is the error the decoders return: why the input was
// rejected, and a human-readable detail such as "rating 101 outside
// 1..100" or "unexpected character 'x' at offset 12, want ',' or '}'".
// The detail gives offsets and lengths, never the unique_id itself.
type DecodeError struct {
	// Reason is the stable class of the problem.
	Reason Reason
	// Detail says what exactly was wrong, for logs and dead-letter headers.
	Detail string
}

// Error returns "<reason>: <detail>".
func (e *DecodeError) Error() string {
	return string(e.Reason) + ": " + e.Detail
}

func decodeErr(r Reason, format string, args ...any) *DecodeError {
	return &DecodeError{Reason: r, Detail: fmt.Sprintf(format, args...)}
}
