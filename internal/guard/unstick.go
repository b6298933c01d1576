package guard

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/domination/domination/agents"
	"github.com/domination/domination/wire"
)

// lead joins the leader group and, in every generation in which this worker
// holds the leader topic's partition, watches and unsticks the tables.
func (g *Guard) lead(ctx context.Context) error {
	cg, err := kafka.NewConsumerGroup(kafka.ConsumerGroupConfig{
		ID:                g.cfg.LeaderGroup,
		Brokers:           g.cfg.Brokers,
		Dialer:            g.d.Dialer,
		Topics:            []string{g.cfg.LeaderTopic},
		HeartbeatInterval: 2 * time.Second,
		SessionTimeout:    10 * time.Second,
		RebalanceTimeout:  10 * time.Second,
		JoinGroupBackoff:  time.Second,
		StartOffset:       kafka.FirstOffset,
		Timeout:           10 * time.Second,
	})
	if err != nil {
		return fmt.Errorf("guard: join leader group: %w", err)
	}
	defer cg.Close()
	for {
		gen, err := cg.Next(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			g.log.Warn("guard: leader group generation failed; retrying", "err", err)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(time.Second):
			}
			continue
		}
		for _, a := range gen.Assignments[g.cfg.LeaderTopic] {
			if a.ID == 0 {
				gen.Start(func(gctx context.Context) { g.leadGeneration(gctx, gen) })
			}
		}
	}
}

// leadGeneration is the leader's work for one generation.
func (g *Guard) leadGeneration(ctx context.Context, gen *kafka.Generation) {
	g.m.leader.Set(1)
	defer g.m.leader.Set(0)
	g.log.Info("guard: leading", "generation", gen.ID)
	l := &leader{g: g, gen: gen, seen: map[stuckKey]*stuck{}}
	if err := l.recover(ctx); err != nil && ctx.Err() == nil {
		g.log.Error("guard: attach tables a previous leader left detached", "err", err)
	}
	t := time.NewTicker(g.cfg.Interval)
	defer t.Stop()
	for {
		for _, tb := range g.cfg.Tables {
			if err := l.watch(ctx, tb, time.Now()); err != nil && ctx.Err() == nil {
				g.log.Warn("guard: watch engine table", "table", tb.Store, "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

type stuckKey struct {
	table     string
	partition int
}

// stuck is what the leader remembers of one engine partition.
type stuck struct {
	offset   int64     // committed offset last seen
	since    time.Time // when it was first seen at offset with records waiting
	checked  int64     // records from offset up to here keep the contract
	reported bool      // the valid stall at offset was logged
}

type leader struct {
	g    *Guard
	gen  *kafka.Generation
	seen map[stuckKey]*stuck
}

// engineOffsets returns, per partition of t.Topic, the engine group's
// committed offset and the partition's end.
func (l *leader) engineOffsets(ctx context.Context, t Table) (committed, end map[int]int64, err error) {
	admin := l.g.d.Admin
	md, err := admin.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{t.Topic}})
	if err != nil {
		return nil, nil, fmt.Errorf("describe topic %s: %w", t.Topic, err)
	}
	if len(md.Topics) != 1 || md.Topics[0].Error != nil {
		return nil, nil, fmt.Errorf("describe topic %s: not found", t.Topic)
	}
	var parts []int
	var reqs []kafka.OffsetRequest
	for _, p := range md.Topics[0].Partitions {
		parts = append(parts, p.ID)
		reqs = append(reqs, kafka.LastOffsetOf(p.ID))
	}
	lo, err := admin.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{t.Topic: reqs}})
	if err != nil {
		return nil, nil, fmt.Errorf("list offsets of %s: %w", t.Topic, err)
	}
	end = map[int]int64{}
	for _, p := range lo.Topics[t.Topic] {
		if p.Error != nil {
			return nil, nil, fmt.Errorf("list offsets of %s/%d: %w", t.Topic, p.Partition, p.Error)
		}
		end[p.Partition] = p.LastOffset
	}
	of, err := admin.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: t.Group, Topics: map[string][]int{t.Topic: parts}})
	if err != nil {
		return nil, nil, fmt.Errorf("fetch offsets of group %s: %w", t.Group, err)
	}
	if of.Error != nil {
		return nil, nil, fmt.Errorf("fetch offsets of group %s: %w", t.Group, of.Error)
	}
	committed = map[int]int64{}
	for _, p := range of.Topics[t.Topic] {
		if p.Error == nil {
			committed[p.Partition] = p.CommittedOffset
		}
	}
	return committed, end, nil
}

