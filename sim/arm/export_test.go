package arm

// HoldDisk makes the state file's writers wait, as a slow disk would,
// until release is called.
func HoldDisk(s *Server) (release func()) {
	s.durable.fileMu.Lock()
	return s.durable.fileMu.Unlock
}

// DurableCounts reports how many changes were numbered and how many
// snapshots were written.
func DurableCounts(s *Server) (changes uint64, writes int) {
	d := &s.durable
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.gen, d.writes
}
