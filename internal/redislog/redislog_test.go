package redislog

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"testing"
)

func TestPrintfGoesThroughSlog(t *testing.T) {
	for _, tc := range []struct {
		format string
		args   []any
		msg    string
		level  string
	}{
		{"redis: %s: connection pool: discarding bad conn", []any{"pool.go:123"}, "pool.go:123: connection pool: discarding bad conn", "WARN"},
		{"redis: auto mode fallback: maintnotifications disabled due to handshake error: %v", []any{"ERR unknown command"}, "auto mode fallback: maintnotifications disabled due to handshake error: ERR unknown command", "WARN"},
		{"sentinel: new master=%q addr=%q", []any{"m", "127.0.0.1:1"}, `sentinel: new master="m" addr="127.0.0.1:1"`, "INFO"},
	} {
		var buf bytes.Buffer
		Logger{L: slog.New(slog.NewJSONHandler(&buf, nil))}.Printf(context.Background(), tc.format, tc.args...)
		var line map[string]any
		if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
			t.Fatalf("%q: not one JSON line: %q", tc.format, buf.String())
		}
		if line["msg"] != tc.msg || line["level"] != tc.level || line["component"] != "go-redis" {
			t.Errorf("%q: got %v, want msg %q level %s", tc.format, line, tc.msg, tc.level)
		}
	}
}
