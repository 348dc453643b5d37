package ferry

import (
	"fmt"
	"sort"
	"strings"
)

// OptionSpec describes one engine-specific setting of a job
// (Options.Extra).
type OptionSpec struct {
	Key string
	// Values are the accepted values; empty: free text or a number, as Doc says.
	Values []string
	Doc    string
}

// OptionLister is implemented by engines that list the Options.Extra keys
// they read (the CLI checks --option keys against them).
type OptionLister interface {
	KnownOptions() []OptionSpec
}

// CommonOptions are the Options fields every engine takes, by the key the
// CLI's --option KEY=VALUE and job files use (JSON names of Options).
var CommonOptions = []OptionSpec{
	{Key: "conflict", Values: []string{string(ConflictFail), string(ConflictReplace), string(ConflictSkip)}, Doc: "what to do with data already on the target"},
	{Key: "parallelism", Doc: "connections of the full copy and the apply (a number; 0: the engine chooses)"},
	{Key: "bandwidthLimitMb", Doc: "bandwidth limit in MB/s (a number)"},
	{Key: "cutoverLagSeconds", Doc: "ready for cutover once the lag is at or below this (a number, default 5)"},
	{Key: "resumeMode", Values: []string{string(ResumeAuto), string(ResumeManual)}, Doc: "retry a broken step by itself, or fail"},
	{Key: "dropTarget", Values: []string{"true", "false"}, Doc: "empty the target's included namespaces before copying"},
	{Key: "releaseSourceAfterCutover", Values: []string{"true", "false"}, Doc: "lift the write block cutover put on the source when the job completes (default: it stays until release-source)"},
}

// CheckOption checks key=value against the common options and the
// engine's specs: an unknown key or a value outside the listed ones is an
// EINVALID error naming the known keys or values.
func CheckOption(engine EngineKind, specs []OptionSpec, key, value string) (common bool, err error) {
	check := func(s OptionSpec) error {
		if len(s.Values) > 0 && !contains(s.Values, value) {
			return FieldError("options."+key, "%q is not one of %s", value, strings.Join(s.Values, ", "))
		}
		return nil
	}
	for _, s := range CommonOptions {
		if s.Key == key {
			return true, check(s)
		}
	}
	for _, s := range specs {
		if s.Key == key {
			return false, check(s)
		}
	}
	var keys []string
	for _, s := range CommonOptions {
		keys = append(keys, s.Key)
	}
	for _, s := range specs {
		keys = append(keys, s.Key)
	}
	sort.Strings(keys)
	what := "the " + string(engine) + " engine"
	if engine == "" {
		what = "any engine"
	}
	return false, &Error{Code: EINVALID, Field: "options." + key, Reason: "UNKNOWN_OPTION",
		Message: fmt.Sprintf("unknown option %q for %s; known options: %s", key, what, strings.Join(keys, ", "))}
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}
