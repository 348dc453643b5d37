// Module values and module aux data. ferry keeps them opaque: it reads
// past their typed opcodes, and the captured bytes go on to RESTORE.

package rdb

// moduleValue reads a module value: the module type id, then module data.
func (p *parser) moduleValue() error {
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

// moduleData reads past module data: typed opcodes up to an EOF opcode.
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

// moduleAux reads a module aux field (after its opcode) and hands its
// module data to the Handler.
func (p *parser) moduleAux() error {
	id, err := p.s.plainLen()
	if err != nil {
		return err
	}
	off := p.s.off
	whenOp, err := p.s.plainLen()
	if err != nil {
		return err
	}
	if whenOp != 2 {
		return p.errf(off, "bad module aux when-opcode %d", whenOp)
	}
	when, err := p.s.plainLen()
	if err != nil {
		return err
	}
	p.s.capOn, p.s.capOver, p.s.capMax = true, false, -1
	p.s.capBuf = p.s.capBuf[:0]
	err = p.moduleData()
	p.s.capOn = false
	if err != nil {
		return err
	}
	return p.h.ModuleAux(id, when, p.s.capBuf)
}
