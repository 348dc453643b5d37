package backup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/ferrymigrate/ferry/engine/redis/kit"
)

// aofSaveEvery is how often the command part of an import checkpoints.
const aofSaveEvery = time.Second

// upperASCII returns the command name in upper case.
func upperASCII(b []byte) string {
	buf := make([]byte, len(b))
	for i, c := range b {
		if 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		buf[i] = c
	}
	return string(buf)
}

// replay applies an AOF's commands from ir.r until the end of the file: as
// Redis loads an AOF, SELECT sets the db of the commands that follow and
// MULTI ... EXEC blocks are applied as blocks; "#" annotation lines are
// skipped. The job's filters apply as on the replication stream (db list
// and remap; keys by the command's first key).
func (ir *importRun) replay(ctx context.Context, where string, fl importFile, db int, last bool) error {
	r := ir.r
	inMulti := false
	multiAt := int64(0)
	n := 0
	for {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		start := ir.pos()
		b, err := r.Peek(1)
		if err == io.EOF && len(b) == 0 {
			break
		}
		if err != nil {
			return ir.readError(ctx, where, fl, start, err)
		}
		switch b[0] {
		case '*', '#', '\r', '\n':
		default:
			return corruptFile(where, fl.Name, start, "expected an AOF command ('*'), found another byte")
		}
		args, err := r.ReadCommand()
		if err != nil {
			if errors.Is(err, io.ErrUnexpectedEOF) && last && ir.spec.LoadTruncatedAOF {
				ir.rt.Message(fmt.Sprintf("%s ends with a truncated command at byte %d: dropped (aof_load_truncated)", ir.src.label(fl), start))
				if inMulti {
					_ = ir.w.Do(0, []byte("DISCARD"))
					inMulti = false
				}
				break
			}
			if errors.Is(err, io.ErrUnexpectedEOF) {
				return corruptFile(where, fl.Name, start, "the file ends in the middle of a command (truncated; set aof_load_truncated to yes to drop it, as Redis's aof-load-truncated does)")
			}
			return ir.readError(ctx, where, fl, start, err)
		}
		if len(args) == 0 || (len(args[0]) > 0 && args[0][0] == '#') {
			continue // annotation
		}
		name := upperASCII(args[0])
		switch name {
		case "SELECT":
			if len(args) != 2 {
				return corruptFile(where, fl.Name, start, "SELECT without one db number")
			}
			v, err := strconv.Atoi(string(args[1]))
			if err != nil || v < 0 {
				return corruptFile(where, fl.Name, start, "SELECT with an argument that is not a db number")
			}
			db = v
			continue
		case "MULTI":
			if inMulti {
				return corruptFile(where, fl.Name, start, "MULTI inside MULTI")
			}
			inMulti, multiAt = true, start
		case "EXEC":
			if !inMulti {
				return corruptFile(where, fl.Name, start, "EXEC without MULTI")
			}
			inMulti = false
		case "DISCARD":
			inMulti = false
		case "PING", "REPLCONF":
			continue
		case "FUNCTION":
			// An AOF rewrite writes libraries as FUNCTION LOAD <code>: load
			// them with REPLACE, as the RDB path does, so that an import
			// started over (FLUSHDB keeps functions) or into a target that
			// has the library does not fail.
			if len(args) >= 3 && strings.EqualFold(string(args[1]), "LOAD") && !strings.EqualFold(string(args[2]), "REPLACE") {
				args = append([][]byte{args[0], args[1], []byte("REPLACE")}, args[2:]...)
			}
		}
		switch name {
		case "MULTI", "EXEC", "DISCARD":
			if err := ir.w.Do(0, args...); err != nil {
				return fmt.Errorf("write to target: %w", err)
			}
		default:
			tdb, ok := ir.f.DB(db)
			if !ok {
				continue
			}
			if len(args) > 1 && ir.f.KeysFiltered() && !kit.IsKeyless(name) && !ir.f.Key(args[1]) {
				continue
			}
			if err := ir.w.Do(tdb, args...); err != nil {
				return fmt.Errorf("write to target: %w", err)
			}
			ir.cp.Ops++
		}
		if n++; n%256 == 0 {
			ir.tick()
			if !inMulti && time.Since(ir.lastSave) >= aofSaveEvery {
				ir.cp.Offset, ir.cp.DB = ir.pos(), db
				ir.cp.Bytes = ir.bytesBefore(ir.cp.File) + ir.cp.Offset
				if err := ir.save(ctx); err != nil {
					return err
				}
			}
		}
	}
	if inMulti {
		if !(last && ir.spec.LoadTruncatedAOF) {
			return corruptFile(where, fl.Name, multiAt, "a MULTI block is not closed by EXEC at the end of the file (truncated)")
		}
		_ = ir.w.Do(0, []byte("DISCARD"))
	}
	ir.cp.Offset, ir.cp.DB = ir.pos(), db
	return nil
}
