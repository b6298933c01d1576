package stream

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
)

// leaveTimeout bounds leaving the group when the runner stops.
const leaveTimeout = 5 * time.Second

// partitionWatchInterval is how often the group leader checks the input
// topic's partition count, so that added partitions are assigned.
const partitionWatchInterval = 5 * time.Second

// member is the runner's membership in its consumer group. It speaks the
// classic group protocol itself (JoinGroup, SyncGroup, Heartbeat,
// LeaveGroup) rather than through kafka-go's ConsumerGroup, which ends a
// generation at the first failed heartbeat: here a heartbeat that cannot
// reach the coordinator is retried, and a generation ends only when the
// coordinator says so (a rebalance, an unknown member, an old generation).
type member struct {
	r  *Runner
	id string // member id, kept across generations
}

// generation is one joined generation of the group.
type generation struct {
	id       int
	memberID string
	leader   bool
	assigned []int
	// parts is the input topic's partition count when the leader assigned
	// them (0 for other members).
	parts int
	// ctx ends when the generation does (end) or the runner stops.
	ctx context.Context
	end context.CancelCauseFunc
}

// errGenerationOver is the cause of a generation the coordinator ended.
var errGenerationOver = errors.New("generation ended by the group coordinator")

// generationOver reports whether a group error means the generation is no
// longer current, so that retrying in it is pointless.
func generationOver(err error) bool {
	return errors.Is(err, kafka.RebalanceInProgress) || errors.Is(err, kafka.IllegalGeneration) ||
		errors.Is(err, kafka.UnknownMemberId) || errors.Is(err, kafka.FencedInstanceID)
}

// join joins the next generation: JoinGroup (again with the member id the
// coordinator hands out, when it requires one), the leader's assignment of
// the topic's partitions by range, and SyncGroup.
func (m *member) join(ctx context.Context) (*generation, error) {
	cfg := m.r.cfg
	// The coordinator holds a JoinGroup until every member has joined, up
	// to the rebalance timeout.
	jctx, cancel := context.WithTimeout(ctx, cfg.RebalanceTimeout+cfg.SessionTimeout)
	defer cancel()
	var res *kafka.JoinGroupResponse
	for attempt := 0; ; attempt++ {
		var err error
		res, err = m.r.client.JoinGroup(jctx, &kafka.JoinGroupRequest{
			GroupID:          cfg.GroupID,
			SessionTimeout:   cfg.SessionTimeout,
			RebalanceTimeout: cfg.RebalanceTimeout,
			MemberID:         m.id,
			ProtocolType:     "consumer",
			Protocols: []kafka.GroupProtocol{{
				Name:     kafka.RangeGroupBalancer{}.ProtocolName(),
				Metadata: kafka.GroupProtocolSubscription{Topics: []string{cfg.Topic}},
			}},
		})
		if err != nil {
			return nil, fmt.Errorf("join group %s: %w", cfg.GroupID, err)
		}
		if errors.Is(res.Error, kafka.MemberIDRequired) && attempt == 0 {
			m.id = res.MemberID
			continue
		}
		if res.Error != nil {
			if errors.Is(res.Error, kafka.UnknownMemberId) {
				m.id = ""
			}
			return nil, fmt.Errorf("join group %s: %w", cfg.GroupID, res.Error)
		}
		break
	}
	m.id = res.MemberID
	gen := &generation{id: res.GenerationID, memberID: res.MemberID, leader: res.LeaderID == res.MemberID}

	var assignments []kafka.SyncGroupRequestAssignment
	if gen.leader {
		parts, err := m.partitions(jctx)
		if err != nil {
			return nil, err
		}
		gen.parts = len(parts)
		members := make([]kafka.GroupMember, len(res.Members))
		for i, mb := range res.Members {
			members[i] = kafka.GroupMember{ID: mb.ID, Topics: mb.Metadata.Topics}
		}
		plan := kafka.RangeGroupBalancer{}.AssignGroups(members, parts)
		for _, mb := range res.Members {
			assignments = append(assignments, kafka.SyncGroupRequestAssignment{
				MemberID:   mb.ID,
				Assignment: kafka.GroupProtocolAssignment{AssignedPartitions: plan[mb.ID]},
			})
		}
	}
	sres, err := m.r.client.SyncGroup(jctx, &kafka.SyncGroupRequest{
		GroupID: cfg.GroupID, GenerationID: gen.id, MemberID: gen.memberID,
		ProtocolType: "consumer", ProtocolName: res.ProtocolName, Assignments: assignments,
	})
	if err == nil {
		err = sres.Error
	}
	if err != nil {
		if errors.Is(err, kafka.UnknownMemberId) {
			m.id = ""
		}
		return nil, fmt.Errorf("sync group %s: %w", cfg.GroupID, err)
	}
	gen.assigned = append(gen.assigned, sres.Assignment.AssignedPartitions[cfg.Topic]...)
	sort.Ints(gen.assigned)
	return gen, nil
}

