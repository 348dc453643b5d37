// Chunk assembly: a key's value is handed to the Handler in chunks bounded
// by Options.MaxChunkElems and MaxChunkBytes.

package rdb

func (p *parser) count() int {
	return len(p.c.Elems) + len(p.c.Members) + len(p.c.Fields) + len(p.c.Entries)
}

// room flushes the current chunk if it is full; call before adding an element.
func (p *parser) room() error {
	if n := p.count(); n > 0 && (n >= p.o.MaxChunkElems || p.pend >= p.o.MaxChunkBytes) {
		return p.flush(false)
	}
	return nil
}

func (p *parser) flush(last bool) error {
	p.c.Last = last
	if last && p.s.capOn && !p.s.capOver {
		p.c.Raw = p.s.capBuf
	}
	if err := p.h.Chunk(&p.c); err != nil {
		return err
	}
	p.c.First = false
	p.c.Seq++
	p.c.Value = nil
	p.c.Elems = p.c.Elems[:0]
	p.c.Members = p.c.Members[:0]
	p.c.Fields = p.c.Fields[:0]
	p.c.Entries = p.c.Entries[:0]
	p.slab = p.slab[:0]
	p.arena = p.arena[:0]
	p.pend = 0
	return nil
}

// bytesOf returns e's bytes; integers are formatted into the arena, and so
// are strings when cp is set (their blob will be reused before the flush).
func (p *parser) bytesOf(e elem, cp bool) []byte {
	if !e.isInt && !cp {
		return e.s
	}
	l := len(p.arena)
	p.arena = e.appendTo(p.arena)
	return p.arena[l:len(p.arena):len(p.arena)]
}

// readElem reads an RDB string element into the arena.
func (p *parser) readElem() ([]byte, error) {
	l := len(p.arena)
	a, err := p.appendString(p.arena)
	if err != nil {
		return nil, err
	}
	p.arena = a
	return a[l:len(a):len(a)], nil
}

func (p *parser) addElem(b []byte) {
	p.c.Elems = append(p.c.Elems, b)
	p.pend += len(b)
}

func (p *parser) addMember(m []byte, score float64) {
	p.c.Members = append(p.c.Members, ZMember{Member: m, Score: score})
	p.pend += len(m) + 8
}

func (p *parser) addField(f, v []byte, expireAt int64) {
	p.c.Fields = append(p.c.Fields, HashField{Field: f, Value: v, ExpireAt: expireAt})
	p.pend += len(f) + len(v)
}

func (p *parser) readBlob() ([]byte, error) {
	b, err := p.appendString(p.blob[:0])
	p.blob = b
	return b, err
}

// object reads one key's value (the key is in p.key) and emits its chunks.
func (p *parser) object(t Type, expire, idle int64, freq int) error {
	p.c = Chunk{
		DB: p.db, Key: p.key, Type: t, Kind: t.Kind(), ExpireAt: expire, Idle: idle, Freq: freq,
		Version: p.ver, First: true,
		Elems: p.c.Elems[:0], Members: p.c.Members[:0], Fields: p.c.Fields[:0], Entries: p.c.Entries[:0],
	}
	p.arena, p.slab, p.pend = p.arena[:0], p.slab[:0], 0
	if p.o.CaptureRaw || t == TypeModule2 {
		p.s.capOn, p.s.capOver = true, false
		p.s.capMax = -1
		if p.o.MaxRawBytes > 0 && t != TypeModule2 {
			p.s.capMax = p.o.MaxRawBytes
		}
		p.s.capBuf = append(p.s.capBuf[:0], byte(t))
	}
	err := p.value(t)
	if err == nil {
		err = p.flush(true)
	}
	p.s.capOn = false
	p.c.Raw, p.c.Stream, p.c.Module = nil, nil, nil
	if cap(p.s.capBuf) > 4<<20 {
		p.s.capBuf = nil
	}
	if cap(p.blob) > 4<<20 {
		p.blob = nil
	}
	if cap(p.arena) > 4<<20 {
		p.arena = nil
	}
	return err
}

// elems adds all elements of it as list/set elements.
func (p *parser) elems(it elemIter, boff int64, cp bool) error {
	for {
		e, ok, err := it.next()
		if err != nil {
			return p.s.errf(boff, err, "bad %s value", p.c.Type)
		}
		if !ok {
			return nil
		}
		if err := p.room(); err != nil {
			return err
		}
		p.addElem(p.bytesOf(e, cp))
	}
}
