package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
)

// rate estimates a counter's rate: the engine's own figure when it reports
// one, else a smoothed rate of change between polls.
type rate struct {
	last   int64
	lastAt time.Time
	perSec float64
}

func (r *rate) update(v int64, at time.Time, engineRate float64) {
	if engineRate > 0 {
		r.perSec = engineRate
	} else if !r.lastAt.IsZero() && at.After(r.lastAt) && v >= r.last {
		inst := float64(v-r.last) / at.Sub(r.lastAt).Seconds()
		if r.perSec == 0 {
			r.perSec = inst
		} else {
			r.perSec = 0.3*inst + 0.7*r.perSec
		}
	}
	r.last, r.lastAt = v, at
}

// watcher holds the latest view of the job for the bars' decorators.
type watcher struct {
	mu    sync.Mutex
	m     migration
	rates map[string]*rate
}

func (w *watcher) set(m *migration, at time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.m = *m
	for _, s := range m.Steps {
		r := w.rates[s.Name]
		if r == nil {
			r = &rate{}
			w.rates[s.Name] = r
		}
		r.update(stepValue(s), at, s.Counters.RatePerSec)
	}
}

// stepValue is the number a step's rate is computed from: units done, or
// changes applied for sync steps that have no total.
func stepValue(s step) int64 {
	if s.Counters.Total == 0 && s.Counters.Ops > 0 {
		return s.Counters.Ops
	}
	return s.Counters.Done
}

func (w *watcher) header() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	m := &w.m
	parts := []string{m.Name, m.State}
	if m.CurrentStep != "" {
		parts = append(parts, "step "+m.CurrentStep)
	}
	if l := m.lagText(); l != "" {
		parts = append(parts, l)
	}
	isReady := m.ReadyForCutover
	if m.Readiness != nil {
		isReady = m.Readiness.Ready
	}
	ready := "ready for cutover: " + yesNo(isReady)
	if m.CutoverDeadline != nil {
		ready += " (deadline " + fmtTime(m.CutoverDeadline) + ")"
	}
	if m.Readiness != nil && !m.Readiness.Ready && len(m.Readiness.Reasons) > 0 {
		var codes []string
		for _, r := range m.Readiness.Reasons {
			codes = append(codes, r.Code)
		}
		ready += " (" + strings.Join(codes, ", ") + ")"
	}
	parts = append(parts, ready)
	if m.Cutover != nil && m.Cutover.Summary != "" {
		parts = append(parts, "source: "+m.Cutover.SourceState)
	}
	if m.Error != "" {
		parts = append(parts, "error: "+m.Error)
	}
	return strings.Join(parts, " · ")
}

func (w *watcher) syncText(s step) string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return syncText(&w.m, s)
}

func (w *watcher) step(name string) (step, float64, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, s := range w.m.Steps {
		if s.Name == name {
			r := 0.0
			if w.rates[name] != nil {
				r = w.rates[name].perSec
			}
			return s, r, true
		}
	}
	return step{}, 0, false
}

// stats is a step's "done/total unit  rate  ETA" text.
func (w *watcher) stats(name string) string {
	s, r, ok := w.step(name)
	if !ok {
		return ""
	}
	unit := s.Counters.Unit
	if unit == "" {
		unit = "units"
	}
	var parts []string
	switch {
	case s.Counters.Total > 0:
		parts = append(parts, fmt.Sprintf("%s/%s %s", fmtCount(s.Counters.Done), fmtCount(s.Counters.Total), unit))
	case s.Counters.Ops > 0:
		u := s.Counters.Unit
		if u == "" {
			u = "changes"
		}
		parts = append(parts, fmt.Sprintf("%s %s applied", fmtCount(s.Counters.Ops), u))
	case s.Counters.Done > 0:
		parts = append(parts, fmt.Sprintf("%s %s", fmtCount(s.Counters.Done), unit))
	}
	if s.Counters.Bytes > 0 {
		parts = append(parts, fmtBytes(s.Counters.Bytes))
	}
	if s.State == "running" && r > 0 {
		parts = append(parts, fmt.Sprintf("%.0f/s", r))
		if s.Counters.Total > s.Counters.Done {
			eta := time.Duration(float64(s.Counters.Total-s.Counters.Done) / r * float64(time.Second))
			parts = append(parts, "ETA "+fmtDuration(eta))
		}
	}
	if s.Counters.LagBytes > 0 {
		parts = append(parts, "backlog "+fmtBytes(s.Counters.LagBytes))
	}
	if s.Counters.Errors > 0 {
		parts = append(parts, fmt.Sprintf("%d errors", s.Counters.Errors))
	}
	if s.Message != "" {
		parts = append(parts, s.Message)
	}
	return strings.Join(parts, "  ")
}

