package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
)

// ---- projects ----

func (c *cli) projects(args []string) error {
	return c.subcommand("projects", args, map[string]func([]string) error{
		"create": c.projectsCreate,
		"list":   c.projectsList,
		"get":    c.projectsGet,
		"rename": c.projectsRename,
		"delete": c.projectsDelete,
	}, []string{"create", "list", "get", "rename", "delete"})
}

func (c *cli) printProjects(ps ...project) error {
	t := c.table("ID", "NAME", "ORG", "CREATED")
	for _, p := range ps {
		t.row(p.ID, p.Name, p.OrgID, fmtTime(&p.CreatedAt))
	}
	return t.flush()
}

func (c *cli) projectsCreate(args []string) error {
	fs := c.flags("projects create", "NAME [flags]")
	var f clientFlags
	f.register(fs, false)
	org := fs.String("org", "", "organization id (default: the key's)")
	pos, err := c.parse(fs, args, 1)
	if err != nil {
		return err
	}
	cl, err := c.newClient(&f, false)
	if err != nil {
		return err
	}
	var p project
	raw, err := cl.do(c.ctx, "POST", "/api/v1/projects", map[string]any{"name": pos[0], "orgId": *org}, &p)
	if err != nil {
		return err
	}
	if f.json {
		return c.printRaw(raw)
	}
	return c.printProjects(p)
}

