package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"time"

	"github.com/priosdk/prio-go/priotest"
)

// sandbox is the server one client books on: a priotest server in this
// process (*priotest.Server) or in a child process of its own
// (procSandbox).
type sandbox interface {
	URL() string
	DistributorID() string
	Close()
}

// Where the overhead and throughput phases run their sandboxes (-sandbox).
const (
	// sandboxProcess runs each sandbox in a child process, as a real Prio
	// runs apart from its client: the client's process then holds the
	// client alone, with its own heap, garbage collector and scheduler.
	sandboxProcess = "process"
	// sandboxInProc runs each sandbox in this process, sharing its heap,
	// garbage collector and scheduler with the clients.
	sandboxInProc = "inproc"
)

// sandboxChildEnv, set to "1" in a child's environment, makes prio-bench
// serve one sandbox instead of measuring (serveSandbox).
const sandboxChildEnv = "PRIO_BENCH_SANDBOX_CHILD"

// isSandboxChild reports whether this process was started to serve a
// sandbox.
func isSandboxChild() bool { return os.Getenv(sandboxChildEnv) == "1" }

// sandboxHello is the child's first line on standard output.
type sandboxHello struct {
	URL           string `json:"url"`
	DistributorID string `json:"distributor_id"`
}

// serveSandbox is the child's whole life: it starts a sandbox as
// newServer does, writes its address to out as one JSON line, serves until
// in reaches its end (the parent closed the pipe, or died), then shuts the
// sandbox down.
func serveSandbox(in io.Reader, out io.Writer) error {
	s, err := newServer()
	if err != nil {
		return err
	}
	defer s.Close()
	if err := json.NewEncoder(out).Encode(sandboxHello{URL: s.URL(), DistributorID: s.DistributorID()}); err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, in)
	return err
}

// procSandbox is a sandbox served by a child prio-bench process.
type procSandbox struct {
	hello sandboxHello
	cmd   *exec.Cmd
	stdin io.Closer
	once  sync.Once
}

// childTimeout bounds how long a child may take to print its address, and
// to exit once told to.
const childTimeout = 10 * time.Second

// startProcSandbox starts this program again as a sandbox child and waits
// for its address. The child's standard error goes to ours.
func startProcSandbox(ctx context.Context) (*procSandbox, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("sandbox child: %w", err)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), sandboxChildEnv+"=1")
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("sandbox child: %w", err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("sandbox child: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("sandbox child: %w", err)
	}
	p := &procSandbox{cmd: cmd, stdin: stdin}
	type result struct {
		hello sandboxHello
		err   error
	}
	got := make(chan result, 1)
	go func() {
		var r result
		line, err := bufio.NewReader(stdout).ReadBytes('\n')
		switch {
		case err != nil:
			r.err = fmt.Errorf("reading its address: %w", err)
		default:
			r.err = json.Unmarshal(line, &r.hello)
			if r.err == nil && (r.hello.URL == "" || r.hello.DistributorID == "") {
				r.err = fmt.Errorf("incomplete address %q", line)
			}
		}
		got <- r
	}()
	timer := time.NewTimer(childTimeout)
	defer timer.Stop()
	var r result
	select {
	case r = <-got:
	case <-timer.C:
		r.err = fmt.Errorf("no address within %s", childTimeout)
	case <-ctx.Done():
		r.err = ctx.Err()
	}
	if r.err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return nil, fmt.Errorf("sandbox child: %w", r.err)
	}
	p.hello = r.hello
	return p, nil
}

func (p *procSandbox) URL() string           { return p.hello.URL }
func (p *procSandbox) DistributorID() string { return p.hello.DistributorID }

// Close ends the child: it closes the child's standard input, which makes
// it shut its sandbox down and exit, and kills it if it has not exited
// within childTimeout. Only the first call does anything.
func (p *procSandbox) Close() {
	p.once.Do(func() {
		_ = p.stdin.Close()
		done := make(chan struct{})
		go func() { _ = p.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(childTimeout):
			_ = p.cmd.Process.Kill()
			<-done
		}
	})
}

// openSandbox starts a fresh sandbox where says: sandboxProcess (a child
// process) or sandboxInProc (this one).
func openSandbox(ctx context.Context, where string) (sandbox, error) {
	switch where {
	case sandboxProcess:
		return startProcSandbox(ctx)
	case sandboxInProc, "":
		return newServer()
	default:
		return nil, errors.New("unknown sandbox placement " + where)
	}
}

// Both kinds serve the clients.
var (
	_ sandbox = (*priotest.Server)(nil)
	_ sandbox = (*procSandbox)(nil)
)
