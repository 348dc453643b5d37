// Package rdb is a streaming parser for Redis RDB files (versions 1 to 12,
// everything Redis 2.x to 7.4 writes), as found on disk and as sent by a
// master over the replication link.
//
// The parser reads from an io.Reader, never buffers a whole value that can be
// big (aggregates are delivered in bounded chunks), knows exactly how many
// bytes it consumed and stops right after the EOF opcode and the 8-byte
// checksum, which it verifies when it is not zero. Pass a *bufio.Reader (or
// any Peeker) to continue reading the replication stream after the RDB: Parse
// never reads past the end of the RDB from a Peeker.
//
// Values are delivered to a Handler as Chunks. A key whose value fits in one
// chunk is delivered as a single chunk with First and Last set; bigger values
// come as several chunks (First on the first, Last on the last), each holding
// at most Options.MaxChunkElems elements or about Options.MaxChunkBytes bytes.
// Strings are chunked too (a writer does SET then APPEND). Streams are chunked
// by entries; their metadata (last id, entries-added, max-deleted-id, first
// id, consumer groups with their PEL and consumers) comes whole on the last
// chunk.
//
// Options.CaptureRaw captures each object's serialized bytes for a RESTORE
// payload (DumpPayload); ParseDump decodes a DUMP payload with the same
// machinery; FormatScore writes a zset score so that it round-trips exactly.
//
// Every byte slice handed to a Handler is only valid during the call: the
// parser reuses its buffers. Copy what you keep.
package rdb

import (
	"encoding/binary"
	"fmt"
	"strconv"
)

// Type is an RDB object type byte: it names both the data type and the
// encoding it was serialized with.
type Type uint8

// RDB object types.
const (
	TypeString              Type = 0
	TypeList                Type = 1
	TypeSet                 Type = 2
	TypeZSet                Type = 3
	TypeHash                Type = 4
	TypeZSet2               Type = 5
	TypeModulePreGA         Type = 6
	TypeModule2             Type = 7
	TypeHashZipmap          Type = 9
	TypeListZiplist         Type = 10
	TypeSetIntset           Type = 11
	TypeZSetZiplist         Type = 12
	TypeHashZiplist         Type = 13
	TypeListQuicklist       Type = 14
	TypeStreamListpacks     Type = 15
	TypeHashListpack        Type = 16
	TypeZSetListpack        Type = 17
	TypeListQuicklist2      Type = 18
	TypeStreamListpacks2    Type = 19
	TypeSetListpack         Type = 20
	TypeStreamListpacks3    Type = 21
	TypeHashMetadataPreGA   Type = 22
	TypeHashListpackExPreGA Type = 23
	TypeHashMetadata        Type = 24
	TypeHashListpackEx      Type = 25
)

// RDB opcodes.
const (
	opSlotInfo      = 244
	opFunction2     = 245
	opFunctionPreGA = 246
	opModuleAux     = 247
	opIdle          = 248
	opFreq          = 249
	opAux           = 250
	opResizeDB      = 251
	opExpireTimeMs  = 252
	opExpireTime    = 253
	opSelectDB      = 254
	opEOF           = 255
)

var typeNames = map[Type]string{
	TypeString: "string", TypeList: "list", TypeSet: "set", TypeZSet: "zset",
	TypeHash: "hash", TypeZSet2: "zset2", TypeModulePreGA: "module-pre-ga",
	TypeModule2: "module2", TypeHashZipmap: "hash-zipmap", TypeListZiplist: "list-ziplist",
	TypeSetIntset: "set-intset", TypeZSetZiplist: "zset-ziplist", TypeHashZiplist: "hash-ziplist",
	TypeListQuicklist: "list-quicklist", TypeStreamListpacks: "stream-listpacks",
	TypeHashListpack: "hash-listpack", TypeZSetListpack: "zset-listpack",
	TypeListQuicklist2: "list-quicklist2", TypeStreamListpacks2: "stream-listpacks2",
	TypeSetListpack: "set-listpack", TypeStreamListpacks3: "stream-listpacks3",
	TypeHashMetadataPreGA: "hash-metadata-pre-ga", TypeHashListpackExPreGA: "hash-listpack-ex-pre-ga",
	TypeHashMetadata: "hash-metadata", TypeHashListpackEx: "hash-listpack-ex",
}

