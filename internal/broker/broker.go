// Package broker connects domination to Kafka: one Config for the broker
// list, TLS and SASL, and the few administrative calls the product needs
// (ensure topics exist, seed a consumer group's offsets).
package broker

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/segmentio/kafka-go/sasl/scram"

	"github.com/domination/domination/internal/hostport"
	"github.com/domination/domination/internal/tlsconfig"
)

// SASL mechanisms accepted in Config.SASL.Mechanism.
const (
	SASLNone        = ""
	SASLPlain       = "PLAIN"
	SASLScramSHA256 = "SCRAM-SHA-256"
	SASLScramSHA512 = "SCRAM-SHA-512"
)

// SASL holds the credentials for SASL authentication.
type SASL struct {
	// Mechanism is one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 (case does
	// not matter), or empty for none. Default: none.
	Mechanism string
	Username  string
	// Password is never logged nor put in an error.
	Password string
}

// Defaults of Config.
const (
	// DefaultBroker is the one bootstrap address of a local cluster.
	DefaultBroker = "127.0.0.1:9092"
	// DefaultClientID names the process in the brokers' logs.
	DefaultClientID = "domination"
	// DefaultDialTimeout bounds connecting to one broker.
	DefaultDialTimeout = 10 * time.Second
)

// Partition counts of the topics domination creates.
const (
	// SharedPartitions is for the topics whose records the workers share
	// out among themselves: the inputs, shadow and the repartition topic.
	SharedPartitions = 4
	// SinglePartition is for the topics read in one place: the windowed
	// counts (collated in one place), the dead letters and the guard's
	// leader topic.
	SinglePartition = 1
)

// Config is how to reach the Kafka cluster.
type Config struct {
	// Brokers are the bootstrap addresses, host:port. Default
	// [DefaultBroker].
	Brokers []string
	// ClientID names this process in the brokers' logs and quotas.
	// Default DefaultClientID.
	ClientID string
	// DialTimeout bounds connecting to one broker. Default
	// DefaultDialTimeout.
	DialTimeout time.Duration
	// TLS encrypts the connections when on.
	TLS tlsconfig.Config
	// SASL authenticates the connections when a mechanism is set.
	SASL SASL
	// Replication is how the topics the product creates are replicated.
	// Default: automatic (see Replication).
	Replication Replication
}

// WithDefaults returns c with its zero (and negative) fields set to the
// documented defaults, and the SASL mechanism in upper case.
func (c Config) WithDefaults() Config {
	if len(c.Brokers) == 0 {
		c.Brokers = []string{DefaultBroker}
	}
	c.ClientID = cmp.Or(c.ClientID, DefaultClientID)
	c.DialTimeout = cmp.Or(max(c.DialTimeout, 0), DefaultDialTimeout)
	c.SASL.Mechanism = strings.ToUpper(strings.TrimSpace(c.SASL.Mechanism))
	return c
}

// Validate reports the first setting that cannot work. It applies no
// defaults: call it on c.WithDefaults().
func (c Config) Validate() error {
	if err := hostport.CheckAll("kafka broker", c.Brokers); err != nil {
		return err
	}
	switch c.SASL.Mechanism {
	case SASLNone:
	case SASLPlain, SASLScramSHA256, SASLScramSHA512:
		if c.SASL.Username == "" {
			return fmt.Errorf("kafka sasl %s needs a username", c.SASL.Mechanism)
		}
	default:
		return fmt.Errorf("kafka sasl mechanism %q is not one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512", c.SASL.Mechanism)
	}
	if err := c.TLS.Validate(); err != nil {
		return fmt.Errorf("kafka %w", err)
	}
	return c.Replication.Validate()
}

