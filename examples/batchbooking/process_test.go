package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The subprocess tests build the command and prio-sandbox once per test
// binary run.
var (
	binOnce sync.Once
	binDir  string
	binErr  error
)

func binaries(t *testing.T) (example, sandbox string) {
	t.Helper()
	binOnce.Do(func() {
		binDir, binErr = os.MkdirTemp("", "batchbooking-bin-")
		if binErr != nil {
			return
		}
		goTool, err := exec.LookPath("go")
		if err != nil {
			binErr = fmt.Errorf("the subprocess tests build the command with go: %w", err)
			return
		}
		for _, b := range []struct{ out, pkg string }{
			{"batchbooking", "."},
			{"prio-sandbox", "../../cmd/prio-sandbox"},
		} {
			cmd := exec.Command(goTool, "build", "-o", filepath.Join(binDir, b.out), b.pkg)
			if out, err := cmd.CombinedOutput(); err != nil {
				binErr = fmt.Errorf("go build %s: %v\n%s", b.pkg, err, out)
				return
			}
		}
	})
	require.NoError(t, binErr)
	return filepath.Join(binDir, "batchbooking"), filepath.Join(binDir, "prio-sandbox")
}

func cleanupBinaries() {
	if binDir != "" {
		_ = os.RemoveAll(binDir)
	}
}

// sandboxProcess is a running prio-sandbox.
type sandboxProcess struct {
	url, admin string
}

var readyRE = regexp.MustCompile(`msg="prio-sandbox ready" url=(\S+) admin=(\S+)`)

// startSandbox runs prio-sandbox with args and waits for its ready line.
// The process is stopped when the test ends.
func startSandbox(t *testing.T, bin string, args ...string) *sandboxProcess {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"-addr", "127.0.0.1:0"}, args...)...)
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	ready := make(chan *sandboxProcess, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if m := readyRE.FindStringSubmatch(sc.Text()); m != nil {
				ready <- &sandboxProcess{url: m[1], admin: strings.TrimSuffix(m[2], "/_sandbox/stats")}
			}
		}
		close(ready)
	}()
	select {
	case s, ok := <-ready:
		require.True(t, ok, "prio-sandbox exited before it was ready")
		return s
	case <-time.After(30 * time.Second):
		t.Fatal("prio-sandbox did not get ready within 30s")
	}
	return nil
}

// sandboxStats is the part of GET /_sandbox/stats the tests read.
type sandboxStats struct {
	OrdersTotal                 int `json:"orders_total"`
	ExternalReferences          int `json:"external_references"`
	DuplicateExternalReferences int `json:"duplicate_external_references"`
	RequestsTotal               int `json:"requests_total"`
	FaultsInjected              int `json:"faults_injected"`
	CachedReads                 int `json:"cached_reads"`
	UncachedReads               int `json:"uncached_reads"`
}

// operations counts the requests the sandbox recorded, by operationId.
func (s *sandboxProcess) operations(t *testing.T) map[string]int {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, s.admin+"/_sandbox/requests", nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var recs []struct {
		Operation string `json:"operation"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&recs))
	out := map[string]int{}
	for _, r := range recs {
		out[r.Operation]++
	}
	return out
}

func (s *sandboxProcess) stats(t *testing.T) sandboxStats {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, s.admin+"/_sandbox/stats", nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var st sandboxStats
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&st))
	return st
}

// exampleCmd prepares the command against a separate sandbox.
func exampleCmd(ctx context.Context, bin string, sb *sandboxProcess, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, bin, append([]string{"-base-url", sb.url}, args...)...)
	cmd.Env = append(os.Environ(),
		"PRIO_CLIENT_ID=sandbox-client",
		"PRIO_CLIENT_SECRET=sandbox-secret",
		"PRIO_DISTRIBUTOR_ID=501",
		"PRIO_ENV=", "PRIO_BASE_URL=", "PRIO_API_KEY=",
	)
	return cmd
}

// writeInput writes n rows for the sandbox's open product, streaming.
func writeInput(t *testing.T, path, prefix string, n int) {
	t.Helper()
	f, err := os.Create(path)
	require.NoError(t, err)
	w := bufio.NewWriterSize(f, 1<<20)
	_, err = io.WriteString(w, "external_reference,product_id,product_type_id,product_type,product_type_count,contact_email\n")
	require.NoError(t, err)
	for i := range n {
		kind, id := "ADULT", "101"
		if i%3 == 0 {
			kind, id = "CHILD", "102"
		}
		_, err = fmt.Fprintf(w, "%s-%06d,30001,%s,%s,%d,guest%d@example.com\n", prefix, i, id, kind, 1+i%4, i)
		require.NoError(t, err)
	}
	require.NoError(t, w.Flush())
	require.NoError(t, f.Close())
}
