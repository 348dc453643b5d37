package main

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/ferrymigrate/ferry"
	mongoengine "github.com/ferrymigrate/ferry/engine/mongo"
	mysqlengine "github.com/ferrymigrate/ferry/engine/mysql"
	redisengine "github.com/ferrymigrate/ferry/engine/redis"
)

// migrationVerbHelp is what `ferry migrations -h` says of each verb.
var migrationVerbHelp = map[string]string{
	"create":         "create a job from --source/--target (or --file); modes default to full,incremental,verify; --option KEY=VALUE sets options (unknown keys are errors)",
	"list":           "list the project's jobs with state, step, progress, lag and readiness",
	"get":            "show a job: steps and counters, readiness (why it is not ready), the cutover record",
	"watch":          "follow a job live (every second): counters with units, backlog and lag of the sync, readiness",
	"start":          "start a created job, or retry a failed one from its checkpoint",
	"pause":          "pause a running job at its checkpoint (nothing syncs; the lag is unknown while paused)",
	"resume":         "resume a paused job from its checkpoint",
	"cutover":        "finish the sync and complete the job (during incremental sync); says what it does to the source",
	"release-source": "lift the write block cutover left on the source (Redis CLIENT UNPAUSE, MySQL SET GLOBAL read_only=OFF)",
	"extend-cutover": "push the cutover deadline out by --hours",
	"verify":         "verify on demand: a verification-only job over the same source and target",
	"release":        "end a job and free what it holds (reverse sync stops)",
	"delete":         "delete a job that is not running",
}

