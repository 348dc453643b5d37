package main

import (
	"strings"
	"testing"

	"github.com/ferrymigrate/ferry"
)

func TestJobFileStrict(t *testing.T) {
	tests := []struct {
		name string
		file string
		want string // substring of the error; "" = valid
	}{
		{"spec strings", "source: redis://10.0.0.1:6379\ntarget: redis://10.0.0.2:6379\n", ""},
		{"mappings", "name: orders\nsource:\n  kind: mysql\n  addrs: [10.0.0.1:3306]\n  username: root\ntarget:\n  kind: mysql\n  addrs: 10.0.0.2:3306\n  tls: true\nmodes: [schema, full, incremental, verify]\noptions:\n  conflict: replace\n  cutover_write_block: read_only\n  parallelism: 4\nfilters:\n  includeDbs: [shop]\n  renames: {shop: shop2}\ncutover: at-ready\n", ""},
		{"json", `{"source": "mysql://root@10.0.0.1:3306", "target": "mysql://root@10.0.0.2:3306", "options": {"conflict": "replace"}}`, ""},
		{"registered names", "source: src\ntarget: dst\noptions:\n  mode: scan\n", ""},
		{"unknown key", "source: redis://a:1\ntarget: redis://b:1\nmode: scan\n", "job.yaml:3: job: unknown key \"mode\""},
		{"unknown endpoint key", "source: redis://a:1\ntarget:\n  kind: redis\n  addr: b:1\n", "job.yaml:4: target: unknown key \"addr\""},
		{"missing target", "source: redis://a:1\n", "job.yaml:1: missing target"},
		{"missing addrs", "source: redis://a:1\ntarget:\n  kind: redis\n", "job.yaml:3: target: missing addrs"},
		{"wrong type", "source: redis://a:1\ntarget:\n  kind: redis\n  addrs: [b:1]\n  tls: \"yes\"\n", "job.yaml:5: target.tls: want true or false, got a string"},
		{"wrong type list", "source: redis://a:1\ntarget: redis://b:1\nmodes: full\n", "job.yaml:3: modes: want a list of strings, got a string"},
		{"unknown mode", "source: redis://a:1\ntarget: redis://b:1\nmodes: [full, sync]\n", "job.yaml:3: modes: unknown mode \"sync\""},
		{"unknown option", "source: redis://a:1\ntarget: redis://b:1\noptions:\n  cutover_write_block: read_only\n", "job.yaml:4: unknown option \"cutover_write_block\" for the redis engine; known options: "},
		{"bad option value", "source: mysql://a:1\ntarget: mysql://b:1\noptions:\n  conflict: overwrite\n", "job.yaml:4: \"overwrite\" is not one of fail, replace, skip"},
		{"option not a number", "source: mysql://a:1\ntarget: mysql://b:1\noptions:\n  parallelism: many\n", "job.yaml:4: want a number"},
		{"kinds differ", "engine: mysql\nsource: redis://a:1\ntarget: mysql://b:1\n", "job.yaml:2: source: is redis but the job's engine is mysql"},
		{"duplicate key", "source: redis://a:1\ntarget: redis://b:1\nsource: redis://c:1\n", "given twice"},
		{"bad cutover", "source: redis://a:1\ntarget: redis://b:1\ncutover: now\n", "job.yaml:3: cutover: want prompt"},
		{"not yaml", "source: [\n", "job.yaml"},
		{"not a mapping", "- a\n- b\n", "job.yaml:1: job: want a mapping"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j, err := parseJobFile("job.yaml", []byte(tt.file))
			if tt.want == "" {
				if err != nil {
					t.Fatalf("valid file refused: %v", err)
				}
				if j.body["source"] == nil || j.body["target"] == nil || j.body["modes"] == nil {
					t.Fatalf("body %v", j.body)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want %q", err, tt.want)
			}
		})
	}
	// The mappings file maps onto the API's body.
	j, err := parseJobFile("job.yaml", []byte(tests[1].file))
	if err != nil {
		t.Fatal(err)
	}
	o := j.body["options"].(map[string]any)
	if o["conflict"] != "replace" || o["parallelism"] != 4 || o["extra"].(map[string]string)["cutover_write_block"] != "read_only" ||
		o["filters"].(map[string]any)["renames"].(map[string]string)["shop"] != "shop2" || j.cutover != "at-ready" ||
		!j.body["modes"].(map[string]bool)["schema"] || j.body["target"].(map[string]any)["tls"] != true {
		t.Fatalf("body %+v", j.body)
	}
	// Default modes include verification.
	j, _ = parseJobFile("job.yaml", []byte(tests[0].file))
	if md := j.body["modes"].(map[string]bool); !md["full"] || !md["incremental"] || !md["verify"] || md["schema"] {
		t.Fatalf("default modes %v", md)
	}
}