func pageQuery(offset, limit int) string {
	q := url.Values{}
	if offset > 0 {
		q.Set("offset", strconv.Itoa(offset))
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	if len(q) == 0 {
		return ""
	}
	return "?" + q.Encode()
}

func (c *cli) projectsList(args []string) error {
	fs := c.flags("projects list", "[flags]")
	var f clientFlags
	f.register(fs, false)
	offset := fs.Int("offset", 0, "skip this many")
	limit := fs.Int("limit", 0, "at most this many (server default 100, max 500)")
	if _, err := c.parse(fs, args, 0); err != nil {
		return err
	}
	cl, err := c.newClient(&f, false)
	if err != nil {
		return err
	}
	var l listOf[project]
	raw, err := cl.do(c.ctx, "GET", "/api/v1/projects"+pageQuery(*offset, *limit), nil, &l)
	if err != nil {
		return err
	}
	if f.json {
		return c.printRaw(raw)
	}
	return c.printProjects(l.Items...)
}

func (c *cli) projectsGet(args []string) error {
	fs := c.flags("projects get", "ID [flags]")
	var f clientFlags
	f.register(fs, false)
	pos, err := c.parse(fs, args, 1)
	if err != nil {
		return err
	}
	cl, err := c.newClient(&f, false)
	if err != nil {
		return err
	}
	var p project
	raw, err := cl.do(c.ctx, "GET", "/api/v1/projects/"+url.PathEscape(pos[0]), nil, &p)
	if err != nil {
		return err
	}
	if f.json {
		return c.printRaw(raw)
	}
	return c.printProjects(p)
}

func (c *cli) projectsRename(args []string) error {
	fs := c.flags("projects rename", "ID NEW-NAME [flags]")
	var f clientFlags
	f.register(fs, false)
	pos, err := c.parse(fs, args, 2)
	if err != nil {
		return err
	}
	cl, err := c.newClient(&f, false)
	if err != nil {
		return err
	}
	var p project
	raw, err := cl.do(c.ctx, "PATCH", "/api/v1/projects/"+url.PathEscape(pos[0]), map[string]any{"name": pos[1]}, &p)
	if err != nil {
		return err
	}
	if f.json {
		return c.printRaw(raw)
	}
	return c.printProjects(p)
}

func (c *cli) projectsDelete(args []string) error {
	fs := c.flags("projects delete", "ID [flags]")
	var f clientFlags
	f.register(fs, false)
	pos, err := c.parse(fs, args, 1)
	if err != nil {
		return err
	}
	cl, err := c.newClient(&f, false)
	if err != nil {
		return err
	}
	if _, err := cl.do(c.ctx, "DELETE", "/api/v1/projects/"+url.PathEscape(pos[0]), nil, nil); err != nil {
		return err
	}
	return c.done(f.json, "project "+pos[0]+" deleted")
}

// done reports a bodiless success.
func (c *cli) done(jsonOut bool, msg string) error {
	if jsonOut {
		return c.printJSON(map[string]any{"ok": true, "message": msg})
	}
	fmt.Fprintln(c.stdout, msg)
	return nil
}

// ---- endpoints ----

func (c *cli) endpoints(args []string) error {
	return c.subcommand("endpoints", args, map[string]func([]string) error{
		"create": c.endpointsCreate,
		"list":   c.endpointsList,
		"get":    c.endpointsGet,
		"update": c.endpointsUpdate,
		"delete": c.endpointsDelete,
	}, []string{"create", "list", "get", "update", "delete"})
}

func (c *cli) printEndpoints(es ...endpoint) error {
	t := c.table("ID", "NAME", "KIND", "ADDRS", "USER", "PASSWORD", "DATABASE", "TLS", "CLUSTER")
	for _, e := range es {
		pw := "no"
		if e.HasPassword {
			pw = "set"
		}
		t.row(e.ID, e.Name, e.Kind, strings.Join(e.Addrs, ","), e.Username, pw, e.Database, yesNo(e.TLS), yesNo(e.Cluster))
	}
	return t.flush()
}

func (c *cli) endpointsCreate(args []string) error {
	fs := c.flags("endpoints create", "--name NAME --kind KIND --addr HOST:PORT [flags]")
	var f clientFlags
	f.register(fs, true)
	name := fs.String("name", "", "endpoint name, unique in the project")
	kind := fs.String("kind", "", "redis, mysql or mongodb")
	var addrs, opts listFlag
	fs.Var(&addrs, "addr", "host:port (repeat or comma-separate for a cluster)")
	user := fs.String("username", "", "user name")
	password := fs.String("password", "", "password (prefer FERRY_PASSWORD or --password-file: command lines are visible to other users)")
	passwordFile := fs.String("password-file", "", "read the password from this file")
	db := fs.String("database", "", "Redis db, MySQL schema or MongoDB auth database")
	tls := fs.Bool("tls", false, "connect with TLS")
	cluster := fs.Bool("cluster", false, "Redis Cluster / sharded cluster")
	fs.Var(&opts, "option", "engine option KEY=VALUE (repeatable)")
	if _, err := c.parse(fs, args, 0); err != nil {
		return err
	}
	pw := *password
	if *passwordFile != "" {
		b, err := os.ReadFile(*passwordFile)
		if err != nil {
			return err
		}
		pw = strings.TrimRight(string(b), "\r\n")
	}
	options, err := keyValues(opts)
	if err != nil {
		return err
	}
	body := map[string]any{"name": *name, "kind": *kind, "addrs": []string(addrs), "username": *user, "password": pw,
		"database": *db, "tls": *tls, "cluster": *cluster, "options": options}
	return c.endpointRequest(&f, "POST", nil, body)
}

// endpointRequest sends method to the project's endpoints (ref: one of
// them) and prints the endpoint it answers.
func (c *cli) endpointRequest(f *clientFlags, method string, ref []string, body any) error {
	cl, err := c.newClient(f, true)
	if err != nil {
		return err
	}
	var e endpoint
	raw, err := cl.do(c.ctx, method, cl.projectPath(append([]string{"endpoints"}, ref...)...), body, &e)
	if err != nil {
		return err
	}
	if f.json {
		return c.printRaw(raw)
	}
	return c.printEndpoints(e)
}

func keyValues(kvs []string) (map[string]string, error) {
	if len(kvs) == 0 {
		return nil, nil
	}
	out := map[string]string{}
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("option %q: want KEY=VALUE", kv)
		}
		out[k] = v
	}
	return out, nil
}

func (c *cli) endpointsList(args []string) error {
	fs := c.flags("endpoints list", "[flags]")
	var f clientFlags
	f.register(fs, true)
	if _, err := c.parse(fs, args, 0); err != nil {
		return err
	}
	cl, err := c.newClient(&f, true)
	if err != nil {
		return err
	}
	var l listOf[endpoint]
	raw, err := cl.do(c.ctx, "GET", cl.projectPath("endpoints")+"?limit=500", nil, &l)
	if err != nil {
		return err
	}
	if f.json {
		return c.printRaw(raw)
	}
	return c.printEndpoints(l.Items...)
}

