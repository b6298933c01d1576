package agents

// idSet is a set of 64-bit visit-id hashes with open addressing: 8 bytes a
// slot, kept between 3/8 and 3/4 full, so 11 to 21 bytes an id, against about
// 36 for a map[uint64]struct{}. The hash 0 marks an empty slot; an id that
// hashes to 0 is stored as 1 (one more collision in 2^64).
type idSet struct {
	slots []uint64
	n     int
}

// add inserts h and reports whether it was new.
func (s *idSet) add(h uint64) bool {
	if h == 0 {
		h = 1
	}
	if (s.n+1)*4 > len(s.slots)*3 {
		s.grow()
	}
	mask := uint64(len(s.slots) - 1)
	for i := mix(h) & mask; ; i = (i + 1) & mask {
		switch s.slots[i] {
		case h:
			return false
		case 0:
			s.slots[i] = h
			s.n++
			return true
		}
	}
}

// len returns how many ids the set holds.
func (s *idSet) len() int { return s.n }

func (s *idSet) grow() {
	old := s.slots
	size := 8
	if len(old) > 0 {
		size = len(old) * 2
	}
	s.slots, s.n = make([]uint64, size), 0
	for _, h := range old {
		if h != 0 {
			s.add(h)
		}
	}
}

// mix spreads FNV's low bits, which linear probing relies on.
func mix(h uint64) uint64 {
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	return h
}
