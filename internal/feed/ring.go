package feed

// ring holds the most recent counts, one per key (account, store, window
// start), at most size of them; the oldest inserted key goes first. It is
// not safe for concurrent use: the hub's lock guards it.
type ring struct {
	size    int
	order   []windowKey // insertion order; circular once full
	head    int         // index in order of the oldest key, once full
	entries map[windowKey]Count
}

func newRing(size int) *ring {
	return &ring{
		size:    size,
		order:   make([]windowKey, 0, min(size, 1024)),
		entries: make(map[windowKey]Count, min(size, 1024)),
	}
}

// putResult says what put did with a count.
type putResult int

const (
	// putAdded: the key was new.
	putAdded putResult = iota
	// putUpdated: the key was held with another count (or end); replaced
	// in place.
	putUpdated
	// putDuplicate: the same count for the same key and window was
	// already held; nothing changed.
	putDuplicate
)

// put records c, replacing a held count for its key, and evicts the oldest
// key when the ring is full.
func (r *ring) put(c Count) putResult {
	k := c.key()
	if old, ok := r.entries[k]; ok {
		if old.Count == c.Count && old.End == c.End {
			return putDuplicate
		}
		r.entries[k] = c
		return putUpdated
	}
	if len(r.order) < r.size {
		r.order = append(r.order, k)
	} else {
		delete(r.entries, r.order[r.head])
		r.order[r.head] = k
		r.head = (r.head + 1) % r.size
	}
	r.entries[k] = c
	return putAdded
}

// len is the number of counts held.
func (r *ring) len() int { return len(r.entries) }

// recent returns the last n counts matching f, in history order.
func (r *ring) recent(f filter, n int) []Count {
	if n <= 0 {
		return nil
	}
	out := make([]Count, 0, min(len(r.entries), 4*n))
	for _, c := range r.entries {
		if f.match(c) {
			out = append(out, c)
		}
	}
	return lastN(out, n)
}