func (c *cli) endpointsGet(args []string) error {
	fs := c.flags("endpoints get", "ID|NAME [flags]")
	var f clientFlags
	f.register(fs, true)
	pos, err := c.parse(fs, args, 1)
	if err != nil {
		return err
	}
	return c.endpointRequest(&f, "GET", pos[:1], nil)
}

// endpointsUpdate sends only the flags given on the command line.
func (c *cli) endpointsUpdate(args []string) error {
	fs := c.flags("endpoints update", "ID|NAME [--name N] [--addr HOST:PORT] [--password-file F] [flags]")
	var f clientFlags
	f.register(fs, true)
	name := fs.String("name", "", "new name")
	var addrs, opts listFlag
	fs.Var(&addrs, "addr", "host:port (repeat or comma-separate): replaces the addresses")
	user := fs.String("username", "", "user name")
	password := fs.String("password", "", "password (prefer FERRY_PASSWORD or --password-file)")
	passwordFile := fs.String("password-file", "", "read the new password from this file")
	db := fs.String("database", "", "Redis db, MySQL schema or MongoDB auth database")
	tls := fs.Bool("tls", false, "connect with TLS")
	cluster := fs.Bool("cluster", false, "Redis Cluster / sharded cluster")
	fs.Var(&opts, "option", "engine option KEY=VALUE (repeatable): replaces the options")
	pos, err := c.parse(fs, args, 1)
	if err != nil {
		return err
	}
	body := map[string]any{}
	var ferr error
	fs.Visit(func(fl *flag.Flag) {
		switch fl.Name {
		case "name":
			body["name"] = *name
		case "addr":
			body["addrs"] = []string(addrs)
		case "username":
			body["username"] = *user
		case "password":
			body["password"] = *password
		case "password-file":
			b, err := os.ReadFile(*passwordFile)
			if err != nil {
				ferr = err
			}
			body["password"] = strings.TrimRight(string(b), "\r\n")
		case "database":
			body["database"] = *db
		case "tls":
			body["tls"] = *tls
		case "cluster":
			body["cluster"] = *cluster
		case "option":
			o, err := keyValues(opts)
			if err != nil {
				ferr = err
			}
			body["options"] = o
		}
	})
	if ferr != nil {
		return ferr
	}
	if len(body) == 0 {
		return fmt.Errorf("endpoints update: nothing to change (give --name, --addr, --password-file, …)")
	}
	return c.endpointRequest(&f, "PATCH", pos[:1], body)
}

func (c *cli) endpointsDelete(args []string) error {
	fs := c.flags("endpoints delete", "ID|NAME [flags]")
	var f clientFlags
	f.register(fs, true)
	pos, err := c.parse(fs, args, 1)
	if err != nil {
		return err
	}
	cl, err := c.newClient(&f, true)
	if err != nil {
		return err
	}
	if _, err := cl.do(c.ctx, "DELETE", cl.projectPath("endpoints", pos[0]), nil, nil); err != nil {
		return err
	}
	return c.done(f.json, "endpoint "+pos[0]+" deleted")
}

// ---- migrations ----

func (c *cli) migrations(args []string) error {
	verbs := map[string]func([]string) error{
		"create":         c.migrationsCreate,
		"list":           c.migrationsList,
		"get":            c.migrationsGet,
		"watch":          c.migrationsWatch,
		"delete":         c.migrationsDelete,
		"extend-cutover": c.migrationsExtend,
	}
	order := []string{"create", "list", "get", "watch", "start", "pause", "resume", "cutover", "release-source", "extend-cutover", "verify", "release", "delete"}
	for _, a := range []string{"start", "pause", "resume", "cutover", "release-source", "verify", "release"} {
		verbs[a] = func(args []string) error { return c.migrationsAction(a, args) }
	}
	return c.subcommandHelp("migrations", args, verbs, order, migrationVerbHelp)
}

