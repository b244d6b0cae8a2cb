package arm

// HoldDisk makes the state file's writer wait, as a slow disk would,
// until release is called; release(err) fails that write with err, and
// the writes after it go through.
func HoldDisk(s *Server) (release func(error)) {
	hold := make(chan error, 1)
	s.durable.mu.Lock()
	s.durable.beforeWrite = func() error {
		err := <-hold
		s.durable.mu.Lock()
		s.durable.beforeWrite = nil
		s.durable.mu.Unlock()
		return err
	}
	s.durable.mu.Unlock()
	return func(err error) { hold <- err }
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
