package clock

import (
	"sync"
	"time"
)

// slot is a task's place in a clock's queue.
type slot struct {
	at     time.Time
	seq    uint64
	index  int
	queued bool
}

// queued is a task that has a slot.
type queued interface{ place() *slot }

// queue is a min-heap (container/heap) of tasks on (at, seq): time order,
// then scheduling order.
type queue[T queued] []T

func (q queue[T]) Len() int { return len(q) }

func (q queue[T]) Less(i, j int) bool {
	a, b := q[i].place(), q[j].place()
	if !a.at.Equal(b.at) {
		return a.at.Before(b.at)
	}
	return a.seq < b.seq
}

func (q queue[T]) Swap(i, j int) {
	q[i], q[j] = q[j], q[i]
	q[i].place().index, q[j].place().index = i, j
}

func (q *queue[T]) Push(x any) {
	t := x.(T)
	t.place().index = len(*q)
	*q = append(*q, t)
}

func (q *queue[T]) Pop() any {
	old := *q
	n := len(old)
	t := old[n-1]
	var zero T
	old[n-1] = zero
	p := t.place()
	p.index, p.queued = -1, false
	*q = old[:n-1]
	return t
}

// runAtOnce runs the n tasks of one instant on up to workers goroutines
// and waits for them, returning how many ran. start(i), called once a
// worker is free (a task running now may stop task i), says whether task
// i still runs; run(i) runs it.
func runAtOnce(n, workers int, start func(i int) bool, run func(i int)) int {
	var wg sync.WaitGroup
	sem := make(chan struct{}, max(workers, 1))
	ran := 0
	for i := range n {
		sem <- struct{}{}
		if !start(i) {
			<-sem
			continue // stopped or reset by a task of this batch
		}
		ran++
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			run(i)
		}()
	}
	wg.Wait()
	return ran
}
