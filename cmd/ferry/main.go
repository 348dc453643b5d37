// Command ferry is the ferry live data migration service and its CLI:
//
//	ferry serve                 the API, the web console and an agent on an embedded SQLite store
//	ferry agent --store URL     one more agent on a shared PostgreSQL store
//	ferry orgs|keys ...         administration, directly on the store
//	ferry projects|endpoints|migrations|pipelines ...   a client of the native API
//	ferry backups create|list   Redis backups for backup imports (backup_record)
//	ferry version
//
// Every flag also reads FERRY_<NAME> from the environment (--data-dir:
// FERRY_DATA_DIR); a flag given on the command line wins.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/ferrymigrate/ferry"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// getenv is the environment; tests may replace it.
var getenv = os.Getenv

// cli is one invocation: its output streams and context.
type cli struct {
	ctx    context.Context
	stdout io.Writer
	stderr io.Writer
}

// command is a subcommand.
type command struct {
	name    string
	summary string
	run     func(c *cli, args []string) error
}

func commands() []command {
	return []command{
		{"serve", "run the API, the web console and an agent (embedded SQLite store by default)", (*cli).serve},
		{"agent", "run an agent alone against a shared store", (*cli).agent},
		{"orgs", "create|list organizations (on the store, as the administrator)", (*cli).orgs},
		{"keys", "create|list API keys (on the store, as the administrator)", (*cli).keys},
		{"projects", "create|list|get|rename|delete projects", (*cli).projects},
		{"endpoints", "create|list|get|update|delete registered endpoints of a project", (*cli).endpoints},
		{"migrations", "create|list|get|watch|start|pause|resume|cutover|release-source|extend-cutover|verify|release|delete migrations ('ferry migrations -h' explains each)", (*cli).migrations},
		{"migrate", "run a migration from a job file (-f job.yaml): precheck, copy, sync, verify, then cut over on confirmation", (*cli).migrate},
		{"pipelines", "create|list|get|pause|resume|trigger|runs|delete pipelines", (*cli).pipelines},
		{"backups", "create|list Redis backups (an RDB taken over the replication link, for backup imports)", (*cli).backups},
		{"version", "print the version", (*cli).version},
	}
}

// exitError carries a specific exit code.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }

// errUsage marks a usage error already reported.
var errUsage = errors.New("usage")

// run runs the command line args and returns the exit code.
func run(args []string, stdout, stderr io.Writer) int {
	return runContext(context.Background(), args, stdout, stderr)
}

func runContext(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := &cli{ctx: ctx, stdout: stdout, stderr: stderr}
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		c.usage(stdout)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	for _, cmd := range commands() {
		if cmd.name == args[0] {
			err := cmd.run(c, args[1:])
			return c.exit(err)
		}
	}
	fmt.Fprintf(stderr, "ferry: unknown command %q\n\n", args[0])
	c.usage(stderr)
	return 2
}

func (c *cli) exit(err error) int {
	if err == nil {
		return 0
	}
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if errors.Is(err, errUsage) {
		return 2
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil && ee.err.Error() != "" {
			fmt.Fprintln(c.stderr, "ferry:", ee.err)
		}
		return ee.code
	}
	var ae *apiError
	if errors.As(err, &ae) {
		fmt.Fprintln(c.stderr, "ferry:", ae.Human())
		return 1
	}
	if fe := ferry.AsError(err); fe != nil {
		msg := fe.Message
		if fe.Field != "" {
			msg = fe.Field + ": " + msg
		}
		fmt.Fprintln(c.stderr, "ferry:", msg)
		if fe.Advice != "" {
			fmt.Fprintln(c.stderr, "advice:", fe.Advice)
		}
		return 1
	}
	fmt.Fprintln(c.stderr, "ferry:", err)
	return 1
}

