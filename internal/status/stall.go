package status

import "time"

// stallTracker remembers, per stage and partition, the committed offset last
// seen and since when the partition has been waiting on it: since the offset
// last moved, or since records began to wait (lag turned positive),
// whichever is later. A partition idle at lag 0 for an hour is therefore not
// stalled the moment one record arrives. It holds no clock: each observation
// brings its own time, so tests drive it with any times they like.
type stallTracker struct {
	marks map[partitionKey]mark
}

type partitionKey struct {
	stage     string
	partition int
}

type mark struct {
	committed int64
	waiting   bool      // lag > 0 at the last observation
	since     time.Time // when waiting on committed began, if waiting
}

func newStallTracker() *stallTracker {
	return &stallTracker{marks: map[partitionKey]mark{}}
}

// observe records one partition's committed offset and lag at now and
// returns since when it has been waiting without moving (now when it is not
// waiting) and whether that has lasted at least after.
func (t *stallTracker) observe(stage string, partition int, committed, lag int64, now time.Time, after time.Duration) (since time.Time, stalled bool) {
	k := partitionKey{stage, partition}
	if lag <= 0 {
		t.marks[k] = mark{committed: committed}
		return now, false
	}
	m, ok := t.marks[k]
	if !ok || m.committed != committed || !m.waiting {
		// Records may have begun to wait at any time since the last
		// observation; counting from this one never stalls too early.
		m = mark{committed: committed, since: now, waiting: true}
		t.marks[k] = m
	}
	return m.since, now.Sub(m.since) >= after
}

// keepOnly forgets the partitions of stage that the last observation of
// the stage did not include (a topic deleted and created again with fewer
// partitions), so their marks do not leak. A stage that could not be
// observed at all keeps its marks: a moment's error does not restart the
// clock of a stall.
func (t *stallTracker) keepOnly(stage string, partitions []int) {
	keep := make(map[int]bool, len(partitions))
	for _, p := range partitions {
		keep[p] = true
	}
	for k := range t.marks {
		if k.stage == stage && !keep[k.partition] {
			delete(t.marks, k)
		}
	}
}
