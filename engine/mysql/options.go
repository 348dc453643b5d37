package mysql

import "github.com/ferrymigrate/ferry"

// KnownOptions lists the Options.Extra keys the MySQL engine reads
// (ferry.OptionLister).
func (e *Engine) KnownOptions() []ferry.OptionSpec {
	return []ferry.OptionSpec{
		{Key: optWriteBlock, Values: []string{writeBlockNone, writeBlockReadOnl}, Doc: "none (default: cutover does not stop the source's writes) or read_only (SET GLOBAL read_only=ON on the source from cutover until release-source)"},
		{Key: extraFullLoad, Values: []string{"load", "insert"}, Doc: "full copy by LOAD DATA LOCAL INFILE (default) or multi-row REPLACEs"},
		{Key: extraFullLoadBinlog, Values: []string{"on", "off"}, Doc: "off: the full copy's target sessions skip the binlog (needs SUPER or BINLOG ADMIN)"},
	}
}
