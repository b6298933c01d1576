package wire

// Default topic names. Configuration can rename every topic; these are the
// names a deployment uses when it renames none, and each package's own
// Default*Topic constant is one of them.
const (
	// RatingsTopic is the default name of the topic that carries ratings
	// (Rating), the shadow agent's input.
	RatingsTopic = "dominate"
	// RatingsDeadLetterTopic is the default name of the topic that carries
	// the ratings the shadow agent refused, as dead letters.
	RatingsDeadLetterTopic = "dominate-dlq"
	// ShadowTopic is the default name of the topic that carries shadow
	// events (Shadow), which ClickHouse's shadow_stream table reads.
	ShadowTopic = "shadow"
	// ShadowDeadLetterTopic is the default name of the topic that carries
	// the shadow events that break CheckShadow, as the guard's dead letters.
	ShadowDeadLetterTopic = "shadow-dlq"
	// VisitsTopic is the default name of the topic that carries visits
	// (Visit), the visits agent's input.
	VisitsTopic = "visits"
	// RepartitionTopic is the default name of the topic that carries visits
	// keyed by their group (Repartitioned), from the visits agent to the
	// windows agent.
	RepartitionTopic = "visits-repartition"
	// VisitsDeadLetterTopic is the default name of the topic that carries
	// the visits the visits and windows agents refused, as dead letters.
	VisitsDeadLetterTopic = "visits-dlq"
	// ActiveVisitorsTopic is the default name of the topic that carries the
	// counts of closed windows (ActiveVisitors), which ClickHouse's
	// active_visitors_stream table and the live feed read.
	ActiveVisitorsTopic = "active-visitors"
	// ActiveVisitorsDeadLetterTopic is the default name of the topic that
	// carries the counts that break CheckActiveVisitors, as the guard's
	// dead letters.
	ActiveVisitorsDeadLetterTopic = "active-visitors-dlq"
)
