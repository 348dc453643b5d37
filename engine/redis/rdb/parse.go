package rdb

import (
	"encoding/binary"
	"errors"
	"io"
	"math"
	"strconv"
	"strings"
)

// ErrChecksum is wrapped by the error returned when the stored CRC64 does
// not match the data.
var ErrChecksum = errors.New("checksum mismatch")

// MaxVersion is the newest RDB format version this package reads.
const MaxVersion = 12

// Options tune Parse. The zero value is usable.
type Options struct {
	// MaxChunkElems bounds the elements (list/set elements, zset members,
	// hash fields, stream entries) of one chunk. Default 1024.
	MaxChunkElems int
	// MaxChunkBytes bounds the payload bytes of one chunk (a chunk can
	// exceed it by one element). Default 1 MiB.
	MaxChunkBytes int
	// CaptureRaw makes Parse capture each object's serialized bytes into
	// Chunk.Raw (on its last chunk), for DumpPayload / RESTORE.
	CaptureRaw bool
	// MaxRawBytes bounds a captured object; larger objects get no Raw.
	// 0 means no limit. Module values are always captured, whatever this says.
	MaxRawBytes int64
	// MaxStringBytes bounds any single string or encoded blob in the file;
	// longer ones are an error. Default 1 GiB.
	MaxStringBytes uint64
}

func (o *Options) defaults() {
	if o.MaxChunkElems <= 0 {
		o.MaxChunkElems = 1024
	}
	if o.MaxChunkBytes <= 0 {
		o.MaxChunkBytes = 1 << 20
	}
	if o.MaxStringBytes == 0 {
		o.MaxStringBytes = 1 << 30
	}
}

// Parse parses one RDB from r with default Options.
func Parse(r io.Reader, h Handler) (Info, error) {
	return ParseOptions(r, h, Options{})
}

// ParseOptions parses one RDB from r, calling h for what it finds. It stops
// right after the EOF opcode and the checksum (RDB >= 5). If r is a Peeker
// (such as *bufio.Reader) no byte past the end of the RDB is consumed from it;
// otherwise r is wrapped in a bufio.Reader that may read ahead.
func ParseOptions(r io.Reader, h Handler, o Options) (Info, error) {
	o.defaults()
	if h == nil {
		h = NopHandler{}
	}
	p := &parser{s: newSrc(r), h: h, o: o}
	err := p.run()
	p.info.Bytes = p.s.off
	return p.info, err
}

type parser struct {
	s    *src
	h    Handler
	o    Options
	ver  int
	info Info
	db   int

	c     Chunk
	key   []byte
	arena []byte // bytes of the current chunk's elements
	pend  int    // payload bytes in the current chunk
	slab  [][]byte
	blob  []byte // the current ziplist/listpack/intset blob
	lzfIn []byte
	tmp   []byte
}

func (p *parser) errf(off int64, format string, args ...any) error {
	return p.s.errf(off, nil, format, args...)
}

// keyMeta is what the opcodes before a key say about it.
type keyMeta struct {
	expire int64 // unix ms, or NoExpire
	idle   int64 // seconds, or -1
	freq   int   // LFU counter, or -1
}

var noKeyMeta = keyMeta{expire: NoExpire, idle: -1, freq: -1}

// run reads the header, then opcodes and keys up to and including the EOF
// opcode and the checksum.
func (p *parser) run() error {
	if err := p.header(); err != nil {
		return err
	}
	m := noKeyMeta
	for {
		off := p.s.off
		t, err := p.s.byte()
		if err != nil {
			return err
		}
		switch t {
		case opExpireTime, opExpireTimeMs, opFreq, opIdle:
			err = p.meta(t, &m)
		case opSelectDB:
			err = p.selectDB(off)
		case opResizeDB:
			err = p.resizeDB()
		case opSlotInfo:
			err = p.slotInfo()
		case opAux:
			err = p.aux()
		case opModuleAux:
			err = p.moduleAux()
		case opFunctionPreGA:
			err = p.functionPreGA()
		case opFunction2:
			err = p.function()
		case opEOF:
			return p.eof()
		default:
			err = p.keyObject(t, off, m)
			m = noKeyMeta
		}
		if err != nil {
			return err
		}
	}
}

// header reads the magic and the version.
func (p *parser) header() error {
	hdr, err := p.s.fixed(9)
	if err != nil {
		return err
	}
	if string(hdr[:5]) != "REDIS" {
		return p.errf(0, "not an RDB file (bad magic %q)", hdr[:5])
	}
	v, err := strconv.Atoi(string(hdr[5:9]))
	if err != nil || v < 1 || v > MaxVersion {
		return p.errf(5, "unsupported RDB version %q", hdr[5:9])
	}
	p.ver = v
	p.info.Version = v
	p.info.Aux = map[string]string{}
	return nil
}

