//go:build unix

package batch

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// lockFile takes an exclusive advisory lock on path, creating it if needed.
// The lock lives in a file of its own: SQLite holds POSIX locks on the
// journal, and closing any other descriptor of that file in this process
// would drop them. The kernel releases the lock when the process dies, so
// a killed run never leaves the journal locked.
func lockFile(path string) (unlock func() error, err error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("batch: journal lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: %s", ErrJournalLocked, path)
		}
		return nil, fmt.Errorf("batch: journal lock %s: %w", path, err)
	}
	return f.Close, nil
}
