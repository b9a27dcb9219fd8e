package priotest

import (
	"context"
	"net"
	"net/http"
	"sync"
)

// pipeListener accepts in-memory connections (net.Pipe), so a sandbox can
// be reached without sockets, as tests in a testing/synctest bubble need.
type pipeListener struct {
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func newPipeListener() *pipeListener {
	return &pipeListener{conns: make(chan net.Conn), done: make(chan struct{})}
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *pipeListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *pipeListener) Addr() net.Addr { return pipeAddr{} }

func (l *pipeListener) dial(ctx context.Context, _, _ string) (net.Conn, error) {
	client, server := net.Pipe()
	select {
	case l.conns <- server:
		return client, nil
	case <-l.done:
		return nil, net.ErrClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "pipe" }

// PipeClient returns an HTTP client connected to the server through
// in-memory pipes, whatever host its requests name. The first call starts
// serving on the pipes, so inside a testing/synctest bubble make that call
// inside the bubble, and Close the server before the bubble ends. Faults
// behave as over TCP, except that a reset closes the pipe instead of
// sending a TCP RST.
func (s *Server) PipeClient() *http.Client {
	s.life.Lock()
	defer s.life.Unlock()
	if s.pipe == nil && !s.closed && s.work.add() {
		s.pipe = newPipeListener()
		s.pipeSrv = s.newHTTPServer()
		s.pipeTr = &http.Transport{DialContext: s.pipe.dial, Proxy: nil}
		l, srv := s.pipe, s.pipeSrv
		go func() {
			defer s.work.done()
			_ = srv.Serve(l)
		}()
	}
	tr := s.pipeTr
	if tr == nil {
		tr = &http.Transport{DialContext: func(context.Context, string, string) (net.Conn, error) { return nil, errClosed }}
	}
	return &http.Client{Transport: tr}
}
