package main

import (
	"log/slog"

	"github.com/ferrymigrate/ferry"
	mysqlengine "github.com/ferrymigrate/ferry/engine/mysql"
)

// The MySQL engine is built in (see newEngine in ferry.go), so the bench
// measures ferry beside the classic tools.
func init() {
	newEngine = func(logger *slog.Logger) ferry.Engine { return mysqlengine.New(logger) }
}
