package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/ferrymigrate/ferry"
)

// A job file (ferry migrate -f job.yaml) describes one migration. YAML or
// JSON (JSON is YAML); checked strictly before anything is sent: an unknown
// key, a missing endpoint or a value of the wrong type is an error naming
// the file and line.
//
//	name: orders
//	source: mysql://root@10.0.0.1:3306          # a SPEC, a registered endpoint's name,
//	target:                                      # or a mapping:
//	  kind: mysql
//	  addrs: [10.0.0.2:3306]
//	  username: ferry
//	  password: s3cret
//	modes: [schema, full, incremental, verify]   # default: full, incremental, verify
//	options:                                     # common and engine options (ferry migrations create --option)
//	  conflict: replace
//	  cutover_write_block: read_only
//	filters:
//	  includeDbs: [shop]
//	cutover: prompt                              # prompt (default) or at-ready
type jobFile struct {
	body    map[string]any
	engine  string
	cutover string // "prompt" or "at-ready"
}

var jobKeys = []string{"name", "description", "engine", "source", "target", "modes", "options", "filters", "cutover", "importance", "labels"}

var endpointKeys = []string{"name", "kind", "addrs", "username", "password", "database", "tls", "tlsSkipVerify", "caCertPem", "cluster", "options"}

var filterKeys = []string{"includeDbs", "excludeDbs", "includeTables", "excludeTables", "includeKeys", "excludeKeys", "renames"}

// jobError is a job file problem at a line.
type jobError struct {
	file string
	line int
	msg  string
}

func (e *jobError) Error() string {
	if e.line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.file, e.line, e.msg)
	}
	return e.file + ": " + e.msg
}

type jobParser struct{ file string }

func (p *jobParser) errf(n *yaml.Node, format string, args ...any) error {
	line := 0
	if n != nil {
		line = n.Line
	}
	return &jobError{file: p.file, line: line, msg: fmt.Sprintf(format, args...)}
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	}
	switch n.Tag {
	case "!!int", "!!float":
		return "a number"
	case "!!bool":
		return "a boolean"
	case "!!null":
		return "null"
	}
	return "a string"
}

// mapping returns the key/value nodes of a mapping, refusing unknown and
// repeated keys.
func (p *jobParser) mapping(n *yaml.Node, what string, known []string) (map[string]*yaml.Node, []*yaml.Node, error) {
	if n.Kind != yaml.MappingNode {
		return nil, nil, p.errf(n, "%s: want a mapping, got %s", what, kindName(n))
	}
	out := map[string]*yaml.Node{}
	var order []*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			return nil, nil, p.errf(k, "%s: keys must be strings", what)
		}
		if known != nil && !contains(known, k.Value) {
			return nil, nil, p.errf(k, "%s: unknown key %q (known: %s)", what, k.Value, strings.Join(known, ", "))
		}
		if _, dup := out[k.Value]; dup {
			return nil, nil, p.errf(k, "%s: key %q given twice", what, k.Value)
		}
		out[k.Value] = v
		order = append(order, k)
	}
	return out, order, nil
}

func (p *jobParser) str(n *yaml.Node, what string) (string, error) {
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		return "", p.errf(n, "%s: want a string, got %s", what, kindName(n))
	}
	return n.Value, nil
}

// scalar is a string, number or boolean as text (option values).
func (p *jobParser) scalar(n *yaml.Node, what string) (string, error) {
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		return "", p.errf(n, "%s: want a value, got %s", what, kindName(n))
	}
	return n.Value, nil
}

func (p *jobParser) boolean(n *yaml.Node, what string) (bool, error) {
	if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" {
		return false, p.errf(n, "%s: want true or false, got %s", what, kindName(n))
	}
	var b bool
	if err := n.Decode(&b); err != nil {
		return false, p.errf(n, "%s: %v", what, err)
	}
	return b, nil
}

