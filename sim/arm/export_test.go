package arm

// HoldDisk makes the state file's writer wait, as a slow disk would,
// until release is called.
func HoldDisk(s *Server) (release func()) {
	hold := make(chan struct{})
	s.durable.mu.Lock()
	s.durable.beforeWrite = func() { <-hold }
	s.durable.mu.Unlock()
	return func() { close(hold) }
}

// DurableCounts reports how many changes were numbered and how many
// snapshots were written.
func DurableCounts(s *Server) (changes uint64, writes int) {
	d := &s.durable
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.gen, d.writes
}

// Waiting is how many requests wait for the writer.
func Waiting(s *Server) int {
	d := &s.durable
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.waiting
}
