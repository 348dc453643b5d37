package resp

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestReadValue(t *testing.T) {
	in := "+OK\r\n-ERR bad\r\n:-42\r\n$5\r\nhe\x00\r\n\r\n$-1\r\n*-1\r\n*2\r\n$1\r\na\r\n*1\r\n:1\r\n" +
		"_\r\n#t\r\n,3.14\r\n(12345678901234567890\r\n!3\r\nerr\r\n=7\r\ntxt:abc\r\n%1\r\n+k\r\n:1\r\n~1\r\n+m\r\n>2\r\n+a\r\n+b\r\n|1\r\n+x\r\n+y\r\n" +
		"PING\r\nSET k \"a b\\x41\\n\" 'c\\'d'\n"
	r := NewReader(strings.NewReader(in))
	want := []string{`"OK"`, `"ERR bad"`, "-42", `"he\x00\r\n"`, "(nil)", "(nil)", `["a" [1]]`,
		"(nil)", "1", `"3.14"`, `"12345678901234567890"`, `"err"`, `"txt:abc"`, `["k" 1]`, `["m"]`, `["a" "b"]`, `["x" "y"]`,
		`["PING"]`, `["SET" "k" "a bA\n" "c'd"]`}
	for i, w := range want {
		v, err := r.ReadValue()
		if err != nil {
			t.Fatalf("value %d: %v", i, err)
		}
		if v.String() != w {
			t.Errorf("value %d: %s, want %s", i, v, w)
		}
	}
	if _, err := r.ReadValue(); err != io.EOF {
		t.Fatalf("end: %v", err)
	}
	if r.Offset() != int64(len(in)) {
		t.Fatalf("offset %d, want %d", r.Offset(), len(in))
	}
	// round trip through AppendValue
	r = NewReader(strings.NewReader(in[:strings.Index(in, "PING")]))
	var out []byte
	for {
		v, err := r.ReadValue()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		out = AppendValue(out, v)
	}
	if string(out) != in[:strings.Index(in, "PING")] {
		t.Fatalf("round trip:\n%q\n%q", out, in)
	}
}

func TestReadCommand(t *testing.T) {
	var buf []byte
	buf = AppendCommandString(buf, "SELECT", "0")
	buf = append(buf, "\n\r\n"...) // keepalives / empty lines
	buf = AppendCommand(buf, []byte("SET"), []byte("k\x00\xff"), bytes.Repeat([]byte("v"), 100000))
	buf = append(buf, "PING\r\n"...)
	buf = append(buf, "*0\r\n"...)
	buf = AppendCommandString(buf, "DEL", "")
	r := NewReaderSize(bytes.NewReader(buf), 16)
	var got []string
	var offs []int64
	for {
		args, err := r.ReadCommand()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		s := make([]string, len(args))
		for i, a := range args {
			s[i] = string(a)
			if len(a) > 20 {
				s[i] = string(a[:1]) + "..."
			}
		}
		got = append(got, strings.Join(s, " "))
		offs = append(offs, r.Offset())
	}
	want := []string{"SELECT 0", "SET k\x00\xff v...", "PING", "DEL "}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("got %q", got)
	}
	if offs[len(offs)-1] != int64(len(buf)) {
		t.Fatalf("offset %d of %d", offs[len(offs)-1], len(buf))
	}
}

func TestProtocolErrors(t *testing.T) {
	for _, in := range []string{"$3\r\nabcd\r\n", ":12x\r\n", "*1\r\n?\r\n", "$-2\r\n", "+OK\n", "#x\r\n", "$9999999999999\r\n",
		":99999999999999999999\r\n", "*2\r\n$1\r\na\r\n"} {
		_, err := NewReader(strings.NewReader(in)).ReadValue()
		var pe *ProtocolError
		if err == nil || (!errors.As(err, &pe) && err != io.ErrUnexpectedEOF) {
			t.Errorf("%q: %v", in, err)
		}
	}
	for _, in := range []string{"*1\r\n:1\r\n", "*2\r\n$1\r\na\r\n", "SET \"a\n", "*1\r\n$2\r\nab\n\n"} {
		if _, err := NewReader(strings.NewReader(in)).ReadCommand(); err == nil {
			t.Errorf("%q: no error", in)
		}
	}
	r := NewReader(strings.NewReader(strings.Repeat("a", 100000) + "\r\n"))
	if _, err := r.ReadCommand(); err == nil {
		t.Error("long inline line accepted")
	}
	r = NewReader(strings.NewReader("$100\r\nabc"))
	r.MaxBulk = 10
	if _, err := r.ReadValue(); err == nil {
		t.Error("bulk over MaxBulk accepted")
	}
}

