//go:build race

package prio

// raceEnabled reports whether the race detector is on. It makes
// sync.Pool drop some of what is put in it, so allocation counts that
// rely on a pool are higher.
const raceEnabled = true
