package proxy

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"go.uber.org/zap"
)

// ErrServerClosed is what Serve returns after Shutdown.
var ErrServerClosed = http.ErrServerClosed

// connSet is the listeners and connections the proxy serves, for Shutdown.
type connSet struct {
	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	conns     map[*clientConn]struct{}
}

// Serve accepts client connections on ln and serves each on its own
// goroutine (conn.go) until Shutdown; it returns ErrServerClosed then, or
// the listener's error when it fails for good. Temporary accept errors
// (out of file descriptors) are retried with a growing pause, as net/http
// does.
func (p *Proxy) Serve(ln net.Listener) error {
	if !p.track(ln) {
		return ErrServerClosed
	}
	defer p.untrack(ln)
	var pause time.Duration
	for {
		raw, err := ln.Accept()
		if err != nil {
			if p.shuttingDown.Load() {
				return ErrServerClosed
			}
			if te, ok := err.(interface{ Temporary() bool }); ok && te.Temporary() {
				pause = min(max(2*pause, 5*time.Millisecond), time.Second)
				p.log.Warn("accept failed; retrying", zap.Duration("pause", pause), zap.Error(err))
				time.Sleep(pause)
				continue
			}
			return fmt.Errorf("accept: %w", err)
		}
		pause = 0
		c := &clientConn{p: p, raw: raw, conn: raw, remote: raw.RemoteAddr().String()}
		if !p.register(c) {
			_ = raw.Close()
			return ErrServerClosed
		}
		go c.serve()
	}
}

func (p *Proxy) track(ln net.Listener) bool {
	s := &p.served
	s.mu.Lock()
	defer s.mu.Unlock()
	if p.shuttingDown.Load() {
		return false
	}
	if s.listeners == nil {
		s.listeners = map[net.Listener]struct{}{}
	}
	s.listeners[ln] = struct{}{}
	return true
}

func (p *Proxy) untrack(ln net.Listener) {
	s := &p.served
	s.mu.Lock()
	delete(s.listeners, ln)
	s.mu.Unlock()
}

func (p *Proxy) register(c *clientConn) bool {
	s := &p.served
	s.mu.Lock()
	defer s.mu.Unlock()
	if p.shuttingDown.Load() {
		return false
	}
	if s.conns == nil {
		s.conns = map[*clientConn]struct{}{}
	}
	s.conns[c] = struct{}{}
	return true
}

// forget is called by a connection's loop when it ends.
func (p *Proxy) forget(c *clientConn) {
	s := &p.served
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// Shutdown stops accepting, closes connections waiting for a request, lets
// those answering one (plain or inside a tunnel) finish it and close, and
// returns when none is left; when ctx ends first, it closes the rest and
// says how many requests were cut off.
func (p *Proxy) Shutdown(ctx context.Context) error {
	p.shuttingDown.Store(true)
	s := &p.served
	s.mu.Lock()
	for ln := range s.listeners {
		_ = ln.Close()
	}
	s.mu.Unlock()
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		if p.closeIdle() == 0 && p.inflight.Load() == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			n := p.inflight.Load()
			p.closeAll()
			return fmt.Errorf("%d requests still in flight: %w", n, ctx.Err())
		case <-t.C:
		}
	}
}

// closeIdle closes the connections waiting for a request and returns how
// many connections are left.
func (p *Proxy) closeIdle() int {
	s := &p.served
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		if c.idle.Load() {
			_ = c.raw.Close()
		}
	}
	return len(s.conns)
}

func (p *Proxy) closeAll() {
	s := &p.served
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		_ = c.raw.Close()
	}
}
