// Streams: listpack nodes of entries, then the stream's metadata and its
// consumer groups with their pending entries lists and consumers.

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

// stream reads a stream of type t: its nodes, whose live entries go into
// chunks, then the metadata and groups that go into the last chunk.
func (p *parser) stream(t Type) error {
	var sn streamNodes
	if err := p.streamNodes(&sn); err != nil {
		return err
	}
	m, err := p.streamMeta(t, sn.firstLive)
	if err != nil {
		return err
	}
	ngroups, err := p.s.plainLen()
	if err != nil {
		return err
	}
	for ; ngroups > 0; ngroups-- {
		g, err := p.streamGroup(t)
		if err != nil {
			return err
		}
		m.Groups = append(m.Groups, g)
	}
	p.c.Stream = m
	return nil
}

// streamNodes is the state of reading a stream's nodes.
type streamNodes struct {
	master    [][]byte // master entry fields of the current node, copied: they outlive flushes
	firstLive StreamID // ID of the first live entry, once haveFirst
	haveFirst bool
}

// badStream is the error for a corrupt stream node at boff; err nil stands
// for errListpack.
func (p *parser) badStream(boff int64, err error) error {
	if err == nil {
		err = errListpack
	}
	return p.s.errf(boff, err, "bad stream listpack")
}

// streamNodes reads the nodes: a count, then for each node its key (the
// 16-byte master ID) and its listpack.
func (p *parser) streamNodes(sn *streamNodes) error {
	nodes, err := p.s.plainLen()
	if err != nil {
		return err
	}
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
		if err := p.streamNode(sn, base, blob, boff); err != nil {
			return err
		}
	}
	return nil
}

// streamNode reads the listpack of a node (at boff) with master ID base:
// the master entry, then entries, each starting with its flags.
func (p *parser) streamNode(sn *streamNodes, base StreamID, blob []byte, boff int64) error {
	it, err := newListpackIter(blob)
	if err != nil {
		return p.badStream(boff, err)
	}
	if err := sn.readMaster(it, len(blob)); err != nil {
		return p.badStream(boff, err)
	}
	for {
		flags, ok, err := it.next()
		if err != nil {
			return p.badStream(boff, err)
		}
		if !ok {
			return nil
		}
		if !flags.isInt {
			return p.badStream(boff, nil)
		}
		if err := p.streamEntry(sn, it, base, flags.i, len(blob), boff); err != nil {
			return err
		}
	}
}

// readMaster reads the master entry of a node of blobLen bytes: count,
// deleted, number of fields, the fields, 0. A nil error from the listpack
// where it is corrupt comes back as errListpack.
func (sn *streamNodes) readMaster(it *listpackIter, blobLen int) error {
	if _, err := lpInt(it); err != nil { // count
		return err
	}
	if _, err := lpInt(it); err != nil { // deleted
		return err
	}
	nf, err := lpInt(it)
	if err != nil {
		return err
	}
	if nf < 0 || nf > int64(blobLen) {
		return errListpack
	}
	// A new buffer for each node: the entries of the previous node not yet
	// flushed still refer to the old one.
	sn.master = sn.master[:0]
	var buf []byte
	var offs []int
	for i := int64(0); i < nf; i++ {
		e, ok, err := it.next()
		if err != nil {
			return err
		}
		if !ok {
			return errListpack
		}
		offs = append(offs, len(buf))
		buf = e.appendTo(buf)
	}
	offs = append(offs, len(buf))
	for i := 0; i+1 < len(offs); i++ {
		sn.master = append(sn.master, buf[offs[i]:offs[i+1]:offs[i+1]])
	}
	_, err = lpInt(it) // master terminator
	return err
}

// streamEntry reads the rest of an entry whose flags have been read: its
// ID deltas from base, its values (the master's fields go with them when
// flagged streamFlagSameFields) or its number of fields and its fields and
// values, and its lp-count. A live entry goes into the chunk.
func (p *parser) streamEntry(sn *streamNodes, it *listpackIter, base StreamID, flags int64, blobLen int, boff int64) error {
	msd, err := lpInt(it)
	if err != nil {
		return p.badStream(boff, err)
	}
	sqd, err := lpInt(it)
	if err != nil {
		return p.badStream(boff, err)
	}
	id := StreamID{base.Ms + uint64(msd), base.Seq + uint64(sqd)}
	deleted := flags&streamFlagDeleted != 0
	if !deleted {
		if err := p.room(); err != nil {
			return err
		}
	}
	var fields [][]byte // the master's, or nil: the entry has fields of its own
	n := int64(len(sn.master))
	if flags&streamFlagSameFields != 0 {
		fields = sn.master
	} else {
		nf, err := lpInt(it)
		if err != nil || nf < 0 || nf > int64(blobLen) {
			return p.badStream(boff, err)
		}
		n = 2 * nf
	}
	start := len(p.slab)
	size := 0
	for i := int64(0); i < n; i++ {
		v, ok, err := it.next()
		if err != nil || !ok {
			return p.badStream(boff, err)
		}
		if deleted {
			continue
		}
		if fields != nil {
			p.slab = append(p.slab, fields[i])
			size += len(fields[i])
		}
		vb := p.bytesOf(v, true)
		p.slab = append(p.slab, vb)
		size += len(vb)
	}
	if _, err := lpInt(it); err != nil { // lp-count
		return p.badStream(boff, err)
	}
	if deleted {
		return nil
	}
	if !sn.haveFirst {
		sn.firstLive, sn.haveFirst = id, true
	}
	p.c.Entries = append(p.c.Entries, StreamEntry{ID: id, Fields: p.slab[start:len(p.slab):len(p.slab)]})
	p.pend += size + 16
	return nil
}