// barValues maps a step onto a bar: counters when the total is known,
// else the percent.
func barValues(m *migration, s step) (current, total int64) {
	if c, t, ok := syncBar(m, s); ok {
		if t <= 0 {
			t = 1
		}
		return min(c, t), t
	}
	if s.Counters.Total > 0 {
		return min(s.Counters.Done, s.Counters.Total), s.Counters.Total
	}
	return int64(s.Progress * 10), 1000
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func (c *cli) migrationsWatch(args []string) error {
	fs := c.flags("migrations watch", "ID [flags]")
	var f clientFlags
	f.register(fs, true)
	interval := fs.Duration("interval", time.Second, "how often to poll the API")
	progress := fs.String("progress", "auto", "bars (live progress bars), lines (a line per change) or auto (bars on a terminal)")
	pos, err := c.parse(fs, args, 1)
	if err != nil {
		return err
	}
	if *interval < 50*time.Millisecond {
		return fmt.Errorf("--interval %v is too short", *interval)
	}
	mode := *progress
	switch mode {
	case "auto":
		mode = "lines"
		if isTerminal(c.stdout) {
			mode = "bars"
		}
	case "bars", "lines":
	default:
		return fmt.Errorf("--progress %q: want bars, lines or auto", *progress)
	}
	cl, err := c.newClient(&f, true)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(c.ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	path := cl.projectPath("migrations", pos[0])
	get := func() (*migration, json.RawMessage, error) {
		var m migration
		raw, err := cl.do(ctx, "GET", path, nil, &m)
		return &m, raw, err
	}
	m, raw, err := get()
	if err != nil {
		return err
	}
	w := &watcher{rates: map[string]*rate{}}
	w.set(m, time.Now())

	var ui interface {
		update(m *migration)
		finish(m *migration)
	}
	switch {
	case f.json:
		ui = &jsonUI{c: c}
		_ = raw
	case mode == "bars":
		ui = newBarsUI(ctx, c.stdout, w, m)
	default:
		ui = &linesUI{c: c, w: w}
	}
	ui.update(m)
	tick := time.NewTicker(*interval)
	defer tick.Stop()
	for !m.ended() {
		select {
		case <-ctx.Done():
			ui.finish(m)
			return &exitError{code: 130, err: errors.New("watch interrupted; the migration goes on")}
		case <-tick.C:
		}
		next, _, err := get()
		if err != nil {
			var ae *apiError
			if errors.As(err, &ae) && ae.Status == 404 {
				m.State = "deleted"
				break
			}
			// A transient failure (server restart): keep watching.
			fmt.Fprintln(c.stderr, "ferry: poll:", err)
			continue
		}
		m = next
		w.set(m, time.Now())
		ui.update(m)
	}
	ui.finish(m)
	if !f.json {
		fmt.Fprintf(c.stdout, "migration %s %s\n", m.ID, m.State)
		if m.Cutover != nil && m.Cutover.Summary != "" {
			fmt.Fprintln(c.stdout, "source:", m.Cutover.Summary)
		}
		if v := m.Cutover; v != nil && v.Verification != nil {
			fmt.Fprintf(c.stdout, "verification: %s, %d missing, %d extra, %d different of %s %s\n", v.Verification.State,
				v.Verification.Missing, v.Verification.Extra, v.Verification.Different, fmtCount(v.Verification.Checked), v.Verification.Unit)
		}
	}
	switch m.State {
	case "failed", "expired":
		msg := "migration " + m.ID + " " + m.State
		if m.Error != "" {
			msg += ": " + m.Error
		}
		return &exitError{code: 1, err: errors.New(msg)}
	}
	return nil
}

// jsonUI prints the job as one JSON line per poll.
type jsonUI struct{ c *cli }

func (u *jsonUI) update(m *migration) {
	b, _ := json.Marshal(m)
	fmt.Fprintln(u.c.stdout, string(b))
}

func (u *jsonUI) finish(*migration) {}

// linesUI prints a line whenever the job's figures change.
type linesUI struct {
	c    *cli
	w    *watcher
	last string
}

func (u *linesUI) update(m *migration) {
	var b strings.Builder
	b.WriteString(u.w.header())
	for _, s := range m.Steps {
		if s.State == "pending" {
			continue
		}
		pct := fmt.Sprintf("%6.1f%%", s.Progress)
		if t := syncText(m, s); t != "" {
			pct = t
		}
		fmt.Fprintf(&b, "\n  %-20s %-8s %s  %s", s.Name, s.State, pct, u.w.stats(s.Name))
	}
	line := b.String()
	if line == u.last {
		return
	}
	u.last = line
	fmt.Fprintf(u.c.stdout, "%s %s\n", time.Now().Format("15:04:05"), line)
}

func (u *linesUI) finish(*migration) {}

// barsUI draws a live mpb progress bar per step under a status line.
type barsUI struct {
	p    *mpb.Progress
	head *mpb.Bar
	bars map[string]*mpb.Bar
	done bool
}

func newBarsUI(ctx context.Context, out io.Writer, w *watcher, m *migration) *barsUI {
	u := &barsUI{bars: map[string]*mpb.Bar{}}
	u.p = mpb.NewWithContext(ctx, mpb.WithOutput(out), mpb.WithWidth(120), mpb.WithRefreshRate(150*time.Millisecond), mpb.WithAutoRefresh())
	u.head = u.p.New(0, mpb.NopStyle(), mpb.PrependDecorators(decor.Any(func(decor.Statistics) string { return w.header() })))
	for _, s := range m.Steps {
		name := s.Name
		u.bars[name] = u.p.New(0, mpb.BarStyle().Lbound("[").Filler("=").Tip(">").Padding(" ").Rbound("]"),
			mpb.PrependDecorators(
				decor.Name(name, decor.WC{C: decor.DSyncSpaceR}),
				decor.Any(func(decor.Statistics) string {
					st, _, _ := w.step(name)
					return st.State
				}, decor.WC{C: decor.DSyncSpaceR}),
			),
			mpb.AppendDecorators(
				decor.Any(func(decor.Statistics) string {
					st, _, _ := w.step(name)
					if t := w.syncText(st); t != "" {
						return t
					}
					return fmt.Sprintf("%5.1f%%", st.Progress)
				}, decor.WC{C: decor.DSyncSpace}),
				// The step's text gets what is left after a bar of
				// minBarWidth: a long message would otherwise take the
				// whole line and leave no bar on an ordinary terminal.
				decor.Any(func(st decor.Statistics) string {
					return fitWidth("  "+w.stats(name), st.AvailableWidth-minBarWidth-2)
				}, decor.WC{C: decor.DSyncWidthR}),
			))
	}
	return u
}

// minBarWidth is the least room a step's bar keeps next to its text.
const minBarWidth = 20

// fitWidth cuts s to at most n runes, ending in "…" when cut.
func fitWidth(s string, n int) string {
	r := []rune(s)
	switch {
	case len(r) <= n:
		return s
	case n <= 0:
		return ""
	}
	return string(r[:n-1]) + "…"
}

func (u *barsUI) update(m *migration) {
	for _, s := range m.Steps {
		b := u.bars[s.Name]
		if b == nil {
			continue
		}
		cur, total := barValues(m, s)
		b.SetTotal(total, false)
		b.SetCurrent(cur)
	}
}

func (u *barsUI) finish(m *migration) {
	if u.done {
		return
	}
	u.done = true
	for _, s := range m.Steps {
		b := u.bars[s.Name]
		if b == nil {
			continue
		}
		if s.State == "done" {
			_, total := barValues(m, s)
			b.SetTotal(total, false)
			b.SetCurrent(total)
			b.SetTotal(-1, true)
		} else {
			b.Abort(false)
		}
	}
	u.head.SetTotal(-1, true)
	u.p.Wait()
}