// parseEndpoint turns a --source/--target value into an endpoint body:
// KIND://[USER[:PASSWORD]@]HOST:PORT[,HOST:PORT...][/DATABASE][?tls=true&cluster=true&KEY=VALUE]
// or the name of an endpoint registered in the project.
func parseEndpoint(spec string) (map[string]any, error) {
	scheme, rest, ok := strings.Cut(spec, "://")
	if !ok {
		if spec == "" {
			return nil, fmt.Errorf("empty endpoint")
		}
		return map[string]any{"name": spec}, nil
	}
	e := map[string]any{}
	switch scheme {
	case "redis", "mysql", "mongodb":
		e["kind"] = scheme
	case "rediss":
		e["kind"], e["tls"] = "redis", true
	default:
		return nil, fmt.Errorf("endpoint %q: unknown scheme %q (redis, rediss, mysql, mongodb)", redactURL(spec), scheme)
	}
	rest, query, _ := strings.Cut(rest, "?")
	hosts, db, _ := strings.Cut(rest, "/")
	if at := strings.LastIndex(hosts, "@"); at >= 0 {
		user, pass, hasPass := strings.Cut(hosts[:at], ":")
		hosts = hosts[at+1:]
		var err error
		if user, err = url.PathUnescape(user); err != nil {
			return nil, fmt.Errorf("endpoint user: %w", err)
		}
		if user != "" {
			e["username"] = user
		}
		if hasPass {
			if pass, err = url.PathUnescape(pass); err != nil {
				return nil, fmt.Errorf("endpoint password is not URL-escaped properly")
			}
			e["password"] = pass
		}
	}
	var addrs []string
	for h := range strings.SplitSeq(hosts, ",") {
		if h != "" {
			addrs = append(addrs, h)
		}
	}
	e["addrs"] = addrs
	if db != "" {
		e["database"] = db
	}
	if query != "" {
		q, err := url.ParseQuery(query)
		if err != nil {
			return nil, fmt.Errorf("endpoint options: %w", err)
		}
		opts := map[string]string{}
		for k := range q {
			v := q.Get(k)
			switch k {
			case "tls", "cluster", "tlsSkipVerify":
				b, err := strconv.ParseBool(v)
				if err != nil {
					return nil, fmt.Errorf("endpoint option %s=%q: want true or false", k, v)
				}
				e[k] = b
			default:
				opts[k] = v
			}
		}
		if len(opts) > 0 {
			e["options"] = opts
		}
	}
	return e, nil
}

func (c *cli) migrationsCreate(args []string) error {
	fs := c.flags("migrations create", "--source SPEC --target SPEC [flags]  (SPEC: KIND://[USER[:PASSWORD]@]HOST:PORT[,...][/DB][?tls=true] or a registered endpoint name)")
	var f clientFlags
	f.register(fs, true)
	name := fs.String("name", "", "job name (default: engine-<id suffix>)")
	engine := fs.String("engine", "", "redis, mysql or mongodb (default: the target's kind)")
	source := fs.String("source", "", "source endpoint")
	target := fs.String("target", "", "target endpoint")
	var modes, extra listFlag
	fs.Var(&modes, "modes", "steps to run: schema,full,incremental,verify,reverse-incremental (default full,incremental,verify)")
	fs.Var(&extra, "option", "option KEY=VALUE (repeatable): conflict=replace, parallelism=N, resumeMode=manual, or the engine's own (mode=scan, cutover_write_block=read_only, ...); unknown keys are errors that list the known ones")
	start := fs.Bool("start", true, "queue the job for an agent at once (--start=false: create it only)")
	bandwidth := fs.Int("bandwidth-mb", 0, "bandwidth limit in MB/s (0: none)")
	lagOK := fs.Int("cutover-lag-seconds", 0, "ready for cutover once the lag is at or below this (default 5)")
	file := fs.String("file", "", "send this JSON file as the request body instead (see GET /api/v1/openapi.json, MigrationInput)")
	if _, err := c.parse(fs, args, 0); err != nil {
		return err
	}
	cl, err := c.newClient(&f, true)
	if err != nil {
		return err
	}
	var body any
	if *file != "" {
		b, err := os.ReadFile(*file)
		if err != nil {
			return err
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			return fmt.Errorf("%s: %w", *file, err)
		}
		if isSet(fs, "start") {
			m["start"] = *start
		}
		body = m
	} else {
		if *source == "" || *target == "" {
			fs.Usage()
			return errUsage
		}
		src, err := parseEndpoint(*source)
		if err != nil {
			return fmt.Errorf("--source: %w", err)
		}
		dst, err := parseEndpoint(*target)
		if err != nil {
			return fmt.Errorf("--target: %w", err)
		}
		m := map[string]any{"name": *name, "engine": *engine, "source": src, "target": dst, "start": *start}
		if len(modes) == 0 {
			// Verification is part of a migration unless asked otherwise.
			modes = listFlag{"full", "incremental", "verify"}
		}
		if len(modes) > 0 {
			md := map[string]bool{}
			for _, s := range modes {
				switch s {
				case "schema", "full", "incremental", "verify":
					md[s] = true
				case "reverse-incremental", "reverseIncremental", "reverse_incremental":
					md["reverseIncremental"] = true
				default:
					return fmt.Errorf("--modes: unknown mode %q (schema, full, incremental, verify, reverse-incremental)", s)
				}
			}
			m["modes"] = md
		}
		opts := map[string]any{}
		if *bandwidth > 0 {
			opts["bandwidthLimitMb"] = *bandwidth
		}
		if *lagOK > 0 {
			opts["cutoverLagSeconds"] = *lagOK
		}
		x, err := keyValues(extra)
		if err != nil {
			return err
		}
		kind := *engine
		if kind == "" {
			kind = kindOf(dst)
		}
		if err := buildOptions(kind, x, opts); err != nil {
			return err
		}
		if len(opts) > 0 {
			m["options"] = opts
		}
		body = m
	}
	var mg migration
	raw, err := cl.do(c.ctx, "POST", cl.projectPath("migrations"), body, &mg)
	if err != nil {
		return err
	}
	if f.json {
		return c.printRaw(raw)
	}
	return c.printMigration(&mg)
}