func (p *jobParser) strList(n *yaml.Node, what string) ([]string, error) {
	if n.Kind != yaml.SequenceNode {
		return nil, p.errf(n, "%s: want a list of strings, got %s", what, kindName(n))
	}
	var out []string
	for i, x := range n.Content {
		s, err := p.str(x, fmt.Sprintf("%s[%d]", what, i))
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

func (p *jobParser) strMap(n *yaml.Node, what string) (map[string]string, error) {
	m, order, err := p.mapping(n, what, nil)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, k := range order {
		v, err := p.scalar(m[k.Value], what+"."+k.Value)
		if err != nil {
			return nil, err
		}
		out[k.Value] = v
	}
	return out, nil
}

func (p *jobParser) endpoint(n *yaml.Node, what string) (map[string]any, error) {
	if n.Kind == yaml.ScalarNode && n.Tag != "!!null" {
		e, err := parseEndpoint(n.Value)
		if err != nil {
			return nil, p.errf(n, "%s: %v", what, err)
		}
		return e, nil
	}
	m, order, err := p.mapping(n, what, endpointKeys)
	if err != nil {
		return nil, err
	}
	e := map[string]any{}
	for _, k := range order {
		v, key := m[k.Value], k.Value
		path := what + "." + key
		switch key {
		case "addrs":
			if v.Kind == yaml.ScalarNode {
				s, err := p.str(v, path)
				if err != nil {
					return nil, err
				}
				e[key] = strings.Split(s, ",")
				continue
			}
			l, err := p.strList(v, path)
			if err != nil {
				return nil, err
			}
			e[key] = l
		case "tls", "tlsSkipVerify", "cluster":
			b, err := p.boolean(v, path)
			if err != nil {
				return nil, err
			}
			e[key] = b
		case "options":
			o, err := p.strMap(v, path)
			if err != nil {
				return nil, err
			}
			e[key] = o
		case "kind":
			s, err := p.str(v, path)
			if err != nil {
				return nil, err
			}
			if !ferry.EngineKind(s).Valid() {
				return nil, p.errf(v, "%s: unknown kind %q (redis, mysql, mongodb)", path, s)
			}
			e[key] = s
		default:
			s, err := p.scalar(v, path)
			if err != nil {
				return nil, err
			}
			e[key] = s
		}
	}
	if e["name"] == nil {
		if e["kind"] == nil {
			return nil, p.errf(n, "%s: missing kind (redis, mysql or mongodb), or give a registered endpoint's name", what)
		}
		if e["addrs"] == nil {
			return nil, p.errf(n, "%s: missing addrs (host:port, or a list of them)", what)
		}
	}
	return e, nil
}

// parseJobFile reads and checks a job file strictly.
func parseJobFile(file string, data []byte) (*jobFile, error) {
	p := &jobParser{file: file}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, &jobError{file: file, msg: strings.TrimPrefix(err.Error(), "yaml: ")}
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		return nil, &jobError{file: file, msg: "empty job file"}
	}
	root := doc.Content[0]
	m, _, err := p.mapping(root, "job", jobKeys)
	if err != nil {
		return nil, err
	}
	j := &jobFile{body: map[string]any{}, cutover: "prompt"}
	for _, side := range []string{"source", "target"} {
		n, ok := m[side]
		if !ok {
			return nil, p.errf(root, "missing %s: the %s endpoint (a SPEC such as mysql://user@host:3306, a registered endpoint's name, or a mapping with kind and addrs)", side, side)
		}
		e, err := p.endpoint(n, side)
		if err != nil {
			return nil, err
		}
		j.body[side] = e
	}
	for _, key := range []string{"name", "description", "importance"} {
		if n, ok := m[key]; ok {
			s, err := p.str(n, key)
			if err != nil {
				return nil, err
			}
			j.body[key] = s
		}
	}
	if n, ok := m["engine"]; ok {
		s, err := p.str(n, "engine")
		if err != nil {
			return nil, err
		}
		if !ferry.EngineKind(s).Valid() {
			return nil, p.errf(n, "engine: unknown engine %q (redis, mysql, mongodb)", s)
		}
		j.engine = s
		j.body["engine"] = s
	} else {
		j.engine = kindOf(j.body["target"].(map[string]any))
	}
	if j.engine != "" {
		for _, side := range []string{"source", "target"} {
			if k := kindOf(j.body[side].(map[string]any)); k != "" && k != j.engine {
				return nil, p.errf(m[side], "%s: is %s but the job's engine is %s", side, k, j.engine)
			}
		}
	}
	modes := []string{"full", "incremental", "verify"}
	if n, ok := m["modes"]; ok {
		if modes, err = p.strList(n, "modes"); err != nil {
			return nil, err
		}
		if len(modes) == 0 {
			return nil, p.errf(n, "modes: give at least one of schema, full, incremental, verify")
		}
	}
	md := map[string]bool{}
	for i, s := range modes {
		switch s {
		case "schema", "full", "incremental", "verify":
			md[s] = true
		case "reverse-incremental", "reverseIncremental", "reverse_incremental":
			md["reverseIncremental"] = true
		default:
			line := m["modes"]
			if line != nil && i < len(line.Content) {
				line = line.Content[i]
			}
			return nil, p.errf(line, "modes: unknown mode %q (schema, full, incremental, verify, reverse-incremental)", s)
		}
	}
	j.body["modes"] = md
	opts := map[string]any{}
	if n, ok := m["options"]; ok {
		om, order, err := p.mapping(n, "options", nil)
		if err != nil {
			return nil, err
		}
		for _, k := range order {
			v, err := p.scalar(om[k.Value], "options."+k.Value)
			if err != nil {
				return nil, err
			}
			if err := buildOptions(j.engine, map[string]string{k.Value: v}, opts); err != nil {
				return nil, p.errf(k, "%s", ferry.ErrorMessage(err))
			}
		}
	}
	if n, ok := m["filters"]; ok {
		fm, order, err := p.mapping(n, "filters", filterKeys)
		if err != nil {
			return nil, err
		}
		f := map[string]any{}
		for _, k := range order {
			if k.Value == "renames" {
				r, err := p.strMap(fm[k.Value], "filters.renames")
				if err != nil {
					return nil, err
				}
				f[k.Value] = r
				continue
			}
			l, err := p.strList(fm[k.Value], "filters."+k.Value)
			if err != nil {
				return nil, err
			}
			f[k.Value] = l
		}
		opts["filters"] = f
	}
	if len(opts) > 0 {
		j.body["options"] = opts
	}
	if n, ok := m["labels"]; ok {
		l, err := p.strMap(n, "labels")
		if err != nil {
			return nil, err
		}
		j.body["labels"] = l
	}
	if n, ok := m["cutover"]; ok {
		s, err := p.str(n, "cutover")
		if err != nil {
			return nil, err
		}
		if s != "prompt" && s != "at-ready" {
			return nil, p.errf(n, "cutover: want prompt (ask before cutting over) or at-ready (cut over as soon as the job is ready), got %q", s)
		}
		j.cutover = s
	}
	return j, nil
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// stdin is where migrate reads the cutover confirmation; tests replace it.
var stdin io.Reader = os.Stdin

// validation is the native API's validation.
type validation struct {
	ID     string   `json:"id"`
	Status string   `json:"status"`
	Errors []string `json:"errors"`
}

// migrate runs a job file: precheck, then the job (copy, sync), then a
// cutover once confirmed, then verification.
func (c *cli) migrate(args []string) error {
	fs := c.flags("migrate", "-f JOB-FILE [flags]  (steps: precheck → full copy → incremental sync → confirmation → cutover → verify)")
	var f clientFlags
	f.register(fs, true)
	file := fs.String("f", "", "the job file (YAML or JSON; see the README)")
	yes := fs.Bool("yes", false, "cut over without asking as soon as the job is ready")
	atReady := fs.Bool("cutover-at-ready", false, "the same as --yes")
	check := fs.Bool("check", false, "only check the job file strictly and print the request it makes")
	interval := fs.Duration("interval", time.Second, "how often to poll the job")
	timeout := fs.Duration("ready-timeout", 0, "give up waiting for readiness after this long (0: wait)")
	if _, err := c.parse(fs, args, 0); err != nil {
		return err
	}
	if *file == "" {
		fs.Usage()
		return errUsage
	}
	data, err := os.ReadFile(*file)
	if err != nil {
		return err
	}
	job, err := parseJobFile(*file, data)
	if err != nil {
		return err
	}
	if *check {
		if f.json {
			return c.printJSON(redactBody(job.body))
		}
		fmt.Fprintf(c.stdout, "%s: OK (engine %s, cutover %s)\n", *file, orUnknown(job.engine), job.cutover)
		return nil
	}
	autoCut := *yes || *atReady || job.cutover == "at-ready"
	cl, err := c.newClient(&f, true)
	if err != nil {
		return err
	}
	say := func(format string, a ...any) {
		fmt.Fprintf(c.stdout, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, a...)...)
	}

	// 1. Precheck.
	say("precheck: checking the source and the target")
	var v validation
	if _, err := cl.do(c.ctx, "POST", cl.projectPath("validations"), job.body, &v); err != nil {
		return err
	}
	for v.Status == "PENDING" {
		if err := c.sleep(*interval); err != nil {
			return err
		}
		if _, err := cl.do(c.ctx, "GET", cl.projectPath("validations", v.ID), nil, &v); err != nil {
			return err
		}
	}
	if v.Status != "SUCCESS" {
		return &exitError{code: 1, err: fmt.Errorf("precheck failed: %s", strings.Join(v.Errors, "; "))}
	}
	say("precheck: passed")

	// 2. The job: full copy, then incremental sync.
	body := map[string]any{}
	for k, x := range job.body {
		body[k] = x
	}
	body["start"] = true
	var m migration
	if _, err := cl.do(c.ctx, "POST", cl.projectPath("migrations"), body, &m); err != nil {
		return err
	}
	say("migration %s (%s) created and started", m.ID, m.Name)
	lines := &linesUI{c: c, w: &watcher{rates: map[string]*rate{}}}
	follow := func(until func(m *migration) bool, limit time.Duration) error {
		start := time.Now()
		for {
			var next migration
			if _, err := cl.do(c.ctx, "GET", cl.projectPath("migrations", m.ID), nil, &next); err != nil {
				var ae *apiError
				if errors.As(err, &ae) && ae.Status >= 500 {
					fmt.Fprintln(c.stderr, "ferry: poll:", err)
				} else {
					return err
				}
			} else {
				m = next
				lines.w.set(&m, time.Now())
				lines.update(&m)
				if until(&m) {
					return nil
				}
			}
			if limit > 0 && time.Since(start) > limit {
				return &exitError{code: 1, err: fmt.Errorf("migration %s is not ready after %s: %s", m.ID, limit, m.notReady())}
			}
			if err := c.sleep(*interval); err != nil {
				return err
			}
		}
	}
	ended := func(m *migration) bool { return m.ended() }
	if err := follow(func(m *migration) bool { return ended(m) || (m.Readiness != nil && m.Readiness.Ready) }, *timeout); err != nil {
		return err
	}
	if m.ended() {
		return c.migrateEnd(&m)
	}

	// 3. Confirmation.
	say("migration %s is ready for cutover (%s)", m.ID, strings.TrimSpace(m.lagText()))
	if !autoCut {
		fmt.Fprintf(c.stdout, "Cutover finishes the sync: switch the applications to the target after it (see the README: cutover caveats).\nCut over now? [y/N] ")
		line, _ := bufio.NewReader(stdin).ReadString('\n')
		if a := strings.ToLower(strings.TrimSpace(line)); a != "y" && a != "yes" {
			fmt.Fprintf(c.stdout, "\nnot cut over: the job keeps syncing. Cut over later with: ferry migrations cutover %s\n", m.ID)
			return nil
		}
	}

	// 4. Cutover, then verification.
	if _, err := cl.do(c.ctx, "POST", cl.projectPath("migrations", m.ID, "cutover"), nil, &m); err != nil {
		return err
	}
	say("cutover requested")
	if m.Cutover != nil {
		for _, n := range m.Cutover.Notes {
			say("cutover: %s", n)
		}
	}
	if err := follow(ended, 0); err != nil {
		return err
	}
	return c.migrateEnd(&m)
}

// migrateEnd prints the ended job and turns a failure into exit code 1.
func (c *cli) migrateEnd(m *migration) error {
	fmt.Fprintln(c.stdout)
	if err := c.printMigration(m); err != nil {
		return err
	}
	if m.State != "completed" {
		msg := "migration " + m.ID + " " + m.State
		if m.Error != "" {
			msg += ": " + m.Error
		}
		return &exitError{code: 1, err: errors.New(msg)}
	}
	fmt.Fprintf(c.stdout, "migration %s completed\n", m.ID)
	return nil
}

func (c *cli) sleep(d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-c.ctx.Done():
		return c.ctx.Err()
	case <-t.C:
		return nil
	}
}

func orUnknown(s string) string {
	if s == "" {
		return "from the registered target"
	}
	return s
}

// redactBody blanks passwords of a request body for printing.
func redactBody(b map[string]any) map[string]any {
	out := map[string]any{}
	keys := make([]string, 0, len(b))
	for k := range b {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := b[k]
		if e, ok := v.(map[string]any); ok && (k == "source" || k == "target") {
			c := map[string]any{}
			for ek, ev := range e {
				if ek == "password" {
					ev = "(set)"
				}
				c[ek] = ev
			}
			v = c
		}
		out[k] = v
	}
	return out
}