func (c Config) mechanism() (sasl.Mechanism, error) {
	switch c.SASL.Mechanism {
	case SASLNone:
		return nil, nil
	case SASLPlain:
		return plain.Mechanism{Username: c.SASL.Username, Password: c.SASL.Password}, nil
	case SASLScramSHA256:
		return scram.Mechanism(scram.SHA256, c.SASL.Username, c.SASL.Password)
	case SASLScramSHA512:
		return scram.Mechanism(scram.SHA512, c.SASL.Username, c.SASL.Password)
	}
	return nil, fmt.Errorf("kafka sasl mechanism %q is not supported", c.SASL.Mechanism)
}

// security returns c with its defaults, validated, and its TLS settings and
// SASL mechanism.
func (c Config) security() (Config, *tls.Config, sasl.Mechanism, error) {
	c = c.WithDefaults()
	if err := c.Validate(); err != nil {
		return c, nil, nil, err
	}
	tc, err := c.TLS.Build()
	if err != nil {
		return c, nil, nil, fmt.Errorf("kafka %w", err)
	}
	mech, err := c.mechanism()
	return c, tc, mech, err
}

// Dialer returns a dialer for consumer groups and partition readers.
func (c Config) Dialer() (*kafka.Dialer, error) {
	c, tc, mech, err := c.security()
	if err != nil {
		return nil, err
	}
	return &kafka.Dialer{
		ClientID:      c.ClientID,
		Timeout:       c.DialTimeout,
		DualStack:     true,
		TLS:           tc,
		SASLMechanism: mech,
	}, nil
}

// Transport returns a transport for writers and the admin client.
func (c Config) Transport() (*kafka.Transport, error) {
	c, tc, mech, err := c.security()
	if err != nil {
		return nil, err
	}
	return &kafka.Transport{
		ClientID:    c.ClientID,
		DialTimeout: c.DialTimeout,
		IdleTimeout: 30 * time.Second,
		MetadataTTL: 10 * time.Second,
		TLS:         tc,
		SASL:        mech,
	}, nil
}

// Client returns an admin client over a new transport.
func (c Config) Client() (*kafka.Client, error) {
	t, err := c.Transport()
	if err != nil {
		return nil, err
	}
	c = c.WithDefaults()
	return &kafka.Client{Addr: kafka.TCP(c.Brokers...), Transport: t, Timeout: 30 * time.Second}, nil
}

// Topic describes a topic the product needs.
type Topic struct {
	Name       string
	Partitions int
}

var topicName = regexp.MustCompile(`^[a-zA-Z0-9._-]{1,249}$`)

// ValidTopic reports whether name is a legal Kafka topic name.
func ValidTopic(name string) error {
	if !topicName.MatchString(name) || name == "." || name == ".." {
		return fmt.Errorf("%q is not a valid Kafka topic name (letters, digits, '.', '_', '-', at most 249)", name)
	}
	return nil
}

// Ping checks that a broker answers a metadata request.
func Ping(ctx context.Context, c *kafka.Client) error {
	if _, err := c.Metadata(ctx, &kafka.MetadataRequest{}); err != nil {
		return fmt.Errorf("reach kafka at %s: %w", c.Addr, err)
	}
	return nil
}

// EnsureTopics creates the topics that do not exist yet, replicated as the
// automatic Replication decides. Existing topics are left as they are: their
// partition counts are not changed.
func EnsureTopics(ctx context.Context, c *kafka.Client, topics ...Topic) error {
	return Replication{}.EnsureTopics(ctx, c, topics...)
}

// waitForLeaders polls metadata until every partition of the topics has a
// leader, so that the first produce after creation does not fail.
func waitForLeaders(ctx context.Context, c *kafka.Client, names []string) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		md, err := c.Metadata(ctx, &kafka.MetadataRequest{Topics: names})
		if err == nil && allLed(md, len(names)) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("topics %s have no leader after 30s", strings.Join(names, ","))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func allLed(md *kafka.MetadataResponse, want int) bool {
	if len(md.Topics) != want {
		return false
	}
	for _, t := range md.Topics {
		if t.Error != nil || len(t.Partitions) == 0 {
			return false
		}
		for _, p := range t.Partitions {
			if p.Error != nil || p.Leader.Host == "" {
				return false
			}
		}
	}
	return true
}

