//go:build unix

package proxy

import (
	"errors"
	"net"
	"syscall"
)

// canPeek: peekIdle tells an idle socket from a closed one here.
const canPeek = true

// peekIdle looks at c's socket without blocking and without consuming
// anything (MSG_PEEK|MSG_DONTWAIT).
func peekIdle(c net.Conn) peekResult {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return peekData // let the caller find out by reading
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return peekClosed
	}
	res := peekClosed
	var b [1]byte
	err = rc.Read(func(fd uintptr) bool {
		n, _, rerr := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		switch {
		case n > 0:
			res = peekData
		case errors.Is(rerr, syscall.EAGAIN) || errors.Is(rerr, syscall.EWOULDBLOCK):
			res = peekEmpty
		case errors.Is(rerr, syscall.EINTR):
			res = peekData
		}
		// true: done; never wait for readability (this is a peek).
		return true
	})
	if err != nil {
		return peekClosed
	}
	return res
}
