// Value decoders, one per RDB object type and encoding (streams are in
// stream.go).

package rdb

import (
	"errors"
	"math"
	"strconv"
)

func parseScore(b []byte) (float64, bool) {
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		var ne *strconv.NumError
		if errors.As(err, &ne) && ne.Err == strconv.ErrRange {
			return f, true // strtod saturates to +-inf / 0 too
		}
		return 0, false
	}
	return f, true
}

func elemScore(e elem) (float64, bool) {
	if e.isInt {
		return float64(e.i), true
	}
	return parseScore(e.s)
}

func (p *parser) value(t Type) error {
	start := p.s.off
	switch t {
	case TypeString:
		return p.stringValue()
	case TypeList, TypeSet:
		n, err := p.s.plainLen()
		if err != nil {
			return err
		}
		for ; n > 0; n-- {
			if err := p.room(); err != nil {
				return err
			}
			b, err := p.readElem()
			if err != nil {
				return err
			}
			p.addElem(b)
		}
		return nil
	case TypeZSet, TypeZSet2:
		n, err := p.s.plainLen()
		if err != nil {
			return err
		}
		for ; n > 0; n-- {
			if err := p.room(); err != nil {
				return err
			}
			m, err := p.readElem()
			if err != nil {
				return err
			}
			var score float64
			soff := p.s.off
			if t == TypeZSet2 {
				x, err := p.s.u64le()
				if err != nil {
					return err
				}
				score = math.Float64frombits(x)
			} else {
				l, err := p.s.byte()
				if err != nil {
					return err
				}
				switch l {
				case 253:
					score = math.NaN()
				case 254:
					score = math.Inf(1)
				case 255:
					score = math.Inf(-1)
				default:
					p.tmp, err = p.s.appendN(p.tmp[:0], uint64(l))
					if err != nil {
						return err
					}
					var ok bool
					if score, ok = parseScore(p.tmp); !ok {
						return p.errf(soff, "bad zset score %q", p.tmp)
					}
				}
			}
			p.c.Members = append(p.c.Members, ZMember{Member: m, Score: score})
			p.pend += len(m) + 8
		}
		return nil
	case TypeHash, TypeHashMetadata, TypeHashMetadataPreGA:
		var minExpire uint64
		if t == TypeHashMetadata {
			x, err := p.s.u64le()
			if err != nil {
				return err
			}
			minExpire = x
		}
		n, err := p.s.plainLen()
		if err != nil {
			return err
		}
		for ; n > 0; n-- {
			if err := p.room(); err != nil {
				return err
			}
			exp := NoExpire
			if t != TypeHash {
				toff := p.s.off
				ttl, err := p.s.plainLen()
				if err != nil {
					return err
				}
				if ttl != 0 {
					if t == TypeHashMetadata {
						ttl += minExpire - 1
					}
					if ttl > math.MaxInt64 {
						return p.errf(toff, "bad hash field TTL")
					}
					exp = int64(ttl)
				}
			}
			f, err := p.readElem()
			if err != nil {
				return err
			}
			v, err := p.readElem()
			if err != nil {
				return err
			}
			p.c.Fields = append(p.c.Fields, HashField{Field: f, Value: v, ExpireAt: exp})
			p.pend += len(f) + len(v)
		}
		return nil
	case TypeListQuicklist, TypeListQuicklist2:
		n, err := p.s.plainLen()
		if err != nil {
			return err
		}
		for ; n > 0; n-- {
			container := uint64(2) // packed
			if t == TypeListQuicklist2 {
				coff := p.s.off
				if container, err = p.s.plainLen(); err != nil {
					return err
				}
				if container != 1 && container != 2 {
					return p.errf(coff, "bad quicklist node container %d", container)
				}
			}
			if container == 1 { // plain node: one element
				if err := p.room(); err != nil {
					return err
				}
				b, err := p.readElem()
				if err != nil {
					return err
				}
				p.addElem(b)
				continue
			}
			boff := p.s.off
			blob, err := p.readBlob()
			if err != nil {
				return err
			}
			var it elemIter
			if t == TypeListQuicklist {
				it, err = newZiplistIter(blob)
			} else {
				it, err = newListpackIter(blob)
			}
			if err != nil {
				return p.s.errf(boff, err, "bad %s node", t)
			}
			if err := p.elems(it, boff, true); err != nil {
				return err
			}
		}
		return nil
	case TypeListZiplist, TypeSetIntset, TypeSetListpack:
		boff := p.s.off
		blob, err := p.readBlob()
		if err != nil {
			return err
		}
		var it elemIter
		switch t {
		case TypeListZiplist:
			it, err = newZiplistIter(blob)
		case TypeSetIntset:
			it, err = newIntsetIter(blob)
		default:
			it, err = newListpackIter(blob)
		}
		if err != nil {
			return p.s.errf(boff, err, "bad %s value", t)
		}
		return p.elems(it, boff, false)
	case TypeZSetZiplist, TypeZSetListpack:
		boff := p.s.off
		blob, err := p.readBlob()
		if err != nil {
			return err
		}
		var it elemIter
		if t == TypeZSetZiplist {
			it, err = newZiplistIter(blob)
		} else {
			it, err = newListpackIter(blob)
		}
		if err != nil {
			return p.s.errf(boff, err, "bad %s value", t)
		}
		for {
			m, ok, err := it.next()
			if err != nil {
				return p.s.errf(boff, err, "bad %s value", t)
			}
			if !ok {
				return nil
			}
			s, ok, err := it.next()
			if err != nil || !ok {
				return p.s.errf(boff, err, "bad %s value: member without score", t)
			}
			score, ok := elemScore(s)
			if !ok {
				return p.errf(boff, "bad %s value: bad score %q", t, s.s)
			}
			if err := p.room(); err != nil {
				return err
			}
			mb := p.bytesOf(m, false)
			p.c.Members = append(p.c.Members, ZMember{Member: mb, Score: score})
			p.pend += len(mb) + 8
		}
	case TypeHashZipmap, TypeHashZiplist, TypeHashListpack, TypeHashListpackEx, TypeHashListpackExPreGA:
		if t == TypeHashListpackEx {
			if _, err := p.s.u64le(); err != nil { // min expire: informative
				return err
			}
		}
		boff := p.s.off
		blob, err := p.readBlob()
		if err != nil {
			return err
		}
		var it elemIter
		switch t {
		case TypeHashZipmap:
			it, err = newZipmapIter(blob)
		case TypeHashZiplist:
			it, err = newZiplistIter(blob)
		default:
			it, err = newListpackIter(blob)
		}
		if err != nil {
			return p.s.errf(boff, err, "bad %s value", t)
		}
		withTTL := t == TypeHashListpackEx || t == TypeHashListpackExPreGA
		for {
			f, ok, err := it.next()
			if err != nil {
				return p.s.errf(boff, err, "bad %s value", t)
			}
			if !ok {
				return nil
			}
			v, ok, err := it.next()
			if err != nil || !ok {
				return p.s.errf(boff, err, "bad %s value: field without value", t)
			}
			exp := NoExpire
			if withTTL {
				x, ok, err := it.next()
				if err != nil || !ok || !x.isInt || x.i < 0 {
					return p.s.errf(boff, err, "bad %s value: bad field TTL", t)
				}
				if x.i != 0 {
					exp = x.i
				}
			}
			if err := p.room(); err != nil {
				return err
			}
			fb := p.bytesOf(f, false)
			vb := p.bytesOf(v, false)
			p.c.Fields = append(p.c.Fields, HashField{Field: fb, Value: vb, ExpireAt: exp})
			p.pend += len(fb) + len(vb)
		}
	case TypeStreamListpacks, TypeStreamListpacks2, TypeStreamListpacks3:
		return p.stream(t)
	case TypeModule2:
		id, err := p.s.plainLen()
		if err != nil {
			return err
		}
		if err := p.moduleData(); err != nil {
			return err
		}
		name, ver := ModuleTypeName(id)
		p.c.Module = &ModuleValue{ID: id, Name: name, EncVer: ver}
		return nil
	}
	return p.errf(start, "unsupported object type %d (%s)", t, t)
}

func (p *parser) moduleData() error {
	for {
		off := p.s.off
		op, err := p.s.plainLen()
		if err != nil {
			return err
		}
		switch op {
		case 0: // EOF
			return nil
		case 1, 2: // signed, unsigned
			if _, err := p.s.plainLen(); err != nil {
				return err
			}
		case 3: // float
			if _, err := p.s.fixed(4); err != nil {
				return err
			}
		case 4: // double
			if _, err := p.s.fixed(8); err != nil {
				return err
			}
		case 5: // string
			if p.tmp, err = p.appendString(p.tmp[:0]); err != nil {
				return err
			}
		default:
			return p.errf(off, "unknown module data opcode %d", op)
		}
	}
}