func (c *cli) usage(w io.Writer) {
	fmt.Fprintf(w, "ferry %s: live data migration service\n\nUsage: ferry COMMAND [ARGS] [FLAGS]\n\nCommands:\n", ferry.Version)
	for _, cmd := range commands() {
		fmt.Fprintf(w, "  %-11s %s\n", cmd.name, cmd.summary)
	}
	fmt.Fprintf(w, "\nRun 'ferry COMMAND -h' for a command's flags. Every flag also reads FERRY_<FLAG> from the environment.\n")
}

func (c *cli) version(args []string) error {
	fs := c.flags("version", "")
	if _, err := c.parse(fs, args, 0); err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "ferry %s\n", ferry.Version)
	return nil
}

// ---- flags ----

// flags returns a flag set whose usage names the command.
func (c *cli) flags(name, argsUsage string) *flag.FlagSet {
	fs := flag.NewFlagSet("ferry "+name, flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	fs.Usage = func() {
		fmt.Fprintf(c.stderr, "Usage: ferry %s %s\n\nFlags (each also read from FERRY_<NAME>):\n", name, argsUsage)
		fs.PrintDefaults()
	}
	return fs
}

// envName is the environment variable of a flag: --data-dir: FERRY_DATA_DIR.
func envName(flagName string) string {
	return "FERRY_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// parse applies FERRY_* environment values, then parses args allowing
// flags before, between and after positional arguments, and checks that
// exactly nargs positional arguments were given (nargs < 0: any number).
func (c *cli) parse(fs *flag.FlagSet, args []string, nargs int) ([]string, error) {
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		if v := getenv(envName(f.Name)); v != "" && envErr == nil {
			if err := fs.Set(f.Name, v); err != nil {
				envErr = fmt.Errorf("%s=%q: %w", envName(f.Name), v, err)
			}
		}
	})
	if envErr != nil {
		return nil, envErr
	}
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, errUsage
		}
		rest := fs.Args()
		if len(rest) == 0 {
			break
		}
		// fs.Parse stops at the first positional argument or after "--".
		consumed := len(args) - len(rest)
		if consumed > 0 && args[consumed-1] == "--" {
			pos = append(pos, rest...)
			break
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
	if nargs >= 0 && len(pos) != nargs {
		fs.Usage()
		return nil, errUsage
	}
	return pos, nil
}

// isSet reports whether a flag was given on the command line or in the
// environment.
func isSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) {
		if f.Name == name {
			set = true
		}
	})
	return set
}

// listFlag is a repeatable flag that also splits on commas.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(v string) error {
	for s := range strings.SplitSeq(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*l = append(*l, s)
		}
	}
	return nil
}

// subcommand splits "VERB rest..." and finds VERB's function.
func (c *cli) subcommand(group string, args []string, verbs map[string]func([]string) error, order []string) error {
	return c.subcommandHelp(group, args, verbs, order, nil)
}

// subcommandHelp is subcommand with a line of help per verb, printed by
// "ferry GROUP -h" (to stdout) and on a missing verb (to stderr).
func (c *cli) subcommandHelp(group string, args []string, verbs map[string]func([]string) error, order []string, help map[string]string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		w := c.stderr
		if len(args) > 0 {
			w = c.stdout
		}
		fmt.Fprintf(w, "Usage: ferry %s %s ...\n", group, strings.Join(order, "|"))
		if len(help) > 0 {
			fmt.Fprintln(w, "\nVerbs:")
			for _, v := range order {
				fmt.Fprintf(w, "  %-16s %s\n", v, help[v])
			}
			fmt.Fprintf(w, "\n'ferry %s VERB -h' lists a verb's flags.\n", group)
		}
		if len(args) == 0 {
			return errUsage
		}
		return nil
	}
	fn, ok := verbs[args[0]]
	if !ok {
		fmt.Fprintf(c.stderr, "ferry %s: unknown subcommand %q (one of %s)\n", group, args[0], strings.Join(order, ", "))
		return errUsage
	}
	return fn(args[1:])
}
