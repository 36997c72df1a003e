// Package gcfloor keeps the garbage collector's heap goal at least a floor
// above the live heap.
//
// With GOGC=100 the next collection is due once the heap has grown by as
// much as survived the last one. upsproxy's live heap is small (a few MB
// with a few hundred clients), so under load it collected many times a
// second: GOGC=400 made the request path 5-13% cheaper in CPU. A plain
// GOGC=400 would also quadruple the heap of a proxy holding 10,000 idle
// clients (40 MB live). After each collection, gcfloor sets GOGC so that
// the next one is due at live + floor, or at GOGC=100's goal when that is
// higher: small heaps collect far less often, large ones exactly as before.
// The heap goal is at most floor above the default's, but the process's
// RSS can stay higher than that for a while (fewer collections while a
// heap grows leave more freed memory, which goes back to the OS slowly):
// measure RSS before raising the floor.
package gcfloor

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"sync/atomic"
)

// base is the GOGC a large live heap gets, the runtime's default.
const base = 100

// Start tunes GOGC after every collection until stop is called, which
// puts GOGC back to 100. The caller leaves GOGC alone when the operator
// set it.
func Start(floor uint64) (stop func()) {
	t := &tuner{floor: floor}
	t.sample = []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	t.arm()
	t.tune() // from the last collection, if any, rather than waiting for the next
	var once sync.Once
	return func() {
		once.Do(func() {
			t.stopped.Store(true)
			t.mu.Lock()
			defer t.mu.Unlock()
			debug.SetGCPercent(base)
		})
	}
}

type tuner struct {
	floor   uint64
	stopped atomic.Bool

	mu      sync.Mutex
	sample  []metrics.Sample
	percent int
}

// sentinel is dropped as soon as it is made: its finalizer runs after the
// next collection and arms a new one, so tune runs once per collection.
// Not a tiny allocation (those share a block, and a finalizer may never
// run): it holds a pointer and is 16 bytes.
type sentinel struct {
	t *tuner
	_ [8]byte
}

func (t *tuner) arm() {
	runtime.SetFinalizer(&sentinel{t: t}, func(s *sentinel) {
		if s.t.stopped.Load() {
			return
		}
		s.t.tune()
		s.t.arm()
	})
}

// tune sets GOGC for the next collection from the live heap the last one
// left.
func (t *tuner) tune() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopped.Load() {
		return
	}
	metrics.Read(t.sample)
	if t.sample[0].Value.Kind() != metrics.KindUint64 {
		return
	}
	p := Percent(t.sample[0].Value.Uint64(), t.floor)
	if p != t.percent {
		debug.SetGCPercent(p)
		t.percent = p
	}
}

// Percent is the GOGC that puts the next collection at live + floor, and
// never below 100: goal = live × (1 + GOGC/100).
func Percent(live, floor uint64) int {
	if live == 0 {
		return base
	}
	p := floor * 100 / live
	if p < base {
		return base
	}
	// live is at least a few hundred KB in any real process; the bound
	// only keeps the conversion safe.
	return int(min(p, 1<<20))
}