// watch reads t's engine offsets once and unsticks the partitions that have
// kept theirs, with records waiting, for SkipAfter.
func (l *leader) watch(ctx context.Context, t Table, now time.Time) error {
	committed, end, err := l.engineOffsets(ctx, t)
	if err != nil {
		return err
	}
	due := l.track(t.Store, committed, end, now)
	if len(due) == 0 {
		return nil
	}
	var plans []plan
	for _, p := range due {
		s := l.seen[stuckKey{t.Store, p}]
		var pl *plan
		if s.checked < end[p] {
			var err error
			if pl, s.checked, err = l.find(ctx, t, p, s.offset, s.checked, end[p]); err != nil {
				return err
			}
		}
		if pl == nil {
			if !s.reported && s.checked >= end[p] {
				s.reported = true
				l.g.m.validStalls.WithLabelValues(t.Store).Inc()
				l.g.log.Warn("guard: the engine is stalled with only valid records waiting on this partition; not skipping any",
					"table", t.Store, "topic", t.Topic, "partition", p, "offset", s.offset, "since", s.since)
			}
			continue
		}
		plans = append(plans, *pl)
	}
	if len(plans) == 0 {
		return nil
	}
	if err := l.skip(ctx, t, plans); err != nil {
		return err
	}
	for _, pl := range plans {
		delete(l.seen, stuckKey{t.Store, pl.partition})
	}
	return nil
}

// track records one reading of a table's engine offsets and returns, in
// order, the partitions that have had records waiting at the same committed
// offset for SkipAfter. A partition that moved, or has nothing waiting,
// starts over.
func (l *leader) track(store string, committed, end map[int]int64, now time.Time) []int {
	var due []int
	for p, e := range end {
		c, ok := committed[p]
		k := stuckKey{store, p}
		if !ok || c < 0 || c >= e {
			delete(l.seen, k)
			continue
		}
		s := l.seen[k]
		if s == nil || s.offset != c {
			l.seen[k] = &stuck{offset: c, since: now, checked: c}
			continue
		}
		if now.Sub(s.since) >= l.g.cfg.SkipAfter {
			due = append(due, p)
		}
	}
	slices.Sort(due)
	return due
}

// plan is how to move one partition past its bad record.
type plan struct {
	partition int
	bad       kafka.Message   // the first record breaking the contract
	why       error           // how it breaks it
	before    []kafka.Message // the valid records between the committed offset and bad
}

// find reads partition p of t from offset scan towards end, at most MaxScan
// records, for the first record that breaks the contract. The records from
// committed up to scan are known to keep it. It returns the plan for that
// record, or nil, and the offset up to which every record keeps the
// contract.
func (l *leader) find(ctx context.Context, t Table, p int, committed, scan, end int64) (*plan, int64, error) {
	last := min(end, scan+int64(l.g.cfg.MaxScan))
	var bad *kafka.Message
	var why error
	checked := scan
	err := l.read(ctx, t.Topic, p, scan, last, func(m kafka.Message) bool {
		if err := t.Check(m.Value); err != nil {
			bad, why = &m, err
			return false
		}
		checked = m.Offset + 1
		return true
	})
	if err != nil || bad == nil {
		return nil, checked, err
	}
	pl := &plan{partition: p, bad: *bad, why: why}
	err = l.read(ctx, t.Topic, p, committed, bad.Offset, func(m kafka.Message) bool {
		pl.before = append(pl.before, m)
		return true
	})
	return pl, checked, err
}

