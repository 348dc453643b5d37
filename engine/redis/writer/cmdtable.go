package writer

import (
	"fmt"
	"strconv"
	"strings"
)

// cmdTable holds the key positions of every command the target knows, read
// from its COMMAND reply at start (legacy first/last/step and, when present,
// the Redis 7 key specifications).
type cmdTable struct {
	cmds map[string]*cmdInfo
}

type cmdInfo struct {
	name        string
	arity       int
	movable     bool
	first, last int
	step        int
	specs       []keySpec
	incomplete  bool // a key spec cannot be resolved from the arguments
	global      bool // in alwaysGlobal
	subcommands map[string]*cmdInfo
}

type keySpec struct {
	// begin_search
	bsIndex     int    // when bsKeyword == ""
	bsKeyword   string // keyword search
	bsStartFrom int
	// find_keys
	fkKeynum   bool
	lastKey    int // range
	keyStep    int // range and keynum
	limit      int // range
	keynumIdx  int // keynum
	firstKeyKN int // keynum
}

// keyClass says how a command can be routed.
type keyClass int

const (
	keysKnown   keyClass = iota // keys listed (maybe none)
	keysUnknown                 // cannot tell: treat as a global barrier
)

// alwaysGlobal are commands that are run as global barriers whatever their
// key specs say: they act on the whole keyspace, on server state, or (for
// scripts) on keys they do not declare.
var alwaysGlobal = map[string]bool{
	"flushall": true, "flushdb": true, "swapdb": true,
	"function": true, "script": true,
	"eval": true, "evalsha": true, "eval_ro": true, "evalsha_ro": true,
	"fcall": true, "fcall_ro": true,
	"publish": true, "spublish": true,
	"debug": true, "config": true,
}

func asInt(v any) int {
	switch x := v.(type) {
	case int64:
		return int(x)
	case string:
		n, _ := strconv.Atoi(x)
		return n
	}
	return 0
}

// flatMap turns a RESP2 flat array of alternating names and values into a map.
func flatMap(v any) map[string]any {
	arr, _ := v.([]any)
	m := make(map[string]any, len(arr)/2)
	for i := 0; i+1 < len(arr); i += 2 {
		k, _ := arr[i].(string)
		m[strings.ToLower(k)] = arr[i+1]
	}
	return m
}

func parseCommandTable(reply any) (*cmdTable, error) {
	arr, ok := reply.([]any)
	if !ok {
		if e, ok := reply.(replyError); ok {
			return nil, fmt.Errorf("COMMAND: %s", string(e))
		}
		return nil, fmt.Errorf("COMMAND: unexpected reply %T", reply)
	}
	t := &cmdTable{cmds: make(map[string]*cmdInfo, len(arr))}
	for _, e := range arr {
		ci := parseCmdInfo(e)
		if ci != nil {
			ci.global = alwaysGlobal[ci.name]
			for _, sc := range ci.subcommands {
				sc.global = ci.global
			}
			t.cmds[ci.name] = ci
		}
	}
	if len(t.cmds) == 0 {
		return nil, fmt.Errorf("COMMAND: empty command table")
	}
	return t, nil
}

func parseCmdInfo(v any) *cmdInfo {
	a, ok := v.([]any)
	if !ok || len(a) < 6 {
		return nil
	}
	name, _ := a[0].(string)
	ci := &cmdInfo{
		name:  strings.ToLower(name),
		arity: asInt(a[1]),
		first: asInt(a[3]),
		last:  asInt(a[4]),
		step:  asInt(a[5]),
	}
	if flags, ok := a[2].([]any); ok {
		for _, f := range flags {
			if s, _ := f.(string); strings.EqualFold(s, "movablekeys") {
				ci.movable = true
			}
		}
	}
	if len(a) > 8 {
		if specs, ok := a[8].([]any); ok {
			for _, s := range specs {
				ks, inc := parseKeySpec(s)
				if inc {
					ci.incomplete = true
				}
				ci.specs = append(ci.specs, ks)
			}
		}
	}
	if len(a) > 9 {
		if subs, ok := a[9].([]any); ok && len(subs) > 0 {
			ci.subcommands = make(map[string]*cmdInfo, len(subs))
			for _, s := range subs {
				sc := parseCmdInfo(s)
				if sc == nil {
					continue
				}
				// Sub-command names are "container|sub".
				if i := strings.IndexByte(sc.name, '|'); i >= 0 {
					sc.name = sc.name[i+1:]
				}
				ci.subcommands[sc.name] = sc
			}
		}
	}
	return ci
}