func (c *cli) printMigration(m *migration) error {
	ready := yesNo(m.ReadyForCutover)
	if m.CutoverDeadline != nil {
		ready += " (deadline " + fmtTime(m.CutoverDeadline) + ")"
	}
	if err := c.kv(
		"ID", m.ID,
		"Name", m.Name,
		"Project", m.ProjectID,
		"Engine", m.Engine,
		"State", m.State,
		"Current step", m.CurrentStep,
		"Progress", fmtPercent(m.Progress),
		"Lag", strings.TrimPrefix(m.lagText(), "lag "),
		"Ready for cutover", ready,
		"Not ready because", m.notReady(),
		"Advice", m.advice(),
		"Source", m.Source.String(),
		"Target", m.Target.String(),
		"Hosts", strings.Join(m.Hosts, ", "),
		"Created", fmtTime(&m.CreatedAt),
		"Started", fmtTime(m.StartedAt),
		"Finished", fmtTime(m.FinishedAt),
		"Error", m.Error,
	); err != nil {
		return err
	}
	fmt.Fprintln(c.stdout)
	t := c.table("STEP", "STATE", "PROGRESS", "DONE", "TOTAL", "BYTES", "OPS", "RATE/S", "CHECKPOINT TIME", "MESSAGE")
	for _, s := range m.Steps {
		total := ""
		if s.Counters.Total > 0 {
			total = fmtCount(s.Counters.Total)
		}
		rate := ""
		if s.Counters.RatePerSec > 0 {
			rate = fmt.Sprintf("%.0f", s.Counters.RatePerSec)
		}
		pct := fmtPercent(s.Progress)
		if st := syncText(m, s); st != "" {
			pct = st
		}
		t.row(s.Name, s.State, pct, fmtCount(s.Counters.Done)+" "+s.Counters.Unit, total, fmtBytes(s.Counters.Bytes),
			fmtCount(s.Counters.Ops), rate, fmtTime(s.CheckpointTime), s.Message)
	}
	if err := t.flush(); err != nil {
		return err
	}
	return c.printCutover(m)
}