// read hands each record of topic's partition p from offset from up to (not
// including) to to each, until each returns false.
func (l *leader) read(ctx context.Context, topic string, p int, from, to int64, each func(kafka.Message) bool) error {
	if from >= to {
		return nil
	}
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers: l.g.cfg.Brokers, Dialer: l.g.d.Dialer, Topic: topic, Partition: p,
		MinBytes: 1, MaxBytes: 16 << 20, MaxWait: 500 * time.Millisecond, QueueCapacity: 1024,
	})
	defer r.Close()
	if err := r.SetOffset(from); err != nil {
		return fmt.Errorf("read %s/%d at %d: %w", topic, p, from, err)
	}
	for off := from; off < to; {
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		m, err := r.ReadMessage(rctx)
		cancel()
		if err != nil {
			return fmt.Errorf("read %s/%d at %d: %w", topic, p, off, err)
		}
		if m.Offset >= to || !each(m) {
			return nil
		}
		off = m.Offset + 1
	}
	return nil
}

// detachedMark is the leader partition's commit metadata while tables are
// detached: "detached:<engine>,<view>".
const detachedMark = "detached:"

// skip moves t's engine group past each plan's bad record.
func (l *leader) skip(ctx context.Context, t Table, plans []plan) error {
	g := l.g
	for _, pl := range plans {
		g.log.Warn("guard: the engine is stalled on a record that breaks the contract; skipping it",
			"table", t.Store, "topic", t.Topic, "partition", pl.partition, "offset", pl.bad.Offset,
			"reason", pl.why.Error(), "valid_before_it", len(pl.before))
	}
	if err := l.account(ctx, t, plans); err != nil {
		return err
	}
	if err := l.mark(ctx, detachedMark+t.Engine+","+t.View); err != nil {
		return err
	}
	// From here on the tables are attached again whatever happens, also if
	// the generation ends: under a context of their own.
	attachCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	err := l.detachAndCommit(ctx, t, plans)
	if aerr := l.attach(attachCtx, t); aerr != nil {
		return errors.Join(err, aerr)
	}
	if err != nil {
		return err
	}
	if err := l.mark(attachCtx, ""); err != nil {
		g.log.Warn("guard: clear the detached mark", "err", err)
	}
	for _, pl := range plans {
		g.m.skipped.WithLabelValues(t.Store, string(wire.ReasonContract)).Inc()
		g.log.Info("guard: engine moved past the bad record", "table", t.Store, "partition", pl.partition, "offset", pl.bad.Offset)
	}
	return nil
}

// account records each bad record in the errors table and the dead-letter
// topic, and produces again the valid records before it.
func (l *leader) account(ctx context.Context, t Table, plans []plan) error {
	var out []kafka.Message
	skipped := make([]Skipped, 0, len(plans))
	for _, pl := range plans {
		m := pl.bad
		skipped = append(skipped, Skipped{Partition: pl.partition, Offset: m.Offset, Value: m.Value, Reason: pl.why.Error()})
		out = append(out, agents.DeadLetter(t.DeadLetterTopic, AgentName+"-"+t.Store, &m, wire.ReasonContract, pl.why.Error()))
		for _, v := range pl.before {
			out = append(out, kafka.Message{Topic: t.Topic, Key: v.Key, Value: v.Value, Headers: v.Headers, Time: v.Time})
		}
	}
	if err := NewEngine(l.g.d.CH, t).NoteSkipped(ctx, time.Now(), skipped...); err != nil {
		return err
	}
	if err := l.g.d.Writer.WriteMessages(ctx, out...); err != nil {
		return fmt.Errorf("dead-letter skipped records of %s: %w", t.Topic, err)
	}
	return nil
}

