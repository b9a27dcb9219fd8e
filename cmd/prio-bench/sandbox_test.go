package main

import (
	"bufio"
	"encoding/json"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/priosdk/prio-go/priotest"
)

// TestServeSandbox runs a child's life in this process: the address line
// comes first, the sandbox books, and the end of the input shuts it down.
func TestServeSandbox(t *testing.T) {
	t.Parallel()
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	done := make(chan error, 1)
	go func() { done <- serveSandbox(inR, outW); _ = outW.Close() }()

	line, err := bufio.NewReader(outR).ReadBytes('\n')
	require.NoError(t, err)
	var hello sandboxHello
	require.NoError(t, json.Unmarshal(line, &hello))
	assert.True(t, strings.HasPrefix(hello.URL, "http://127.0.0.1:"), "URL %q", hello.URL)
	assert.Equal(t, priotest.DefaultDistributorID, hello.DistributorID)

	sb := &procSandbox{hello: hello}
	sc, err := newSDKCreator(sb, 4)
	require.NoError(t, err)
	require.NoError(t, sc.create(t.Context(), nextRef("serve")))

	require.NoError(t, inW.Close())
	require.NoError(t, <-done, "the end of the input ends the child's life")
}

// TestProcSandbox starts a real child process (this test binary again,
// which TestMain turns into a sandbox), books on it with both clients of
// the overhead phase, and ends it: the child exits cleanly, and a second
// Close does nothing.
func TestProcSandbox(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s, err := openSandbox(ctx, sandboxProcess)
	require.NoError(t, err)
	p, ok := s.(*procSandbox)
	require.True(t, ok, "a child process, not %T", s)
	defer p.Close()
	assert.NotEqual(t, 0, p.cmd.Process.Pid)

	sc, err := newSDKCreator(p, 4)
	require.NoError(t, err)
	bc, err := newBaselineCreator(ctx, p, 4)
	require.NoError(t, err)
	for i := range 3 {
		require.NoError(t, sc.create(ctx, nextRef("child")), "SDK call %d", i)
		require.NoError(t, bc.create(ctx, nextRef("child")), "baseline call %d", i)
	}
	bc.close()

	p.Close()
	require.NotNil(t, p.cmd.ProcessState, "Close waits for the child")
	assert.True(t, p.cmd.ProcessState.Success(), "the child exits cleanly: %v", p.cmd.ProcessState)
	p.Close()
}

// TestOpenSandboxInProc: the other placement is a priotest server in this
// process; an unknown one is an error.
func TestOpenSandboxInProc(t *testing.T) {
	t.Parallel()
	s, err := openSandbox(t.Context(), sandboxInProc)
	require.NoError(t, err)
	defer s.Close()
	assert.IsType(t, &priotest.Server{}, s)
	_, err = openSandbox(t.Context(), "elsewhere")
	assert.ErrorContains(t, err, "elsewhere")
}