func (c *cli) migrationsList(args []string) error {
	fs := c.flags("migrations list", "[flags]")
	var f clientFlags
	f.register(fs, true)
	var states listFlag
	fs.Var(&states, "state", "only these states (repeat or comma-separate)")
	engine := fs.String("engine", "", "only this engine")
	offset := fs.Int("offset", 0, "skip this many")
	limit := fs.Int("limit", 0, "at most this many (server default 100, max 500)")
	if _, err := c.parse(fs, args, 0); err != nil {
		return err
	}
	cl, err := c.newClient(&f, true)
	if err != nil {
		return err
	}
	q := url.Values{}
	if len(states) > 0 {
		q.Set("state", strings.Join(states, ","))
	}
	if *engine != "" {
		q.Set("engine", *engine)
	}
	if *offset > 0 {
		q.Set("offset", strconv.Itoa(*offset))
	}
	if *limit > 0 {
		q.Set("limit", strconv.Itoa(*limit))
	}
	path := cl.projectPath("migrations")
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	var l listOf[migration]
	raw, err := cl.do(c.ctx, "GET", path, nil, &l)
	if err != nil {
		return err
	}
	if f.json {
		return c.printRaw(raw)
	}
	t := c.table("ID", "NAME", "ENGINE", "STATE", "STEP", "PROGRESS", "LAG", "READY", "CREATED")
	for _, m := range l.Items {
		t.row(m.ID, m.Name, m.Engine, m.State, m.CurrentStep, fmtPercent(m.Progress), m.lag(), yesNo(m.ReadyForCutover), fmtTime(&m.CreatedAt))
	}
	if err := t.flush(); err != nil {
		return err
	}
	if l.Total > len(l.Items) {
		fmt.Fprintf(c.stdout, "(%d of %d; use --offset/--limit)\n", len(l.Items), l.Total)
	}
	return nil
}

func (c *cli) migrationsGet(args []string) error {
	fs := c.flags("migrations get", "ID [flags]")
	var f clientFlags
	f.register(fs, true)
	pos, err := c.parse(fs, args, 1)
	if err != nil {
		return err
	}
	cl, err := c.newClient(&f, true)
	if err != nil {
		return err
	}
	var m migration
	raw, err := cl.do(c.ctx, "GET", cl.projectPath("migrations", pos[0]), nil, &m)
	if err != nil {
		return err
	}
	if f.json {
		return c.printRaw(raw)
	}
	return c.printMigration(&m)
}

func (c *cli) migrationsAction(action string, args []string) error {
	fs := c.flags("migrations "+action, "ID [flags]")
	var f clientFlags
	f.register(fs, true)
	pos, err := c.parse(fs, args, 1)
	if err != nil {
		return err
	}
	cl, err := c.newClient(&f, true)
	if err != nil {
		return err
	}
	var m migration
	raw, err := cl.do(c.ctx, "POST", cl.projectPath("migrations", pos[0], action), nil, &m)
	if err != nil {
		return err
	}
	if f.json {
		return c.printRaw(raw)
	}
	c.actionResult(action, &m)
	return nil
}

// actionLine is what an action prints: the job's state and, while it has
// one, its step (a released or finished job has none).
func actionLine(m *migration) string {
	if m.CurrentStep == "" {
		return fmt.Sprintf("migration %s: %s", m.ID, m.State)
	}
	return fmt.Sprintf("migration %s: %s (step %s)", m.ID, m.State, m.CurrentStep)
}

func (c *cli) migrationsExtend(args []string) error {
	fs := c.flags("migrations extend-cutover", "ID --hours N [flags]")
	var f clientFlags
	f.register(fs, true)
	hours := fs.Int("hours", 0, "push the cutover deadline out by this many hours (1-120)")
	pos, err := c.parse(fs, args, 1)
	if err != nil {
		return err
	}
	cl, err := c.newClient(&f, true)
	if err != nil {
		return err
	}
	var m migration
	raw, err := cl.do(c.ctx, "POST", cl.projectPath("migrations", pos[0], "extend-cutover"), map[string]any{"hours": *hours}, &m)
	if err != nil {
		return err
	}
	if f.json {
		return c.printRaw(raw)
	}
	fmt.Fprintf(c.stdout, "migration %s: cutover deadline %s\n", m.ID, fmtTime(m.CutoverDeadline))
	return nil
}

func (c *cli) migrationsDelete(args []string) error {
	fs := c.flags("migrations delete", "ID [flags]")
	var f clientFlags
	f.register(fs, true)
	pos, err := c.parse(fs, args, 1)
	if err != nil {
		return err
	}
	cl, err := c.newClient(&f, true)
	if err != nil {
		return err
	}
	if _, err := cl.do(c.ctx, "DELETE", cl.projectPath("migrations", pos[0]), nil, nil); err != nil {
		return err
	}
	return c.done(f.json, "migration "+pos[0]+" deleted")
}

// ---- pipelines ----

