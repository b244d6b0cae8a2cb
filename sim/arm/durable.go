package arm

import (
	"bytes"
	"fmt"
	"maps"
	"net/http"
	"sync"
)

// Group commit. A change made by a request is acknowledged only once the
// state file holds it, but the request does not write the file itself
// while it holds the store lock: it takes a generation number (commitLocked)
// and, after releasing the lock, waits until a write covers that number
// (awaitDurable). The first waiter to find no write in flight becomes the
// writer: it takes the lock only to encode the whole state, then seals,
// writes and syncs it without the lock, for every change made so far. So
// reads are not queued behind a disk sync, and N concurrent writes cost
// one encode and one sync instead of N of each. Before this, the load
// bench (50 cloners, 16 ARM clients) starved ARM to 1.75 requests a second.
//
// What is not on disk is not shown either: a request from outside that
// read the store while changes were waiting (a GET, an agent's poll)
// waits for them too, so no client, agent included, acts on a change a
// crash would lose. In-process reads (Dispatch, Azure Policy's own) do
// not wait: they may come from a provider holding its lock, which a
// writer's Snapshot takes.
//
// A failed write undoes every change not yet on disk (rollbackLocked
// restores the copy of the state last written), and each of their
// requests gets the 500 a synchronous failure gave: the failed span of
// generations is remembered so that a waiter whose change was undone is
// told so even when a later write succeeds. A read that may have seen an
// undone change (a failure happened while it ran) answers 503, and the
// client asks again.

// durability tracks which generations of the store are on disk; its own
// lock, never held while taking store.mu.
type durability struct {
	mu   sync.Mutex
	cond *sync.Cond
	// gen is the newest change's generation (store.mu, read under mu too).
	gen uint64
	// written is the newest generation whose store is on disk (after a
	// rollback, the one the store went back to); writing says a writer
	// is at work.
	written uint64
	writing bool
	// failed are the spans (from, to] of generations undone after a
	// failed write, oldest first, the last maxFailedSpans kept.
	failed [][2]uint64
	// writes counts the snapshots written, and beforeWrite runs before
	// each, for tests.
	writes      int
	beforeWrite func() error
	// waiting counts the requests waiting for a writer, for tests.
	waiting int
	// failures counts the rollbacks, for reads that ran across one.
	failures uint64
	// lastGood is the plaintext of the state on disk, which a failed
	// write rolls back to (rollbackLocked); it holds protected settings,
	// as the store does.
	lastGood []byte
}

const maxFailedSpans = 64

func (d *durability) init() { d.cond = sync.NewCond(&d.mu) }

// next numbers a change; store.mu held.
func (d *durability) next() uint64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.gen++
	return d.gen
}

// undone reports whether generation g was in a failed span; d.mu held.
func (d *durability) undone(g uint64) bool {
	for _, f := range d.failed {
		if g > f[0] && g <= f[1] {
			return true
		}
	}
	return false
}

// awaitDurable returns once generation g is on disk, writing it if no
// other request is; false means the change was undone. It is the only
// way into the state file, so there is one writer at a time, and a
// rollback (failLocked, by that writer) never races a write.
func (s *Server) awaitDurable(g uint64) bool {
	d := &s.durable
	d.mu.Lock()
	defer d.mu.Unlock()
	for {
		switch {
		case d.undone(g):
			return false
		case d.written >= g:
			return true
		case !d.writing:
			d.writing = true
			d.mu.Unlock()
			func() {
				// Even if a provider's Snapshot panics: the next waiter
				// writes, and the lock is held again for the deferred
				// unlock above.
				defer func() {
					d.mu.Lock()
					d.writing = false
					d.cond.Broadcast()
				}()
				s.writeBatch()
			}()
		default:
			d.waiting++
			d.cond.Wait()
			d.waiting--
		}
	}
}

// unwritten is the newest change's generation when it is not on disk
// yet, else 0: what a read from outside waits for.
func (d *durability) unwritten() uint64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.gen > d.written {
		return d.gen
	}
	return 0
}

// current is the newest change's generation.
func (d *durability) current() uint64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.gen
}

// writeBatch writes every change made so far, or undoes them all.
func (s *Server) writeBatch() {
	err := s.tryBatch()
	if err == nil {
		return
	}
	s.store.mu.Lock()
	defer s.store.mu.Unlock()
	s.failLocked(err)
}

// tryBatch encodes and writes; a panic (a provider's Snapshot) is a
// failed write like any other.
func (s *Server) tryBatch() (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic while saving the state: %v", p)
		}
	}()
	g, plain, err := s.encodeBatch()
	defer clear(plain)
	if err != nil {
		return err
	}
	return s.writeEncoded(g, plain)
}

// encodeBatch is the whole state and the generation it stands for.
func (s *Server) encodeBatch() (uint64, []byte, error) {
	s.store.mu.Lock()
	defer s.store.mu.Unlock()
	plain, err := s.encodeStateLocked()
	return s.durable.current(), plain, err
}

// writeEncoded seals and writes the snapshot of generation g; only the
// writer of the moment calls it.
func (s *Server) writeEncoded(g uint64, plain []byte) error {
	d := &s.durable
	d.mu.Lock()
	hook := d.beforeWrite
	d.mu.Unlock()
	if hook != nil {
		if err := hook(); err != nil {
			return err
		}
	}
	if err := s.writeSealed(plain); err != nil {
		return err
	}
	d.mu.Lock()
	d.written, d.writes = g, d.writes+1
	clear(d.lastGood)
	d.lastGood = bytes.Clone(plain)
	d.mu.Unlock()
	s.savedMu.Lock()
	s.savedAt = s.opts.Clock.Now()
	s.savedMu.Unlock()
	return nil
}

// failLocked undoes every change not on disk and marks their generations
// failed; store.mu held, so no change is numbered meanwhile.
func (s *Server) failLocked(err error) {
	d := &s.durable
	s.log.Error("persist ARM state; the changes not yet saved are undone", "err", err)
	s.rollbackLocked()
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.gen > d.written {
		d.failed = append(d.failed, [2]uint64{d.written, d.gen})
		if len(d.failed) > maxFailedSpans {
			d.failed = d.failed[1:]
		}
	}
	// The store is what is on disk again: a read needs no write.
	d.written = d.gen
	d.failures++
}

// failureCount is how many rollbacks there have been.
func (d *durability) failureCount() uint64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.failures
}

// heldResponse keeps a handler's answer until its change is on disk, so
// that nothing is acknowledged that a crash could lose.
type heldResponse struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func newHeldResponse() *heldResponse { return &heldResponse{header: http.Header{}} }

func (h *heldResponse) Header() http.Header { return h.header }

func (h *heldResponse) WriteHeader(code int) {
	if h.status == 0 {
		h.status = code
	}
}

func (h *heldResponse) Write(b []byte) (int, error) {
	if h.status == 0 {
		h.status = http.StatusOK
	}
	return h.body.Write(b)
}

// flushTo sends the held answer.
func (h *heldResponse) flushTo(w http.ResponseWriter) {
	maps.Copy(w.Header(), h.header)
	if h.status == 0 {
		return
	}
	w.WriteHeader(h.status)
	_, _ = w.Write(h.body.Bytes())
}
