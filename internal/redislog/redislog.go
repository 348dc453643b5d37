// Package redislog sends the go-redis client's own log lines (its internal
// logger, which otherwise prints unstructured lines to stderr) through slog.
package redislog

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	goredis "github.com/redis/go-redis/v9"
)

// Logger adapts a *slog.Logger to go-redis's logging interface.
type Logger struct{ L *slog.Logger }

// Printf logs one go-redis line: at WARN when it reports an error or a
// failure, else at INFO, with component=go-redis.
func (l Logger) Printf(ctx context.Context, format string, v ...any) {
	msg := strings.TrimSpace(strings.TrimPrefix(fmt.Sprintf(format, v...), "redis: "))
	level := slog.LevelInfo
	low := strings.ToLower(msg)
	if strings.Contains(low, "error") || strings.Contains(low, "fail") || strings.Contains(low, "bad ") {
		level = slog.LevelWarn
	}
	if ctx == nil {
		ctx = context.Background()
	}
	l.L.Log(ctx, level, msg, "component", "go-redis")
}

// Install makes go-redis log through l (process-wide: go-redis has a single
// logger). A nil l is ignored.
func Install(l *slog.Logger) {
	if l == nil {
		return
	}
	goredis.SetLogger(Logger{L: l})
}
