// Package fakeclock is the settable clock tests inject where code takes a
// func() time.Time (Options.Clock): one test drives the simulator, the
// broker, the console and the notifier through hours or months in
// microseconds, and they all agree on the time.
package fakeclock

import (
	"sync"
	"time"
)

// Clock is a settable time, safe for concurrent use. The zero value stands
// at the zero time.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// New returns a clock standing at t.
func New(t time.Time) *Clock { return &Clock{now: t} }

// Now returns the clock's time; its method value is what Options.Clock
// takes.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Set moves the clock to t (backwards too).
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}