func (c *cli) pipelines(args []string) error {
	verbs := map[string]func([]string) error{
		"create":  c.pipelinesCreate,
		"list":    c.pipelinesList,
		"get":     c.pipelinesGet,
		"trigger": c.pipelinesTrigger,
		"runs":    c.pipelinesRuns,
		"delete":  c.pipelinesDelete,
	}
	for _, a := range []string{"pause", "resume"} {
		verbs[a] = func(args []string) error { return c.pipelinesAction(a, args) }
	}
	return c.subcommand("pipelines", args, verbs, []string{"create", "list", "get", "pause", "resume", "trigger", "runs", "delete"})
}

func (c *cli) printPipelines(ps ...pipeline) error {
	t := c.table("NAME", "STATE", "SOURCE", "NAMESPACE", "FREQUENCY", "RETENTION", "NEXT RUN", "ID")
	for _, p := range ps {
		ret := ""
		if p.DatasetRetentionPolicy != nil {
			ret = fmt.Sprintf("%d %s", p.DatasetRetentionPolicy.Value, strings.ToLower(p.DatasetRetentionPolicy.Units))
		}
		t.row(p.Name, p.State, p.Source.ClusterName, p.Source.DatabaseName+"."+p.Source.CollectionName, p.BackupFrequencyType, ret, fmtTime(p.NextRunAt), p.ID)
	}
	return t.flush()
}

func (c *cli) pipelinesCreate(args []string) error {
	fs := c.flags("pipelines create", "--name NAME --cluster ENDPOINT --database DB --collection COLL [flags]")
	var f clientFlags
	f.register(fs, true)
	name := fs.String("name", "", "pipeline name")
	typ := fs.String("type", "ON_DEMAND_CPS", "ON_DEMAND_CPS or PERIODIC_CPS")
	cluster := fs.String("cluster", "", "the registered endpoint to snapshot")
	db := fs.String("database", "", "database name")
	coll := fs.String("collection", "", "collection or table name")
	freq := fs.String("frequency", "", "HOURLY, DAILY, WEEKLY, MONTHLY or YEARLY (PERIODIC_CPS)")
	location := fs.String("location", "", "dataset location: a directory or s3://bucket/prefix (default: the data dir)")
	days := fs.Int("retention-days", 0, "delete each run's dataset after this many days")
	file := fs.String("file", "", "send this JSON file as the request body instead")
	if _, err := c.parse(fs, args, 0); err != nil {
		return err
	}
	if *file == "" {
		var missing []string
		for _, r := range []struct{ flag, v string }{{"--name", *name}, {"--cluster", *cluster}, {"--database", *db}, {"--collection", *coll}} {
			if r.v == "" {
				missing = append(missing, r.flag)
			}
		}
		if len(missing) > 0 {
			fmt.Fprintf(c.stderr, "ferry pipelines create: %s required (or --file)\n", strings.Join(missing, ", "))
			fs.Usage()
			return errUsage
		}
	}
	cl, err := c.newClient(&f, true)
	if err != nil {
		return err
	}
	var body any
	if *file != "" {
		b, err := os.ReadFile(*file)
		if err != nil {
			return err
		}
		body = json.RawMessage(b)
	} else {
		m := map[string]any{
			"name":   *name,
			"source": map[string]any{"type": *typ, "clusterName": *cluster, "databaseName": *db, "collectionName": *coll},
			"sink":   map[string]any{"type": "DLS", "location": *location},
		}
		if *freq != "" {
			m["backupFrequencyType"] = *freq
		}
		if *days > 0 {
			m["datasetRetentionPolicy"] = map[string]any{"units": "DAYS", "value": *days}
		}
		body = m
	}
	var p pipeline
	raw, err := cl.do(c.ctx, "POST", cl.projectPath("pipelines"), body, &p)
	if err != nil {
		return err
	}
	if f.json {
		return c.printRaw(raw)
	}
	return c.printPipelines(p)
}

func (c *cli) pipelinesList(args []string) error {
	fs := c.flags("pipelines list", "[flags]")
	var f clientFlags
	f.register(fs, true)
	if _, err := c.parse(fs, args, 0); err != nil {
		return err
	}
	cl, err := c.newClient(&f, true)
	if err != nil {
		return err
	}
	var l listOf[pipeline]
	raw, err := cl.do(c.ctx, "GET", cl.projectPath("pipelines")+"?limit=500", nil, &l)
	if err != nil {
		return err
	}
	if f.json {
		return c.printRaw(raw)
	}
	return c.printPipelines(l.Items...)
}

