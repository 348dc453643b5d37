package mongo

import "github.com/ferrymigrate/ferry"

// KnownOptions lists the Options.Extra keys the MongoDB engine reads
// (ferry.OptionLister).
func (e *Engine) KnownOptions() []ferry.OptionSpec {
	return []ferry.OptionSpec{
		{Key: "reader", Values: []string{ReaderOplog, ReaderChangeStream}, Doc: "continuous sync reader: oplog or changestream (default: probe)"},
	}
}

// CutoverPlan says what cutover does to the source (ferry.CutoverPlanner).
func (e *Engine) CutoverPlan(m *ferry.Migration) string {
	return "cutover does not stop the source's writes: it drains until no change arrives for a quiet period; stop the applications' writes to the source first"
}