// meta reads the argument of opcode t, an expire time, idle time or LFU
// counter of the next key, into m.
func (p *parser) meta(t byte, m *keyMeta) error {
	switch t {
	case opExpireTime:
		x, err := p.s.u32le()
		if err != nil {
			return err
		}
		m.expire = int64(int32(x)) * 1000
	case opExpireTimeMs:
		x, err := p.s.u64le()
		if err != nil {
			return err
		}
		m.expire = int64(x)
	case opFreq:
		b, err := p.s.byte()
		if err != nil {
			return err
		}
		m.freq = int(b)
	case opIdle:
		x, err := p.s.plainLen()
		if err != nil {
			return err
		}
		m.idle = int64(x & math.MaxInt64)
	}
	return nil
}

// selectDB reads the number of the DB (after the opcode, at off) whose keys
// follow.
func (p *parser) selectDB(off int64) error {
	x, err := p.s.plainLen()
	if err != nil {
		return err
	}
	if x > math.MaxInt32 {
		return p.errf(off, "bad db number %d", x)
	}
	p.db = int(x)
	return p.h.SelectDB(p.db)
}

// resizeDB reads the sizes of the current DB's key and expire tables.
func (p *parser) resizeDB() error {
	keys, err := p.s.plainLen()
	if err != nil {
		return err
	}
	expires, err := p.s.plainLen()
	if err != nil {
		return err
	}
	return p.h.ResizeDB(p.db, keys, expires)
}

// slotInfo reads a cluster slot with the sizes of its key and expire tables.
func (p *parser) slotInfo() error {
	var x [3]uint64
	for i := range x {
		var err error
		if x[i], err = p.s.plainLen(); err != nil {
			return err
		}
	}
	return p.h.SlotInfo(x[0], x[1], x[2])
}

// aux reads an aux field (after its opcode).
func (p *parser) aux() error {
	k, err := p.appendString(p.tmp[:0])
	if err != nil {
		return err
	}
	p.tmp = k
	val, err := p.appendString(p.arena[:0])
	if err != nil {
		return err
	}
	p.arena = val
	if len(p.info.Aux) < 1024 {
		p.info.Aux[string(k)] = string(val)
	}
	return p.h.Aux(k, val)
}

// function reads a function library (after its opcode).
func (p *parser) function() error {
	code, err := p.appendString(p.arena[:0])
	if err != nil {
		return err
	}
	p.arena = code
	p.info.Functions++
	return p.h.Function(code)
}

// eof reads what follows the EOF opcode: the CRC64 of all before it
// (RDB >= 5; 0 is no checksum).
func (p *parser) eof() error {
	if p.ver < 5 {
		return nil
	}
	sum := p.s.crc
	b, err := p.s.fixed(8)
	if err != nil {
		return err
	}
	stored := binary.LittleEndian.Uint64(b)
	p.info.Checksum = stored
	if stored != 0 {
		if stored != sum {
			return p.s.errf(p.s.off-8, ErrChecksum, "stored CRC64 %016x, computed %016x", stored, sum)
		}
		p.info.Verified = true
	}
	return nil
}

// keyObject reads a key and its value, an object of type byte t at off,
// with what m says about it.
func (p *parser) keyObject(t byte, off int64, m keyMeta) error {
	typ := Type(t)
	if typ.Kind() == 0 {
		if typ == TypeModulePreGA {
			return p.errf(off, "unsupported object type %d (%s, pre-release module format)", t, typ)
		}
		return p.errf(off, "unknown opcode or object type 0x%02x (%d)", t, t)
	}
	k, err := p.appendString(p.key[:0])
	if err != nil {
		return err
	}
	p.key = k
	if err := p.object(typ, m.expire, m.idle, m.freq); err != nil {
		return err
	}
	p.info.Keys++
	return nil
}

// functionPreGA reads the function format of Redis 7.0 release candidates
// (name, engine, optional description, code) and hands it over as a library
// with a shebang line.
func (p *parser) functionPreGA() error {
	name, err := p.appendString(nil)
	if err != nil {
		return err
	}
	engine, err := p.appendString(nil)
	if err != nil {
		return err
	}
	hasDesc, err := p.s.plainLen()
	if err != nil {
		return err
	}
	if hasDesc != 0 {
		if p.tmp, err = p.appendString(p.tmp[:0]); err != nil {
			return err
		}
	}
	code := []byte("#!" + strings.ToLower(string(engine)) + " name=" + string(name) + "\n")
	if code, err = p.appendString(code); err != nil {
		return err
	}
	p.info.Functions++
	return p.h.Function(code)
}
