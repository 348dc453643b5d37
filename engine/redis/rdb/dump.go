package rdb

import (
	"bytes"
	"encoding/binary"
	"math"
	"strconv"
)

// DumpPayload builds a DUMP/RESTORE payload from an object's serialized form
// (Chunk.Raw: type byte and payload): it appends the 2-byte little-endian RDB
// version and the CRC64 of everything before it.
func DumpPayload(raw []byte, rdbVersion uint16) []byte {
	return AppendDumpPayload(make([]byte, 0, len(raw)+10), raw, rdbVersion)
}

// AppendDumpPayload is DumpPayload appending to dst.
func AppendDumpPayload(dst, raw []byte, rdbVersion uint16) []byte {
	start := len(dst)
	dst = append(dst, raw...)
	dst = binary.LittleEndian.AppendUint16(dst, rdbVersion)
	return binary.LittleEndian.AppendUint64(dst, CRC64(0, dst[start:]))
}

// FormatScore formats a zset score so that Redis parses it back to exactly
// the same double: the shortest representation that round-trips, and "inf",
// "-inf", "nan" as Redis writes them.
func FormatScore(f float64) string {
	return string(AppendScore(nil, f))
}

// AppendScore is FormatScore appending to dst.
func AppendScore(dst []byte, f float64) []byte {
	switch {
	case math.IsInf(f, 1):
		return append(dst, "inf"...)
	case math.IsInf(f, -1):
		return append(dst, "-inf"...)
	case math.IsNaN(f):
		return append(dst, "nan"...)
	}
	return strconv.AppendFloat(dst, f, 'g', -1, 64)
}

// ParseDump decodes a DUMP payload (from DUMP, or DumpPayload) and hands its
// value to h.Chunk as the chunks of key (DB 0, no TTL), like Parse does for
// a key of a file. It checks the CRC64 (when not zero) and the version, and
// that the payload holds exactly one object.
func ParseDump(payload, key []byte, h Handler, o Options) error {
	if len(payload) < 11 {
		return &Error{Msg: "DUMP payload too short"}
	}
	body := payload[:len(payload)-8]
	if sum := binary.LittleEndian.Uint64(payload[len(payload)-8:]); sum != 0 && sum != CRC64(0, body) {
		return &Error{Offset: int64(len(body)), Msg: "DUMP payload CRC64 mismatch", Err: ErrChecksum}
	}
	ver := int(binary.LittleEndian.Uint16(body[len(body)-2:]))
	if ver < 1 || ver > MaxVersion {
		return &Error{Offset: int64(len(body) - 2), Msg: "unsupported DUMP payload version " + strconv.Itoa(ver)}
	}
	obj := body[:len(body)-2]
	o.defaults()
	if h == nil {
		h = NopHandler{}
	}
	p := &parser{s: newSrc(bytes.NewReader(obj)), h: h, o: o, ver: ver}
	t := Type(obj[0])
	if t.Kind() == 0 {
		return p.errf(0, "unknown object type 0x%02x (%d)", byte(t), byte(t))
	}
	if _, err := p.s.byte(); err != nil {
		return err
	}
	p.key = key
	if err := p.object(t, NoExpire, -1, -1); err != nil {
		return err
	}
	if p.s.off != int64(len(obj)) {
		return p.errf(p.s.off, "%d trailing bytes after the object", int64(len(obj))-p.s.off)
	}
	return nil
}