func parseKeySpec(v any) (ks keySpec, incomplete bool) {
	m := flatMap(v)
	if flags, ok := m["flags"].([]any); ok {
		for _, f := range flags {
			if s, _ := f.(string); strings.EqualFold(s, "incomplete") {
				incomplete = true
			}
		}
	}
	bs := flatMap(m["begin_search"])
	bsType, _ := bs["type"].(string)
	bspec := flatMap(bs["spec"])
	switch bsType {
	case "index":
		ks.bsIndex = asInt(bspec["index"])
	case "keyword":
		ks.bsKeyword, _ = bspec["keyword"].(string)
		ks.bsStartFrom = asInt(bspec["startfrom"])
	default:
		incomplete = true
	}
	fk := flatMap(m["find_keys"])
	fkType, _ := fk["type"].(string)
	fspec := flatMap(fk["spec"])
	switch fkType {
	case "range":
		ks.lastKey = asInt(fspec["lastkey"])
		ks.keyStep = asInt(fspec["keystep"])
		ks.limit = asInt(fspec["limit"])
	case "keynum":
		ks.fkKeynum = true
		ks.keynumIdx = asInt(fspec["keynumidx"])
		ks.firstKeyKN = asInt(fspec["firstkey"])
		ks.keyStep = asInt(fspec["keystep"])
	default:
		incomplete = true
	}
	if ks.keyStep <= 0 {
		ks.keyStep = 1
	}
	return ks, incomplete
}

// lookup finds the info of a command (and of its sub-command for container
// commands such as XGROUP or OBJECT). lname is the lower-case name.
func (t *cmdTable) lookup(lname string, args [][]byte) *cmdInfo {
	ci := t.cmds[lname]
	if ci == nil {
		return nil
	}
	if ci.subcommands != nil && len(args) > 1 {
		if sc := ci.subcommands[strings.ToLower(string(args[1]))]; sc != nil {
			return sc
		}
	}
	return ci
}

// keys appends to dst the positions (indexes in args) of the keys of a
// command. It reports keysUnknown when they cannot be determined.
func (ci *cmdInfo) keys(args [][]byte, dst []int) ([]int, keyClass) {
	if ci == nil || ci.incomplete {
		return dst, keysUnknown
	}
	argc := len(args)
	if len(ci.specs) > 0 {
		for _, s := range ci.specs {
			first := 0
			if s.bsKeyword == "" {
				first = s.bsIndex
			} else {
				start, end := s.bsStartFrom, argc-1
				if s.bsStartFrom <= 0 {
					start, end = argc+s.bsStartFrom, 0
				}
				for i := start; i != end; {
					if i >= argc || i < 1 {
						break
					}
					if strings.EqualFold(string(args[i]), s.bsKeyword) {
						first = i + 1
						break
					}
					if start <= end {
						i++
					} else {
						i--
					}
				}
				if first == 0 {
					continue
				}
			}
			var last int
			if s.fkKeynum {
				idx := first + s.keynumIdx
				if idx >= argc {
					return dst, keysUnknown
				}
				n, err := strconv.Atoi(string(args[idx]))
				if err != nil || n < 0 {
					return dst, keysUnknown
				}
				first += s.firstKeyKN
				last = first + n - 1
			} else if s.lastKey >= 0 {
				last = first + s.lastKey
			} else if s.limit == 0 {
				last = argc + s.lastKey
			} else {
				last = first + ((argc-first)/s.limit + s.lastKey)
			}
			for i := first; i <= last; i += s.keyStep {
				if i >= argc || i < first {
					// Malformed for this spec (the server will reject the
					// command); route it as a global barrier.
					return dst, keysUnknown
				}
				dst = append(dst, i)
			}
		}
		return dst, keysKnown
	}
	if ci.movable {
		return dst, keysUnknown
	}
	if ci.first <= 0 {
		return dst, keysKnown
	}
	last := ci.last
	if last < 0 {
		last = argc + last
	}
	step := ci.step
	if step <= 0 {
		step = 1
	}
	for i := ci.first; i <= last && i < argc; i += step {
		dst = append(dst, i)
	}
	return dst, keysKnown
}
