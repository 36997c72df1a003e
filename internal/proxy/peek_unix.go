//go:build unix

package proxy

import (
	"errors"
	"net"
	"syscall"
)

// canPeek: a peeker tells an idle socket from a closed one here.
const canPeek = true

// peekIdle looks at c's socket without blocking and without consuming
// anything (MSG_PEEK|MSG_DONTWAIT).
func peekIdle(c net.Conn) peekResult { return newPeeker(c).peek() }

// peeker is peekIdle for one connection, made once: the raw connection
// and the callback are kept, so that the look before each reuse of a
// pooled upstream connection allocates nothing.
type peeker struct {
	rc  syscall.RawConn // nil: not a socket, or SyscallConn failed
	err error           // SyscallConn's
	fn  func(fd uintptr) bool
	res peekResult
	b   [1]byte
}

func newPeeker(c net.Conn) *peeker {
	p := &peeker{}
	sc, ok := c.(syscall.Conn)
	if !ok {
		return p
	}
	p.rc, p.err = sc.SyscallConn()
	p.fn = p.look
	return p
}

// peek is peekIdle(c) for the peeker's connection c.
func (p *peeker) peek() peekResult {
	if p.err != nil {
		return peekClosed
	}
	if p.rc == nil {
		return peekData // let the caller find out by reading
	}
	p.res = peekClosed
	if err := p.rc.Read(p.fn); err != nil {
		return peekClosed
	}
	return p.res
}

func (p *peeker) look(fd uintptr) bool {
	n, _, err := syscall.Recvfrom(int(fd), p.b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	switch {
	case n > 0:
		p.res = peekData
	case errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EWOULDBLOCK):
		p.res = peekEmpty
	case errors.Is(err, syscall.EINTR):
		p.res = peekData
	}
	// true: done; never wait for readability (this is a peek).
	return true
}
