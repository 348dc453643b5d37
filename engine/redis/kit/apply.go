package kit

import (
	"fmt"
	"strconv"
	"sync/atomic"

	"github.com/ferrymigrate/ferry/engine/redis/rdb"
	"github.com/ferrymigrate/ferry/engine/redis/writer"
)

// RDBApplier turns parsed RDB chunks into commands on the target:
// strings SET (+APPEND for further chunks), lists RPUSH, sets SADD, zsets
// ZADD with scores written exactly, hashes HSET, each key's TTL as an
// absolute PEXPIREAT; streams and module values by RESTORE of their
// serialized form (which keeps consumer groups, pending entries and
// entries-read exactly); function libraries by FUNCTION LOAD REPLACE.
type RDBApplier struct {
	rdb.NopHandler
	W       *writer.Writer
	F       *Filter
	Replace bool // DEL a key before writing its first chunk

	Keys, Skipped atomic.Int64
	args          [][]byte
	num           []byte
	OnKey         func()
}

func (a *RDBApplier) Function(code []byte) error {
	return a.W.Do(0, []byte("FUNCTION"), []byte("LOAD"), []byte("REPLACE"), code)
}

func (a *RDBApplier) Chunk(c *rdb.Chunk) error {
	db, ok := a.F.DB(c.DB)
	if !ok || !a.F.Key(c.Key) {
		if c.Last {
			a.Skipped.Add(1)
		}
		return nil
	}
	key := c.Key
	restored := false
	switch c.Kind {
	case rdb.KindString:
		if c.First {
			if err := a.do(db, "SET", key, c.Value); err != nil {
				return err
			}
		} else if len(c.Value) > 0 {
			if err := a.do(db, "APPEND", key, c.Value); err != nil {
				return err
			}
		}
	case rdb.KindList, rdb.KindSet:
		if err := a.del(db, c); err != nil {
			return err
		}
		if len(c.Elems) > 0 {
			cmd := "RPUSH"
			if c.Kind == rdb.KindSet {
				cmd = "SADD"
			}
			a.args = append(a.args[:0], []byte(cmd), key)
			a.args = append(a.args, c.Elems...)
			if err := a.W.Do(db, a.args...); err != nil {
				return err
			}
		}
	case rdb.KindZSet:
		if err := a.del(db, c); err != nil {
			return err
		}
		if len(c.Members) > 0 {
			a.args = append(a.args[:0], []byte("ZADD"), key)
			a.num = a.num[:0]
			// Scores are formatted into one buffer; slices into it stay
			// valid because it is sized up front.
			need := 0
			for range c.Members {
				need += 32
			}
			if cap(a.num) < need {
				a.num = make([]byte, 0, need)
			}
			for _, m := range c.Members {
				start := len(a.num)
				a.num = rdb.AppendScore(a.num, m.Score)
				a.args = append(a.args, a.num[start:len(a.num):len(a.num)], m.Member)
			}
			if err := a.W.Do(db, a.args...); err != nil {
				return err
			}
		}
	case rdb.KindHash:
		if err := a.del(db, c); err != nil {
			return err
		}
		if len(c.Fields) > 0 {
			a.args = append(a.args[:0], []byte("HSET"), key)
			for _, f := range c.Fields {
				a.args = append(a.args, f.Field, f.Value)
			}
			if err := a.W.Do(db, a.args...); err != nil {
				return err
			}
		}
	case rdb.KindStream, rdb.KindModule:
		if !c.Last {
			return nil
		}
		if c.Raw == nil {
			return fmt.Errorf("key %q (%s) is too large to RESTORE (over %d bytes serialized)", key, c.Kind, MaxRestoreBytes)
		}
		ttl := []byte("0")
		if c.ExpireAt != rdb.NoExpire {
			ttl = strconv.AppendInt(nil, c.ExpireAt, 10)
		}
		payload := rdb.DumpPayload(c.Raw, uint16(c.Version))
		if err := a.W.Do(db, []byte("RESTORE"), key, ttl, payload, []byte("REPLACE"), []byte("ABSTTL")); err != nil {
			return err
		}
		restored = true
	default:
		return fmt.Errorf("key %q: unsupported kind %v", key, c.Kind)
	}
	if c.Last {
		if c.ExpireAt != rdb.NoExpire && !restored {
			if err := a.do(db, "PEXPIREAT", key, strconv.AppendInt(nil, c.ExpireAt, 10)); err != nil {
				return err
			}
		}
		a.Keys.Add(1)
		if a.OnKey != nil {
			a.OnKey()
		}
	}
	return nil
}

func (a *RDBApplier) del(db int, c *rdb.Chunk) error {
	if c.First && a.Replace {
		return a.do(db, "DEL", c.Key)
	}
	return nil
}

func (a *RDBApplier) do(db int, cmd string, args ...[]byte) error {
	a.args = append(a.args[:0], []byte(cmd))
	a.args = append(a.args, args...)
	return a.W.Do(db, a.args...)
}

// MaxRestoreBytes bounds a stream or module value moved by RESTORE.
const MaxRestoreBytes = 512 << 20