// ErrGroupActive is returned by SeedGroupAtStart when the group has live
// members, whose own offsets then stand.
var ErrGroupActive = errors.New("consumer group has active members")

// SeedGroupAtStart commits, for a consumer group that has no committed offset
// on a partition of topic, the partition's earliest offset. A consumer that
// joins later then reads the topic from its start instead of its end.
//
// ClickHouse's Kafka engine resets a new group to the latest offset, so rows
// produced before its table existed would be skipped: `migrate up` seeds the
// engine's groups with this. Partitions that already have an offset are left
// alone. The group must have no active members.
func SeedGroupAtStart(ctx context.Context, c *kafka.Client, group, topic string) error {
	return RetryTemporary(ctx, func() error { return seedGroupAtStart(ctx, c, group, topic) })
}

// RetryTemporary calls fn until it returns nil or an error Kafka does not
// call temporary, at most 10 times over about 9 seconds, and returns its
// last error. A topic created moments ago may still name no leader, or an
// old one, and Kafka answers such requests with a temporary error: a
// request that follows a topic's creation goes through this.
func RetryTemporary(ctx context.Context, fn func() error) error {
	var err error
	for attempt := 1; ; attempt++ {
		if err = fn(); err == nil || attempt == 10 || !Temporary(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(time.Duration(attempt) * 200 * time.Millisecond):
		}
	}
}

// Temporary reports whether err holds a Kafka error that the protocol
// calls retriable.
func Temporary(err error) bool {
	var ke kafka.Error
	return errors.As(err, &ke) && ke.Temporary()
}

func seedGroupAtStart(ctx context.Context, c *kafka.Client, group, topic string) error {
	md, err := c.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		return fmt.Errorf("describe topic %s: %w", topic, err)
	}
	if len(md.Topics) != 1 || md.Topics[0].Error != nil {
		return fmt.Errorf("describe topic %s: not found", topic)
	}
	parts := make([]int, 0, len(md.Topics[0].Partitions))
	for _, p := range md.Topics[0].Partitions {
		parts = append(parts, p.ID)
	}
	fetched, err := c.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: parts}})
	if err != nil {
		return fmt.Errorf("fetch offsets of group %s: %w", group, err)
	}
	if fetched.Error != nil {
		return fmt.Errorf("fetch offsets of group %s: %w", group, fetched.Error)
	}
	var missing []kafka.OffsetRequest
	for _, p := range fetched.Topics[topic] {
		if p.CommittedOffset < 0 {
			missing = append(missing, kafka.FirstOffsetOf(p.Partition))
		}
	}
	if len(missing) == 0 {
		return nil
	}
	first, err := c.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: missing}})
	if err != nil {
		return fmt.Errorf("list offsets of %s: %w", topic, err)
	}
	commits := make([]kafka.OffsetCommit, 0, len(missing))
	for _, p := range first.Topics[topic] {
		if p.Error != nil {
			return fmt.Errorf("list offsets of %s/%d: %w", topic, p.Partition, p.Error)
		}
		commits = append(commits, kafka.OffsetCommit{Partition: p.Partition, Offset: p.FirstOffset})
	}
	res, err := c.OffsetCommit(ctx, &kafka.OffsetCommitRequest{
		GroupID: group, GenerationID: -1, Topics: map[string][]kafka.OffsetCommit{topic: commits},
	})
	if err != nil {
		return fmt.Errorf("seed offsets of group %s: %w", group, err)
	}
	for _, ps := range res.Topics {
		for _, p := range ps {
			if errors.Is(p.Error, kafka.UnknownMemberId) || errors.Is(p.Error, kafka.IllegalGeneration) || errors.Is(p.Error, kafka.RebalanceInProgress) {
				// The group has live members: they own its offsets.
				return ErrGroupActive
			}
			if p.Error != nil {
				return fmt.Errorf("seed offset of group %s on %s/%d: %w", group, topic, p.Partition, p.Error)
			}
		}
	}
	return nil
}
