// Package pgtest runs a throwaway PostgreSQL server from the machine's own
// installation: initdb and pg_ctl in a temporary directory, reachable only
// through a Unix socket in that directory. Tests start one per test binary
// (Main), and the examples start one when no database URL is given.
//
// PostgreSQL refuses to run as root. When the process is root the server
// runs as the "postgres" user through runuser, and the directory is handed
// to that user.
package pgtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// ErrNotInstalled is matched when no PostgreSQL server binaries (initdb,
// pg_ctl) can be found.
var ErrNotInstalled = errors.New("pgtest: PostgreSQL is not installed (initdb and pg_ctl not found on PATH or under /usr/lib/postgresql/*/bin); install it, e.g. `apt-get install postgresql` on Debian or Ubuntu, `brew install postgresql` on macOS")

// Options tune a server.
type Options struct {
	// Durable keeps PostgreSQL's defaults for fsync and synchronous
	// commit. Without it the server skips both, which is what tests want:
	// they kill workers, never the database.
	Durable bool
}

// Server is a running throwaway PostgreSQL server.
type Server struct {
	dir    string // data directory, also the socket directory
	bin    string
	runAs  *user.User
	port   int
	nextDB atomic.Int64
}

// FindBin returns the directory holding initdb and pg_ctl.
func FindBin() (string, error) {
	if p, err := exec.LookPath("initdb"); err == nil {
		dir := filepath.Dir(p)
		if _, err := os.Stat(filepath.Join(dir, "pg_ctl")); err == nil {
			return dir, nil
		}
	}
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	// The newest version first: "15" sorts after "9" only numerically.
	sort.Slice(matches, func(i, j int) bool { return version(matches[i]) > version(matches[j]) })
	for _, m := range matches {
		return filepath.Dir(m), nil
	}
	return "", ErrNotInstalled
}

func version(initdb string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(initdb))))
	return n
}

// Start creates a data directory under the system's temporary directory,
// initialises it and starts a server on a Unix socket there. Close stops
// the server and removes the directory.
func Start(ctx context.Context, o Options) (*Server, error) {
	bin, err := FindBin()
	if err != nil {
		return nil, err
	}
	s := &Server{bin: bin, port: 5432}
	if os.Geteuid() == 0 {
		s.runAs, err = user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("pgtest: running as root, and PostgreSQL refuses to run as root: a \"postgres\" user is needed (Debian's postgresql package creates one): %w", err)
		}
	}
	// A short path: a Unix socket's path is limited to about 100 bytes.
	s.dir, err = os.MkdirTemp("", "pg-")
	if err != nil {
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	if s.runAs != nil {
		uid, _ := strconv.Atoi(s.runAs.Uid)
		gid, _ := strconv.Atoi(s.runAs.Gid)
		if err := os.Chown(s.dir, uid, gid); err != nil {
			s.remove()
			return nil, fmt.Errorf("pgtest: %w", err)
		}
	}
	data := filepath.Join(s.dir, "data")
	if out, err := s.run(ctx, "initdb", "-D", data, "-U", "postgres", "--auth=trust", "--encoding=UTF8", "--no-sync"); err != nil {
		s.remove()
		return nil, fmt.Errorf("pgtest: initdb: %w\n%s", err, out)
	}
	settings := []string{
		"-c", "listen_addresses=",
		"-c", "unix_socket_directories=" + s.dir,
		"-c", "port=" + strconv.Itoa(s.port),
		"-c", "max_connections=200",
	}
	if !o.Durable {
		settings = append(settings, "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off")
	}
	logFile := filepath.Join(s.dir, "server.log")
	if out, err := s.run(ctx, "pg_ctl", "-D", data, "-l", logFile, "-w", "-t", "60", "-o", strings.Join(quoteAll(settings), " "), "start"); err != nil {
		log, _ := os.ReadFile(logFile)
		s.remove()
		return nil, fmt.Errorf("pgtest: pg_ctl start: %w\n%s\n%s", err, out, log)
	}
	return s, nil
}

// quoteAll single-quotes values for pg_ctl's -o, which a shell splits.
func quoteAll(args []string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		if strings.HasPrefix(a, "-") {
			out[i] = a
			continue
		}
		out[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	return out
}

// run runs a PostgreSQL program, as the postgres user when this process is
// root.
func (s *Server) run(ctx context.Context, prog string, args ...string) ([]byte, error) {
	path := filepath.Join(s.bin, prog)
	var cmd *exec.Cmd
	if s.runAs != nil {
		cmd = exec.CommandContext(ctx, "runuser", append([]string{"-u", s.runAs.Username, "--", path}, args...)...)
	} else {
		cmd = exec.CommandContext(ctx, path, args...)
	}
	cmd.Dir = s.dir
	// pg_ctl leaves the server running: it must not share our process
	// group, or a Ctrl-C meant for us would stop it mid-test.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.Bytes(), err
}

// URL returns a connection string for database name ("postgres" is always
// there).
func (s *Server) URL(name string) string {
	return fmt.Sprintf("host=%s port=%d user=postgres dbname=%s sslmode=disable", s.dir, s.port, name)
}

// CreateDatabase creates a new, empty database and returns its connection
// string.
func (s *Server) CreateDatabase(ctx context.Context) (string, error) {
	name := fmt.Sprintf("db%d", s.nextDB.Add(1))
	conn, err := pgx.Connect(ctx, s.URL("postgres"))
	if err != nil {
		return "", fmt.Errorf("pgtest: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return "", fmt.Errorf("pgtest: create database: %w", err)
	}
	return s.URL(name), nil
}

// Close stops the server at once and removes its directory.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := s.run(ctx, "pg_ctl", "-D", filepath.Join(s.dir, "data"), "-m", "immediate", "-w", "stop")
	s.remove()
	if err != nil {
		return fmt.Errorf("pgtest: pg_ctl stop: %w\n%s", err, out)
	}
	return nil
}

func (s *Server) remove() { _ = os.RemoveAll(s.dir) }