func TestRDBPreamble(t *testing.T) {
	mark := strings.Repeat("0123456789", 4)
	payload := "REDIS0010...payload..." + mark[:39] // a near-mark inside the payload
	in := "\n\n$EOF:" + mark + "\r\n" + payload + mark + "*1\r\n$4\r\nPING\r\n"
	r := NewReaderSize(strings.NewReader(in), 16)
	p, err := r.ReadRDBPreamble()
	if err != nil || !p.Diskless() || string(p.EOFMark) != mark {
		t.Fatalf("%+v %v", p, err)
	}
	got, err := io.ReadAll(r.PayloadReader(p))
	if err != nil || string(got) != payload {
		t.Fatalf("payload %q %v", got, err)
	}
	args, err := r.ReadCommand()
	if err != nil || len(args) != 1 || string(args[0]) != "PING" || r.Offset() != int64(len(in)) {
		t.Fatalf("after payload: %q %v", args, err)
	}

	in = "$10\r\n0123456789+OK\r\n"
	r = NewReader(strings.NewReader(in))
	if p, err = r.ReadRDBPreamble(); err != nil || p.Size != 10 || p.Diskless() {
		t.Fatalf("%+v %v", p, err)
	}
	got, _ = io.ReadAll(r.PayloadReader(p))
	if string(got) != "0123456789" {
		t.Fatalf("payload %q", got)
	}
	if v, err := r.ReadValue(); err != nil || string(v.Str) != "OK" {
		t.Fatalf("after: %v %v", v, err)
	}
	// the mark after a parsed payload
	r = NewReader(strings.NewReader("$EOF:" + mark + "\r\nXY" + mark))
	p, _ = r.ReadRDBPreamble()
	r.Discard(2)
	if err := r.ReadEOFMark(p.EOFMark); err != nil {
		t.Fatal(err)
	}
	if _, err := NewReader(strings.NewReader("-ERR no\r\n")).ReadRDBPreamble(); err == nil {
		t.Fatal("error reply accepted")
	}
}

func TestWriter(t *testing.T) {
	var w Writer
	w.CommandString("SET", "k", "v")
	w.Command([]byte("GET"), []byte("k"))
	if w.Commands != 2 || string(w.Buf) != "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n" {
		t.Fatalf("%q", w.Buf)
	}
	var out bytes.Buffer
	bw := bufio.NewWriter(&out)
	if err := w.Flush(bw); err != nil || w.Len() != 0 {
		t.Fatal(err)
	}
	bw.Flush()
	if b := AppendBulkInt(nil, -12); string(b) != "$3\r\n-12\r\n" {
		t.Fatalf("%q", b)
	}
}

func FuzzReader(f *testing.F) {
	f.Add([]byte("+OK\r\n-ERR x\r\n:1\r\n$3\r\nabc\r\n*2\r\n$1\r\na\r\n:2\r\n%1\r\n+a\r\n_\r\n"))
	f.Add([]byte("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\nPING\r\n\n"))
	f.Add([]byte("SET \"a\\x41\" 'b\\'c'\r\n"))
	f.Add([]byte("\n$EOF:0123456789012345678901234567890123456789\r\nabc0123456789012345678901234567890123456789"))
	f.Add([]byte("$5\r\nhello*1\r\n$4\r\nPING\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		// values: re-encoding a value and reading it back gives the same value
		r := NewReaderSize(bytes.NewReader(data), 16)
		for i := 0; i < 100; i++ {
			before := r.Offset()
			v, err := r.ReadValue()
			if err != nil {
				break
			}
			if r.Offset() <= before || r.Offset() > int64(len(data)) {
				t.Fatalf("offset %d -> %d of %d", before, r.Offset(), len(data))
			}
			enc := AppendValue(nil, v)
			v2, err := NewReader(bytes.NewReader(enc)).ReadValue()
			if err != nil || v2.String() != v.String() {
				if v.Type != Inline {
					t.Fatalf("re-read %q: %v %v", enc, v2, err)
				}
			}
		}
		// commands
		r = NewReaderSize(bytes.NewReader(data), 16)
		for i := 0; i < 100; i++ {
			if _, err := r.ReadCommand(); err != nil {
				break
			}
		}
		// preamble and payload
		r = NewReaderSize(bytes.NewReader(data), 16)
		if p, err := r.ReadRDBPreamble(); err == nil {
			n, _ := io.Copy(io.Discard, r.PayloadReader(p))
			if !p.Diskless() && n > p.Size {
				t.Fatalf("payload %d > %d", n, p.Size)
			}
			if r.Offset() > int64(len(data)) {
				t.Fatal("offset past input")
			}
		}
	})
}