func (c *cli) pipelinesGet(args []string) error {
	fs := c.flags("pipelines get", "NAME [flags]")
	var f clientFlags
	f.register(fs, true)
	pos, err := c.parse(fs, args, 1)
	if err != nil {
		return err
	}
	cl, err := c.newClient(&f, true)
	if err != nil {
		return err
	}
	var p pipeline
	raw, err := cl.do(c.ctx, "GET", cl.projectPath("pipelines", pos[0]), nil, &p)
	if err != nil {
		return err
	}
	if f.json {
		return c.printRaw(raw)
	}
	return c.printPipelines(p)
}

func (c *cli) pipelinesAction(action string, args []string) error {
	fs := c.flags("pipelines "+action, "NAME [flags]")
	var f clientFlags
	f.register(fs, true)
	pos, err := c.parse(fs, args, 1)
	if err != nil {
		return err
	}
	cl, err := c.newClient(&f, true)
	if err != nil {
		return err
	}
	var p pipeline
	raw, err := cl.do(c.ctx, "POST", cl.projectPath("pipelines", pos[0], action), nil, &p)
	if err != nil {
		return err
	}
	if f.json {
		return c.printRaw(raw)
	}
	fmt.Fprintf(c.stdout, "pipeline %s: %s\n", p.Name, p.State)
	return nil
}

func (c *cli) printRuns(rs ...pipelineRun) error {
	t := c.table("ID", "PIPELINE", "STATE", "PHASE", "DOCS", "BYTES", "DATASET", "DELETION", "CREATED")
	for _, r := range rs {
		t.row(r.ID, r.PipelineName, r.State, r.Phase, fmtCount(r.Stats.NumDocs), fmtBytes(r.Stats.BytesExported), r.DatasetName,
			fmtTime(r.ScheduledDeletionDate), fmtTime(&r.CreatedAt))
	}
	return t.flush()
}

func (c *cli) pipelinesTrigger(args []string) error {
	fs := c.flags("pipelines trigger", "NAME [flags]")
	var f clientFlags
	f.register(fs, true)
	snapshot := fs.String("snapshot-id", "", "record this snapshot id on the run")
	days := fs.Int("retention-days", 0, "override the pipeline's dataset retention")
	pos, err := c.parse(fs, args, 1)
	if err != nil {
		return err
	}
	cl, err := c.newClient(&f, true)
	if err != nil {
		return err
	}
	body := map[string]any{}
	if *snapshot != "" {
		body["snapshotId"] = *snapshot
	}
	if *days > 0 {
		body["datasetRetentionPolicy"] = map[string]any{"units": "DAYS", "value": *days}
	}
	var r pipelineRun
	raw, err := cl.do(c.ctx, "POST", cl.projectPath("pipelines", pos[0], "trigger"), body, &r)
	if err != nil {
		return err
	}
	if f.json {
		return c.printRaw(raw)
	}
	return c.printRuns(r)
}

func (c *cli) pipelinesRuns(args []string) error {
	fs := c.flags("pipelines runs", "NAME [flags]")
	var f clientFlags
	f.register(fs, true)
	offset := fs.Int("offset", 0, "skip this many")
	limit := fs.Int("limit", 0, "at most this many")
	pos, err := c.parse(fs, args, 1)
	if err != nil {
		return err
	}
	cl, err := c.newClient(&f, true)
	if err != nil {
		return err
	}
	var l listOf[pipelineRun]
	raw, err := cl.do(c.ctx, "GET", cl.projectPath("pipelines", pos[0], "runs")+pageQuery(*offset, *limit), nil, &l)
	if err != nil {
		return err
	}
	if f.json {
		return c.printRaw(raw)
	}
	return c.printRuns(l.Items...)
}

func (c *cli) pipelinesDelete(args []string) error {
	fs := c.flags("pipelines delete", "NAME [flags]")
	var f clientFlags
	f.register(fs, true)
	pos, err := c.parse(fs, args, 1)
	if err != nil {
		return err
	}
	cl, err := c.newClient(&f, true)
	if err != nil {
		return err
	}
	if _, err := cl.do(c.ctx, "DELETE", cl.projectPath("pipelines", pos[0]), nil, nil); err != nil {
		return err
	}
	return c.done(f.json, "pipeline "+pos[0]+" deleted")
}