func (t Type) String() string {
	if s, ok := typeNames[t]; ok {
		return s
	}
	return "type-" + strconv.Itoa(int(t))
}

// Kind returns the logical data type of t, or 0 for an unknown type.
func (t Type) Kind() Kind {
	switch t {
	case TypeString:
		return KindString
	case TypeList, TypeListZiplist, TypeListQuicklist, TypeListQuicklist2:
		return KindList
	case TypeSet, TypeSetIntset, TypeSetListpack:
		return KindSet
	case TypeZSet, TypeZSet2, TypeZSetZiplist, TypeZSetListpack:
		return KindZSet
	case TypeHash, TypeHashZipmap, TypeHashZiplist, TypeHashListpack,
		TypeHashMetadataPreGA, TypeHashListpackExPreGA, TypeHashMetadata, TypeHashListpackEx:
		return KindHash
	case TypeStreamListpacks, TypeStreamListpacks2, TypeStreamListpacks3:
		return KindStream
	case TypeModule2:
		return KindModule
	}
	return 0
}

// Kind is the logical data type of a key.
type Kind uint8

// Kinds of values.
const (
	KindString Kind = iota + 1
	KindList
	KindSet
	KindZSet
	KindHash
	KindStream
	KindModule
)

func (k Kind) String() string {
	switch k {
	case KindString:
		return "string"
	case KindList:
		return "list"
	case KindSet:
		return "set"
	case KindZSet:
		return "zset"
	case KindHash:
		return "hash"
	case KindStream:
		return "stream"
	case KindModule:
		return "module"
	}
	return "unknown"
}

// NoExpire is the ExpireAt of keys and hash fields without a TTL.
const NoExpire int64 = -1

// Chunk is one piece of one key's value. Which payload field is set depends
// on Kind: Value (string), Elems (list elements in order, set members),
// Members (zset), Fields (hash), Entries and, on the last chunk, Stream
// (stream), Module (module values, whose content is only in Raw).
type Chunk struct {
	DB       int
	Key      []byte
	Type     Type  // serialized type/encoding
	Kind     Kind  // logical type
	ExpireAt int64 // absolute unix time in ms, or NoExpire
	Idle     int64 // LRU idle seconds (IDLE opcode), or -1
	Freq     int   // LFU frequency (FREQ opcode), or -1
	Version  int   // RDB version of the file (for DumpPayload)

	Seq   int  // chunk number within the key, from 0
	First bool // first chunk of the key: the writer replaces/deletes here
	Last  bool // last chunk of the key: the writer sets the TTL here

	Value   []byte        // KindString: this chunk's bytes of the string (SET, then APPEND)
	Elems   [][]byte      // KindList, KindSet
	Members []ZMember     // KindZSet
	Fields  []HashField   // KindHash
	Entries []StreamEntry // KindStream: live entries (deleted ones are skipped), in ID order
	Stream  *StreamMeta   // KindStream, on the last chunk only
	Module  *ModuleValue  // KindModule, on the last chunk only

	// Raw is the object's serialized form (the type byte followed by the
	// payload, exactly as in the file), set on the last chunk when
	// Options.CaptureRaw is on and the object is not larger than
	// Options.MaxRawBytes, and always for module values. Build a RESTORE
	// payload from it with DumpPayload(Raw, Version).
	Raw []byte
}

// ZMember is a sorted-set member with its score, bit-exact.
type ZMember struct {
	Member []byte
	Score  float64
}

// HashField is a hash field with its value and, for hashes with field TTLs
// (Redis 7.4), its absolute expiry time in ms (NoExpire when none).
type HashField struct {
	Field    []byte
	Value    []byte
	ExpireAt int64
}

// StreamID is a stream entry ID.
type StreamID struct{ Ms, Seq uint64 }

func (id StreamID) String() string {
	return strconv.FormatUint(id.Ms, 10) + "-" + strconv.FormatUint(id.Seq, 10)
}

// IsZero reports whether id is 0-0.
func (id StreamID) IsZero() bool { return id.Ms == 0 && id.Seq == 0 }

func streamIDFromRaw(b []byte) StreamID {
	return StreamID{binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:16])}
}

// StreamEntry is one stream entry: Fields holds field, value, field, value...
type StreamEntry struct {
	ID     StreamID
	Fields [][]byte
}