// detachAndCommit takes the engine out of its group and commits each plan's
// bad offset + 1.
func (l *leader) detachAndCommit(ctx context.Context, t Table, plans []plan) error {
	if err := NewEngine(l.g.d.CH, t).Detach(ctx); err != nil {
		return err
	}
	if err := l.waitEmpty(ctx, t.Group); err != nil {
		return err
	}
	commits := make([]kafka.OffsetCommit, 0, len(plans))
	for _, pl := range plans {
		commits = append(commits, kafka.OffsetCommit{Partition: pl.partition, Offset: pl.bad.Offset + 1})
	}
	res, err := l.g.d.Admin.OffsetCommit(ctx, &kafka.OffsetCommitRequest{
		GroupID: t.Group, GenerationID: -1, Topics: map[string][]kafka.OffsetCommit{t.Topic: commits},
	})
	if err != nil {
		return fmt.Errorf("commit past the bad records of group %s: %w", t.Group, err)
	}
	for _, ps := range res.Topics {
		for _, p := range ps {
			if p.Error != nil {
				return fmt.Errorf("commit past the bad record of group %s on %s/%d: %w", t.Group, t.Topic, p.Partition, p.Error)
			}
		}
	}
	return nil
}

// waitEmpty waits until group has no member.
func (l *leader) waitEmpty(ctx context.Context, group string) error {
	deadline := time.Now().Add(time.Minute)
	for {
		res, err := l.g.d.Admin.DescribeGroups(ctx, &kafka.DescribeGroupsRequest{GroupIDs: []string{group}})
		if err == nil && len(res.Groups) == 1 && res.Groups[0].Error == nil && len(res.Groups[0].Members) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("wait for group %s to have no member: still %v after a minute", group, describe(res, err))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func describe(res *kafka.DescribeGroupsResponse, err error) string {
	switch {
	case err != nil:
		return err.Error()
	case len(res.Groups) != 1:
		return "no answer"
	case res.Groups[0].Error != nil:
		return res.Groups[0].Error.Error()
	}
	return fmt.Sprintf("%d members", len(res.Groups[0].Members))
}

// attach attaches t's engine table, then its view, where they are missing.
func (l *leader) attach(ctx context.Context, t Table) error {
	return NewEngine(l.g.d.CH, t).Attach(ctx)
}

// mark commits meta as the leader partition's offset metadata.
func (l *leader) mark(ctx context.Context, meta string) error {
	res, err := l.g.d.Admin.OffsetCommit(ctx, &kafka.OffsetCommitRequest{
		GroupID: l.g.cfg.LeaderGroup, GenerationID: int(l.gen.ID), MemberID: l.gen.MemberID,
		Topics: map[string][]kafka.OffsetCommit{l.g.cfg.LeaderTopic: {{Partition: 0, Offset: 0, Metadata: meta}}},
	})
	if err != nil {
		return fmt.Errorf("guard: record leader state: %w", err)
	}
	for _, ps := range res.Topics {
		for _, p := range ps {
			if p.Error != nil {
				return fmt.Errorf("guard: record leader state: %w", p.Error)
			}
		}
	}
	return nil
}

// recover attaches the tables that the leader partition's metadata says a
// previous leader detached and did not attach again.
func (l *leader) recover(ctx context.Context) error {
	of, err := l.g.d.Admin.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: l.g.cfg.LeaderGroup, Topics: map[string][]int{l.g.cfg.LeaderTopic: {0}}})
	if err != nil {
		return err
	}
	for _, p := range of.Topics[l.g.cfg.LeaderTopic] {
		meta, ok := strings.CutPrefix(p.Metadata, detachedMark)
		if !ok {
			continue
		}
		for _, t := range l.g.cfg.Tables {
			if meta == t.Engine+","+t.View {
				l.g.log.Warn("guard: a previous leader left tables detached; attaching them", "engine", t.Engine, "view", t.View)
				if err := l.attach(ctx, t); err != nil {
					return err
				}
			}
		}
		return l.mark(ctx, "")
	}
	return nil
}
