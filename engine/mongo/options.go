package mongo

import "github.com/ferrymigrate/ferry"

// KnownOptions lists the Options.Extra keys the MongoDB engine reads
// (ferry.OptionLister).
func (e *Engine) KnownOptions() []ferry.OptionSpec {
	return []ferry.OptionSpec{
		{Key: "reader", Values: []string{ReaderOplog, ReaderChangeStream}, Doc: "continuous sync reader: oplog or changestream (default: probe)"},
	}
}
