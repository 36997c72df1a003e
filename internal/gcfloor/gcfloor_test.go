package gcfloor

import (
	"runtime"
	"runtime/metrics"
	"testing"
	"time"
)

func TestPercentPutsTheNextCollectionAtLivePlusFloorAndNeverBelowTheDefault(t *testing.T) {
	const mb = 1 << 20
	for _, c := range []struct {
		name        string
		live, floor uint64
		want        int
	}{
		{"a small live heap waits for the floor", 4 * mb, 32 * mb, 800},
		{"a live heap as large as the floor is the default", 32 * mb, 32 * mb, 100},
		{"a large live heap is the default", 400 * mb, 32 * mb, 100},
		{"nothing collected yet", 0, 32 * mb, 100},
		{"a tiny heap is bounded", 1, 1 << 40, 1 << 20},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := Percent(c.live, c.floor); got != c.want {
				t.Fatalf("Percent(%d, %d) = %d, want %d", c.live, c.floor, got, c.want)
			}
		})
	}
}

func readGC(t *testing.T) (gogc, live, goal uint64) {
	t.Helper()
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}, {Name: "/gc/heap/live:bytes"}, {Name: "/gc/heap/goal:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64(), s[1].Value.Uint64(), s[2].Value.Uint64()
}

// collectUntil runs collections (each lets the tuner run after it) until
// cond holds on the runtime's own GC figures.
func collectUntil(t *testing.T, what string, cond func(gogc, live, goal uint64) bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		runtime.GC()
		time.Sleep(5 * time.Millisecond) // the finalizer goroutine runs the tuner
		gogc, live, goal := readGC(t)
		if cond(gogc, live, goal) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: GOGC %d, live heap %d, heap goal %d", what, gogc, live, goal)
		}
	}
}

var keep []byte

func TestTheHeapGoalStaysAFloorAboveASmallLiveHeapAndFollowsALargeOne(t *testing.T) {
	const floor = 16 << 20
	stop := Start(floor)
	t.Cleanup(stop)

	collectUntil(t, "a small live heap gets the floor", func(gogc, live, goal uint64) bool {
		return gogc > 100 && goal >= live+floor*9/10
	})

	// A live heap four times the floor: GOGC=100's own goal, twice it.
	keep = make([]byte, 4*floor)
	collectUntil(t, "a large live heap gets GOGC=100", func(gogc, live, goal uint64) bool {
		return gogc == 100 && live >= 4*floor
	})
	keep = nil
	collectUntil(t, "the floor again once the heap is small", func(gogc, live, goal uint64) bool { return gogc > 100 })

	stop()
	collectUntil(t, "stop puts GOGC back to 100 and keeps it there", func(gogc, _, _ uint64) bool { return gogc == 100 })
	runtime.GC()
	time.Sleep(20 * time.Millisecond)
	if gogc, _, _ := readGC(t); gogc != 100 {
		t.Fatalf("GOGC %d after stop and a collection, want 100", gogc)
	}
}