// StreamMeta is the state of a stream besides its entries. It is delivered
// whole (it is held in memory; a group's PEL is as big as its pending list).
type StreamMeta struct {
	Length       uint64   // number of live entries
	LastID       StreamID // last-generated-id (XSETID)
	FirstID      StreamID // recorded-first-entry-id
	MaxDeletedID StreamID // max-deleted-entry-id (0-0 for type 15 streams)
	EntriesAdded uint64   // entries-added (= Length for type 15 streams)
	Groups       []StreamGroup
}

// StreamGroup is a consumer group.
type StreamGroup struct {
	Name        []byte
	LastID      StreamID // last-delivered-id
	EntriesRead int64    // entries-read, or -1 when unknown (type 15 streams)
	PEL         []PendingEntry
	Consumers   []StreamConsumer
}

// PendingEntry is an entry of a group's pending entries list.
type PendingEntry struct {
	ID            StreamID
	DeliveryTime  int64 // unix ms of the last delivery
	DeliveryCount uint64
	Consumer      []byte // owner, from the consumers' PELs (nil if none claims it)
}

// StreamConsumer is a consumer of a group with the IDs it has pending.
type StreamConsumer struct {
	Name       []byte
	SeenTime   int64 // unix ms
	ActiveTime int64 // unix ms (= SeenTime before type 21 streams)
	PEL        []StreamID
}

// ModuleValue describes a module (type 2) value; its content is in Chunk.Raw.
type ModuleValue struct {
	ID     uint64 // 64-bit module type id
	Name   string // 9-character module type name, decoded from ID
	EncVer int    // encoding version, the low 10 bits of ID
}

// ModuleTypeName decodes the 9-character type name and the encoding version
// from a 64-bit module type id.
func ModuleTypeName(id uint64) (name string, encver int) {
	const charset = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	var b [9]byte
	v := id >> 10
	for i := 8; i >= 0; i-- {
		b[i] = charset[v&63]
		v >>= 6
	}
	return string(b[:]), int(id & 1023)
}

// Handler receives what Parse finds. Embed NopHandler to implement only some
// methods. Returning an error stops the parse with that error.
type Handler interface {
	// Aux is called for each AUX field (redis-ver, redis-bits, ctime,
	// used-mem, repl-id, repl-offset, aof-base, ...).
	Aux(key, value []byte) error
	// SelectDB is called when the following keys belong to db.
	SelectDB(db int) error
	// ResizeDB is the size hint of the current db.
	ResizeDB(db int, keys, expires uint64) error
	// SlotInfo is the per-slot size hint of cluster-mode RDB v12 files.
	SlotInfo(slot, keys, expires uint64) error
	// Function is called for each function library: code is the library
	// source, starting with its "#!<engine> name=<lib>" line, as accepted by
	// FUNCTION LOAD REPLACE.
	Function(code []byte) error
	// ModuleAux is called for module auxiliary data; raw is its serialized
	// form after the when field (up to and including the module EOF opcode).
	ModuleAux(moduleID uint64, when uint64, raw []byte) error
	// Chunk is called for each piece of each key's value.
	Chunk(c *Chunk) error
}

// NopHandler implements Handler by ignoring everything.
type NopHandler struct{}

func (NopHandler) Aux(key, value []byte) error                              { return nil }
func (NopHandler) SelectDB(db int) error                                    { return nil }
func (NopHandler) ResizeDB(db int, keys, expires uint64) error              { return nil }
func (NopHandler) SlotInfo(slot, keys, expires uint64) error                { return nil }
func (NopHandler) Function(code []byte) error                               { return nil }
func (NopHandler) ModuleAux(moduleID uint64, when uint64, raw []byte) error { return nil }
func (NopHandler) Chunk(c *Chunk) error                                     { return nil }

// Info summarizes a parse.
type Info struct {
	Version   int               // RDB format version
	Bytes     int64             // bytes consumed, from "REDIS" through the checksum
	Checksum  uint64            // the checksum stored in the file (0: none)
	Verified  bool              // the stored checksum was non-zero and matched
	Keys      int64             // keys parsed
	Functions int               // function libraries parsed
	Aux       map[string]string // AUX fields
}

// Error is a parse error; it names the byte offset where the problem is.
type Error struct {
	Offset int64
	Msg    string
	Err    error // underlying error, if any (io.ErrUnexpectedEOF, a Handler's error, ...)
}

func (e *Error) Error() string {
	s := fmt.Sprintf("rdb: offset %d: %s", e.Offset, e.Msg)
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }
