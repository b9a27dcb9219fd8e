//go:build !unix

package batch

// lockFile does nothing where flock is not available; on such systems the
// caller must make sure that only one run uses a journal at a time.
func lockFile(string) (func() error, error) {
	return func() error { return nil }, nil
}