// streamMeta reads what follows the nodes: the length and last ID, and
// from TypeStreamListpacks2 on the first ID, max deleted ID and entries
// added (before, entries added is the length and the first ID the first
// live entry's, firstLive).
func (p *parser) streamMeta(t Type, firstLive StreamID) (*StreamMeta, error) {
	m := &StreamMeta{}
	var err error
	if m.Length, err = p.s.plainLen(); err != nil {
		return nil, err
	}
	if m.LastID, err = p.streamID(); err != nil {
		return nil, err
	}
	if t < TypeStreamListpacks2 {
		m.EntriesAdded = m.Length
		m.FirstID = firstLive
		return m, nil
	}
	if m.FirstID, err = p.streamID(); err != nil {
		return nil, err
	}
	if m.MaxDeletedID, err = p.streamID(); err != nil {
		return nil, err
	}
	if m.EntriesAdded, err = p.s.plainLen(); err != nil {
		return nil, err
	}
	return m, nil
}

// streamGroup reads a consumer group: its name, last delivered ID, entries
// read (from TypeStreamListpacks2 on), pending entries list and consumers.
func (p *parser) streamGroup(t Type) (StreamGroup, error) {
	var g StreamGroup
	var err error
	if g.Name, err = p.appendString(nil); err != nil {
		return g, err
	}
	if g.LastID, err = p.streamID(); err != nil {
		return g, err
	}
	g.EntriesRead = -1
	if t >= TypeStreamListpacks2 {
		x, err := p.s.plainLen()
		if err != nil {
			return g, err
		}
		if x <= math.MaxInt64 {
			g.EntriesRead = int64(x)
		}
	}
	index, err := p.groupPEL(&g)
	if err != nil {
		return g, err
	}
	ncons, err := p.s.plainLen()
	if err != nil {
		return g, err
	}
	for ; ncons > 0; ncons-- {
		c, err := p.streamConsumer(t, &g, index)
		if err != nil {
			return g, err
		}
		g.Consumers = append(g.Consumers, c)
	}
	return g, nil
}

// groupPEL reads the pending entries list of g: a count, then for each
// entry its raw ID, delivery time and delivery count. It returns the
// entries' positions in g.PEL by ID.
func (p *parser) groupPEL(g *StreamGroup) (map[StreamID]int, error) {
	npel, err := p.s.plainLen()
	if err != nil {
		return nil, err
	}
	index := map[StreamID]int{}
	for ; npel > 0; npel-- {
		var pe PendingEntry
		if pe.ID, err = p.rawStreamID(); err != nil {
			return nil, err
		}
		x, err := p.s.u64le()
		if err != nil {
			return nil, err
		}
		pe.DeliveryTime = int64(x)
		if pe.DeliveryCount, err = p.s.plainLen(); err != nil {
			return nil, err
		}
		index[pe.ID] = len(g.PEL)
		g.PEL = append(g.PEL, pe)
	}
	return index, nil
}

// streamConsumer reads a consumer of g: its name, seen time, active time
// (from TypeStreamListpacks3 on) and the raw IDs of its pending entries,
// each of which must be in g's PEL (index) and gets the consumer's name
// there.
func (p *parser) streamConsumer(t Type, g *StreamGroup, index map[StreamID]int) (StreamConsumer, error) {
	var c StreamConsumer
	var err error
	if c.Name, err = p.appendString(nil); err != nil {
		return c, err
	}
	x, err := p.s.u64le()
	if err != nil {
		return c, err
	}
	c.SeenTime, c.ActiveTime = int64(x), int64(x)
	if t >= TypeStreamListpacks3 {
		if x, err = p.s.u64le(); err != nil {
			return c, err
		}
		c.ActiveTime = int64(x)
	}
	n, err := p.s.plainLen()
	if err != nil {
		return c, err
	}
	for ; n > 0; n-- {
		off := p.s.off
		id, err := p.rawStreamID()
		if err != nil {
			return c, err
		}
		i, ok := index[id]
		if !ok {
			return c, p.errf(off, "consumer PEL entry %s not in the group PEL", id)
		}
		g.PEL[i].Consumer = c.Name
		c.PEL = append(c.PEL, id)
	}
	return c, nil
}

// streamID reads a stream ID as two lengths.
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

// rawStreamID reads a stream ID as 16 big-endian bytes.
func (p *parser) rawStreamID() (StreamID, error) {
	raw, err := p.s.fixed(16)
	if err != nil {
		return StreamID{}, err
	}
	return streamIDFromRaw(raw), nil
}