// engineOptions lists the engine-specific options of kind ("" or an
// unknown kind: those of every engine).
func engineOptions(kind string) []ferry.OptionSpec {
	all := map[string]ferry.OptionLister{
		string(ferry.KindRedis):   redisengine.New(discardLogger()),
		string(ferry.KindMySQL):   mysqlengine.New(discardLogger()),
		string(ferry.KindMongoDB): mongoengine.New(discardLogger()),
	}
	if l, ok := all[kind]; ok {
		return l.KnownOptions()
	}
	var out []ferry.OptionSpec
	seen := map[string]bool{}
	kinds := make([]string, 0, len(all))
	for k := range all {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	for _, k := range kinds {
		for _, s := range all[k].KnownOptions() {
			if !seen[s.Key] {
				seen[s.Key] = true
				out = append(out, s)
			}
		}
	}
	return out
}

// buildOptions turns KEY=VALUE settings into the job's options body: the
// common options (conflict, parallelism, ...) into their fields, the
// engine's own into options.extra. An unknown key is an error that lists
// the known ones; a value outside an option's values one that lists them.
func buildOptions(engine string, kv map[string]string, opts map[string]any) error {
	if len(kv) == 0 {
		return nil
	}
	specs := engineOptions(engine)
	keys := make([]string, 0, len(kv))
	for k := range kv {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	extra := map[string]string{}
	if x, ok := opts["extra"].(map[string]string); ok {
		extra = x
	}
	for _, k := range keys {
		v := kv[k]
		common, err := ferry.CheckOption(ferry.EngineKind(engine), specs, k, v)
		if err != nil {
			return err
		}
		if !common {
			extra[k] = v
			continue
		}
		switch k {
		case "parallelism", "bandwidthLimitMb", "cutoverLagSeconds":
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return ferry.FieldError("options."+k, "want a number, got %q", v)
			}
			opts[k] = n
		case "dropTarget", "releaseSourceAfterCutover":
			opts[k] = v == "true"
		default:
			opts[k] = v
		}
	}
	if len(extra) > 0 {
		opts["extra"] = extra
	}
	return nil
}

// kindOf is the engine kind an endpoint body names ("" for a registered
// endpoint's name).
func kindOf(e map[string]any) string {
	k, _ := e["kind"].(string)
	return k
}

// cutoverRecord is the native API's cutover record of a job.
type cutoverRecord struct {
	ferry.CutoverInfo
	SourceState string `json:"sourceState"`
	Summary     string `json:"summary"`
}

// notReady is the readiness reasons in one line ("" when ready or unknown).
func (m *migration) notReady() string {
	if m.Readiness == nil || m.Readiness.Ready || m.ended() {
		return ""
	}
	var parts []string
	for _, r := range m.Readiness.Reasons {
		parts = append(parts, r.Code+": "+r.Message)
	}
	return strings.Join(parts, "; ")
}

// advice is the first readiness reason's advice.
func (m *migration) advice() string {
	if m.Readiness == nil || m.ended() {
		return ""
	}
	for _, r := range m.Readiness.Reasons {
		if r.Advice != "" {
			return r.Advice
		}
	}
	return ""
}

// printCutover prints the job's cutover record.
func (c *cli) printCutover(m *migration) error {
	r := m.Cutover
	if r == nil {
		return nil
	}
	fmt.Fprintln(c.stdout)
	ver := ""
	if v := r.Verification; v != nil {
		ver = fmt.Sprintf("%s: %s %s checked, %d missing, %d extra, %d different", v.State, fmtCount(v.Checked), v.Unit, v.Missing, v.Extra, v.Different)
	}
	until := ""
	if r.SourceBlockedUntil != nil {
		until = fmtTime(r.SourceBlockedUntil)
	}
	return c.kv(
		"Cutover asked", fmtTime(r.RequestedAt),
		"Source write block", r.SourceWriteBlock,
		"Source blocked at", fmtTime(r.SourceBlockedAt),
		"Source blocked until", until,
		"Source released at", fmtTime(r.SourceReleasedAt),
		"Source now", r.SourceState,
		"Source final position", r.SourcePosition,
		"Drained to", r.DrainedPosition,
		"Verification", ver,
		"Source after cutover", r.Summary,
		"Notes", strings.Join(r.Notes, "; "),
	)
}

// actionResult prints what a job verb did.
func (c *cli) actionResult(action string, m *migration) {
	fmt.Fprintln(c.stdout, actionLine(m))
	switch action {
	case "cutover":
		if m.Cutover != nil {
			for _, n := range m.Cutover.Notes {
				fmt.Fprintln(c.stdout, "cutover:", n)
			}
		}
		fmt.Fprintf(c.stdout, "follow it with: ferry migrations watch %s\n", m.ID)
	case "release-source":
		if m.Cutover != nil && m.Cutover.Summary != "" {
			fmt.Fprintln(c.stdout, "source:", m.Cutover.Summary)
		}
	case "pause":
		fmt.Fprintln(c.stdout, "nothing syncs while paused; resume it with: ferry migrations resume", m.ID)
	}
}

// lagText is the lag for humans: "lag unknown (paused)" and the like
// where the API has none.
func (m *migration) lagText() string {
	if l := m.lag(); l != "" {
		return "lag " + l
	}
	switch {
	case m.State == "paused":
		return "lag unknown (paused)"
	case m.CurrentStep == "incremental" || m.CurrentStep == "reverse_incremental":
		if m.State == "running" || m.State == "cutting_over" {
			return "lag unknown (not measured yet)"
		}
	}
	return ""
}

// syncBar maps a sync step (no total) onto a bar of its backlog: bytes
// applied against applied plus not yet applied; a step with no backlog
// figure fills once its lag is known and at or below the threshold.
func syncBar(m *migration, s step) (current, total int64, ok bool) {
	if s.Name != "incremental" && s.Name != "reverse_incremental" || s.Counters.Total > 0 {
		return 0, 0, false
	}
	switch s.State {
	case "done":
		return 1, 1, true
	case "pending":
		return 0, 1, true
	}
	if s.Counters.LagBytes > 0 || s.Counters.Bytes > 0 {
		return s.Counters.Bytes, s.Counters.Bytes + s.Counters.LagBytes, true
	}
	if m.LagSeconds != nil && m.CurrentStep == s.Name {
		th := int64(5)
		if *m.LagSeconds <= th {
			return 1, 1, true
		}
		return th, *m.LagSeconds, true
	}
	return 0, 1, true
}

// syncText is a sync step's bar label: backlog and lag instead of a
// percentage that would stay at 0.
func syncText(m *migration, s step) string {
	if s.Name != "incremental" && s.Name != "reverse_incremental" || s.Counters.Total > 0 {
		return ""
	}
	if s.State == "done" || s.State == "pending" {
		return ""
	}
	var parts []string
	if s.Counters.LagBytes > 0 {
		parts = append(parts, "backlog "+fmtBytes(s.Counters.LagBytes))
	} else if s.Counters.Bytes > 0 {
		parts = append(parts, "no backlog")
	}
	if m.CurrentStep == s.Name || m.State == "paused" {
		if l := m.lagText(); l != "" {
			parts = append(parts, l)
		}
	}
	return strings.Join(parts, ", ")
}
