package rdb

import (
	"math"
)

const (
	streamFlagDeleted    = 1
	streamFlagSameFields = 2
)

// lpInt reads the next listpack element as an integer.
func lpInt(it *listpackIter) (int64, error) {
	e, ok, err := it.next()
	if err != nil {
		return 0, err
	}
	if !ok || !e.isInt {
		return 0, errListpack
	}
	return e.i, nil
}

func (p *parser) stream(t Type) error {
	nodes, err := p.s.plainLen()
	if err != nil {
		return err
	}
	var master [][]byte // master entry fields, copied: they outlive flushes
	var masterBuf []byte
	var firstLive StreamID
	haveFirst := false
	for ; nodes > 0; nodes-- {
		koff := p.s.off
		if p.tmp, err = p.appendString(p.tmp[:0]); err != nil {
			return err
		}
		if len(p.tmp) != 16 {
			return p.errf(koff, "bad stream node key (length %d, want 16)", len(p.tmp))
		}
		base := streamIDFromRaw(p.tmp)
		boff := p.s.off
		blob, err := p.readBlob()
		if err != nil {
			return err
		}
		bad := func(err error) error {
			if err == nil {
				err = errListpack
			}
			return p.s.errf(boff, err, "bad stream listpack")
		}
		it, err := newListpackIter(blob)
		if err != nil {
			return bad(err)
		}
		// master entry: count, deleted, #fields, fields..., 0
		if _, err := lpInt(it); err != nil {
			return bad(err)
		}
		if _, err := lpInt(it); err != nil {
			return bad(err)
		}
		nf, err := lpInt(it)
		if err != nil || nf < 0 || nf > int64(len(blob)) {
			return bad(err)
		}
		master, masterBuf = master[:0], nil // entries of this node not yet flushed alias the previous one
		var offs []int
		for i := int64(0); i < nf; i++ {
			e, ok, err := it.next()
			if err != nil || !ok {
				return bad(err)
			}
			offs = append(offs, len(masterBuf))
			masterBuf = e.appendTo(masterBuf)
		}
		offs = append(offs, len(masterBuf))
		for i := 0; i+1 < len(offs); i++ {
			master = append(master, masterBuf[offs[i]:offs[i+1]:offs[i+1]])
		}
		if _, err := lpInt(it); err != nil { // master terminator
			return bad(err)
		}
		for {
			flags, ok, err := it.next()
			if err != nil {
				return bad(err)
			}
			if !ok {
				break
			}
			if !flags.isInt {
				return bad(nil)
			}
			msd, err := lpInt(it)
			if err != nil {
				return bad(err)
			}
			sqd, err := lpInt(it)
			if err != nil {
				return bad(err)
			}
			id := StreamID{base.Ms + uint64(msd), base.Seq + uint64(sqd)}
			deleted := flags.i&streamFlagDeleted != 0
			if !deleted {
				if err := p.room(); err != nil {
					return err
				}
			}
			start := len(p.slab)
			size := 0
			if flags.i&streamFlagSameFields != 0 {
				for _, f := range master {
					v, ok, err := it.next()
					if err != nil || !ok {
						return bad(err)
					}
					if !deleted {
						vb := p.bytesOf(v, true)
						p.slab = append(p.slab, f, vb)
						size += len(f) + len(vb)
					}
				}
			} else {
				n, err := lpInt(it)
				if err != nil || n < 0 || n > int64(len(blob)) {
					return bad(err)
				}
				for i := int64(0); i < 2*n; i++ {
					v, ok, err := it.next()
					if err != nil || !ok {
						return bad(err)
					}
					if !deleted {
						vb := p.bytesOf(v, true)
						p.slab = append(p.slab, vb)
						size += len(vb)
					}
				}
			}
			if _, err := lpInt(it); err != nil { // lp-count
				return bad(err)
			}
			if deleted {
				continue
			}
			if !haveFirst {
				firstLive, haveFirst = id, true
			}
			p.c.Entries = append(p.c.Entries, StreamEntry{ID: id, Fields: p.slab[start:len(p.slab):len(p.slab)]})
			p.pend += size + 16
		}
	}
	m := &StreamMeta{}
	if m.Length, err = p.s.plainLen(); err != nil {
		return err
	}
	if m.LastID, err = p.streamID(); err != nil {
		return err
	}
	if t >= TypeStreamListpacks2 {
		if m.FirstID, err = p.streamID(); err != nil {
			return err
		}
		if m.MaxDeletedID, err = p.streamID(); err != nil {
			return err
		}
		if m.EntriesAdded, err = p.s.plainLen(); err != nil {
			return err
		}
	} else {
		m.EntriesAdded = m.Length
		m.FirstID = firstLive
	}
	ngroups, err := p.s.plainLen()
	if err != nil {
		return err
	}
	for ; ngroups > 0; ngroups-- {
		var g StreamGroup
		if g.Name, err = p.appendString(nil); err != nil {
			return err
		}
		if g.LastID, err = p.streamID(); err != nil {
			return err
		}
		g.EntriesRead = -1
		if t >= TypeStreamListpacks2 {
			x, err := p.s.plainLen()
			if err != nil {
				return err
			}
			if x <= math.MaxInt64 {
				g.EntriesRead = int64(x)
			}
		}
		npel, err := p.s.plainLen()
		if err != nil {
			return err
		}
		index := map[StreamID]int{}
		for ; npel > 0; npel-- {
			raw, err := p.s.fixed(16)
			if err != nil {
				return err
			}
			pe := PendingEntry{ID: streamIDFromRaw(raw)}
			x, err := p.s.u64le()
			if err != nil {
				return err
			}
			pe.DeliveryTime = int64(x)
			if pe.DeliveryCount, err = p.s.plainLen(); err != nil {
				return err
			}
			index[pe.ID] = len(g.PEL)
			g.PEL = append(g.PEL, pe)
		}
		ncons, err := p.s.plainLen()
		if err != nil {
			return err
		}
		for ; ncons > 0; ncons-- {
			var c StreamConsumer
			if c.Name, err = p.appendString(nil); err != nil {
				return err
			}
			x, err := p.s.u64le()
			if err != nil {
				return err
			}
			c.SeenTime, c.ActiveTime = int64(x), int64(x)
			if t >= TypeStreamListpacks3 {
				if x, err = p.s.u64le(); err != nil {
					return err
				}
				c.ActiveTime = int64(x)
			}
			n, err := p.s.plainLen()
			if err != nil {
				return err
			}
			for ; n > 0; n-- {
				off := p.s.off
				raw, err := p.s.fixed(16)
				if err != nil {
					return err
				}
				id := streamIDFromRaw(raw)
				i, ok := index[id]
				if !ok {
					return p.errf(off, "consumer PEL entry %s not in the group PEL", id)
				}
				g.PEL[i].Consumer = c.Name
				c.PEL = append(c.PEL, id)
			}
			g.Consumers = append(g.Consumers, c)
		}
		m.Groups = append(m.Groups, g)
	}
	p.c.Stream = m
	return nil
}

func (p *parser) streamID() (StreamID, error) {
	ms, err := p.s.plainLen()
	if err != nil {
		return StreamID{}, err
	}
	seq, err := p.s.plainLen()
	if err != nil {
		return StreamID{}, err
	}
	return StreamID{ms, seq}, nil
}