func TestBuildOptions(t *testing.T) {
	tests := []struct {
		engine string
		kv     map[string]string
		want   string // error substring
		check  func(o map[string]any) bool
	}{
		{"mysql", map[string]string{"conflict": "replace"}, "", func(o map[string]any) bool { return o["conflict"] == "replace" && o["extra"] == nil }},
		{"redis", map[string]string{"mode": "scan", "cutover_pause_seconds": "60"}, "", func(o map[string]any) bool {
			x := o["extra"].(map[string]string)
			return x["mode"] == "scan" && x["cutover_pause_seconds"] == "60"
		}},
		{"mysql", map[string]string{"cutover_write_block": "read_only", "dropTarget": "true", "resumeMode": "manual"}, "", func(o map[string]any) bool {
			return o["extra"].(map[string]string)["cutover_write_block"] == "read_only" && o["dropTarget"] == true && o["resumeMode"] == "manual"
		}},
		{"mongodb", map[string]string{"reader": "oplog"}, "", nil},
		{"redis", map[string]string{"conflct": "replace"}, "unknown option \"conflct\" for the redis engine; known options: aof_load_truncated, backup_bucket", nil},
		{"mysql", map[string]string{"mode": "scan"}, "known options: bandwidthLimitMb, conflict, cutoverLagSeconds, cutover_write_block, dropTarget, fullLoad, fullLoadBinlog, parallelism, releaseSourceAfterCutover, resumeMode", nil},
		{"", map[string]string{"nope": "1"}, "for any engine", nil},
		{"", map[string]string{"reader": "oplog"}, "", nil},
		{"redis", map[string]string{"mode": "rsync"}, "not one of psync, scan, backup_import", nil},
		{"mysql", map[string]string{"cutoverLagSeconds": "-1"}, "want a number", nil},
	}
	for _, tt := range tests {
		o := map[string]any{}
		err := buildOptions(tt.engine, tt.kv, o)
		if tt.want != "" {
			if err == nil || !strings.Contains(ferry.ErrorMessage(err), tt.want) {
				t.Errorf("%s %v: error %v, want %q", tt.engine, tt.kv, err, tt.want)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s %v: %v", tt.engine, tt.kv, err)
			continue
		}
		if tt.check != nil && !tt.check(o) {
			t.Errorf("%s %v: options %v", tt.engine, tt.kv, o)
		}
	}
}

func TestMigrationsHelp(t *testing.T) {
	code, out, _ := ferryCmd(t, "migrations", "-h")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	for verb, help := range migrationVerbHelp {
		if !strings.Contains(out, verb) || !strings.Contains(out, help) {
			t.Errorf("help lacks %s: %s", verb, out)
		}
	}
	if strings.Count(out, "\n  ") != len(migrationVerbHelp) {
		t.Errorf("help does not list every verb once:\n%s", out)
	}
	code, _, errOut := ferryCmd(t, "migrations", "create", "--project", "p", "--server", "http://127.0.0.1:1", "--public-key", "a", "--private-key", "b",
		"--source", "redis://a:1", "--target", "redis://b:1", "--option", "cutover_write_block=read_only")
	if code != 1 || !strings.Contains(errOut, "unknown option \"cutover_write_block\" for the redis engine") || !strings.Contains(errOut, "cutover_pause_seconds") {
		t.Errorf("unknown option from the CLI: %d %s", code, errOut)
	}
}
