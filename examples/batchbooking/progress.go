package main

import (
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/priosdk/prio-go/batch"
)

// progress shows how far a run is: a bar on a terminal, a plain line every
// interval otherwise (logs, CI, a pipe).
type progress struct {
	w        io.Writer
	total    int
	bar      *progressbar.ProgressBar
	interval time.Duration

	mu     sync.Mutex
	counts batch.Summary
	start  time.Time

	stop chan struct{}
	done chan struct{}
}

func newProgress(w io.Writer, total int, terminal bool, interval time.Duration) *progress {
	p := &progress{w: w, total: total, interval: interval, start: time.Now()}
	if terminal {
		p.bar = progressbar.NewOptions(total,
			progressbar.OptionSetWriter(w),
			progressbar.OptionSetDescription("booking"),
			progressbar.OptionShowCount(),
			progressbar.OptionShowIts(),
			progressbar.OptionSetItsString("rows"),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionClearOnFinish(),
			progressbar.OptionFullWidth(),
		)
		return p
	}
	p.stop, p.done = make(chan struct{}), make(chan struct{})
	go p.tick()
	return p
}

func (p *progress) tick() {
	defer close(p.done)
	t := time.NewTicker(p.interval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			p.line()
		case <-p.stop:
			return
		}
	}
}

// line prints the plain progress line.
func (p *progress) line() {
	p.mu.Lock()
	c := p.counts
	p.mu.Unlock()
	fmt.Fprintf(p.w, "progress: %d/%d rows booked=%d failed=%d unknown=%d sends=%d elapsed=%s\n",
		c.Rows, p.total, c.Booked, c.Failed, c.Unknown, c.Sends, time.Since(p.start).Round(time.Second))
}

func (p *progress) add(res batch.Result) {
	p.mu.Lock()
	p.counts.Rows++
	switch res.State {
	case batch.Booked:
		p.counts.Booked++
	case batch.Failed:
		p.counts.Failed++
	case batch.Unknown:
		p.counts.Unknown++
	}
	p.counts.Sends += res.Sends
	c := p.counts
	p.mu.Unlock()
	if p.bar != nil {
		p.bar.Describe(fmt.Sprintf("booked %d, failed %d, unknown %d", c.Booked, c.Failed, c.Unknown))
		_ = p.bar.Add(1)
	}
}

// finish stops the bar or the ticker; the plain form prints a last line.
func (p *progress) finish() {
	if p.bar != nil {
		_ = p.bar.Finish()
		return
	}
	close(p.stop)
	<-p.done
	p.line()
}