// partitions lists the input topic's partitions.
func (m *member) partitions(ctx context.Context) ([]kafka.Partition, error) {
	res, err := m.r.client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{m.r.cfg.Topic}})
	if err != nil {
		return nil, fmt.Errorf("read partitions of %s: %w", m.r.cfg.Topic, err)
	}
	for _, t := range res.Topics {
		if t.Name == m.r.cfg.Topic {
			if t.Error != nil {
				return nil, fmt.Errorf("read partitions of %s: %w", m.r.cfg.Topic, t.Error)
			}
			return t.Partitions, nil
		}
	}
	return nil, fmt.Errorf("read partitions of %s: topic not in the metadata", m.r.cfg.Topic)
}

// heartbeat keeps the generation alive until ctx ends. A heartbeat that
// fails to reach the coordinator (an outage) is retried at the next
// interval; the generation ends only when the coordinator answers that it
// is over.
func (m *member) heartbeat(ctx context.Context, gen *generation) {
	cfg := m.r.cfg
	t := time.NewTicker(cfg.HeartbeatInterval)
	defer t.Stop()
	failures := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		hctx, cancel := context.WithTimeout(ctx, cfg.SessionTimeout)
		res, err := m.r.client.Heartbeat(hctx, &kafka.HeartbeatRequest{GroupID: cfg.GroupID, GenerationID: int32(gen.id), MemberID: gen.memberID})
		cancel()
		if err == nil {
			err = heartbeatError(res)
		}
		switch {
		case err == nil:
			if failures > 0 {
				m.r.log.Info("heartbeat recovered", "generation", gen.id, "failures", failures)
			}
			failures = 0
		case generationOver(err):
			if errors.Is(err, kafka.UnknownMemberId) {
				m.id = ""
			}
			m.r.log.Info("generation ended by the coordinator", "generation", gen.id, "reason", err)
			gen.end(errGenerationOver)
			return
		case ctx.Err() != nil:
			return
		default:
			failures++
			m.r.log.Warn("heartbeat failed; keeping the generation and retrying", "generation", gen.id, "attempt", failures, "err", err)
		}
	}
}

// heartbeatError is the error a heartbeat response carries. kafka-go
// (v0.4.51) decodes Heartbeat responses of version 1 and later with
// error_code and throttle_time_ms in the wrong order, so Error stays nil
// and, with no throttling, the error code lands in Throttle as
// milliseconds; it is read back from there.
func heartbeatError(res *kafka.HeartbeatResponse) error {
	if res.Error != nil {
		return res.Error
	}
	if code := res.Throttle.Milliseconds() & 0xffff; code != 0 {
		return kafka.Error(code)
	}
	return nil
}

// watchPartitions ends the generation when the leader sees the input topic
// gain partitions, so that the next generation assigns them.
func (m *member) watchPartitions(ctx context.Context, gen *generation) {
	t := time.NewTicker(partitionWatchInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		parts, err := m.partitions(ctx)
		if err == nil && len(parts) != gen.parts {
			m.r.log.Info("the input topic's partitions changed; rejoining", "was", gen.parts, "now", len(parts))
			gen.end(errGenerationOver)
			return
		}
	}
}

// leave leaves the group, within leaveTimeout.
func (m *member) leave() {
	if m.id == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), leaveTimeout)
	defer cancel()
	res, err := m.r.client.LeaveGroup(ctx, &kafka.LeaveGroupRequest{GroupID: m.r.cfg.GroupID, Members: []kafka.LeaveGroupRequestMember{{ID: m.id}}})
	if err == nil {
		err = res.Error
	}
	if err != nil {
		m.r.log.Warn("leave consumer group", "err", err)
	}
	m.id = ""
}

// drainContext returns a context that ends d after stop does (or when the
// returned release is called), so that the batch in hand may finish, and
// writes still blocked then are cancelled.
func drainContext(stop context.Context, d time.Duration) (context.Context, func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var mu sync.Mutex
	var timer *time.Timer
	released := false
	unregister := context.AfterFunc(stop, func() {
		mu.Lock()
		defer mu.Unlock()
		if !released {
			timer = time.AfterFunc(d, cancel)
		}
	})
	return ctx, func() {
		unregister()
		mu.Lock()
		released = true
		if timer != nil {
			timer.Stop()
		}
		mu.Unlock()
		cancel()
	}
}
