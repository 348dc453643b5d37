package main

import (
	"fmt"

	"github.com/ferrymigrate/ferry"
	pipelineexp "github.com/ferrymigrate/ferry/pipeline"
)

// The admin commands work directly on the store as ferry.SystemPrincipal:
// whoever can open the store administers ferry.

func (c *cli) orgs(args []string) error {
	return c.subcommand("orgs", args, map[string]func([]string) error{
		"create": c.orgsCreate,
		"list":   c.orgsList,
	}, []string{"create", "list"})
}

func (c *cli) adminService(sf *storeFlags) (*ferry.Service, func(), error) {
	st, _, err := sf.open(c.ctx)
	if err != nil {
		return nil, nil, err
	}
	svc := ferry.NewService(st, newRegistry(discardLogger(), pipelineexp.Config{}), discardLogger())
	return svc, func() { st.Close() }, nil
}

func (c *cli) orgsCreate(args []string) error {
	fs := c.flags("orgs create", "NAME [flags]")
	var sf storeFlags
	sf.register(fs)
	jsonOut := fs.Bool("json", false, "print JSON")
	pos, err := c.parse(fs, args, 1)
	if err != nil {
		return err
	}
	svc, done, err := c.adminService(&sf)
	if err != nil {
		return err
	}
	defer done()
	o, err := svc.CreateOrg(ferry.WithPrincipal(c.ctx, ferry.SystemPrincipal), pos[0])
	if err != nil {
		return err
	}
	if *jsonOut {
		return c.printJSON(o)
	}
	t := c.table("ID", "NAME", "CREATED")
	t.row(o.ID, o.Name, fmtTime(&o.CreatedAt))
	return t.flush()
}

func (c *cli) orgsList(args []string) error {
	fs := c.flags("orgs list", "[flags]")
	var sf storeFlags
	sf.register(fs)
	jsonOut := fs.Bool("json", false, "print JSON")
	if _, err := c.parse(fs, args, 0); err != nil {
		return err
	}
	svc, done, err := c.adminService(&sf)
	if err != nil {
		return err
	}
	defer done()
	orgs, err := svc.ListOrgs(ferry.WithPrincipal(c.ctx, ferry.SystemPrincipal))
	if err != nil {
		return err
	}
	if *jsonOut {
		if orgs == nil {
			orgs = []*ferry.Organization{}
		}
		return c.printJSON(orgs)
	}
	t := c.table("ID", "NAME", "CREATED")
	for _, o := range orgs {
		t.row(o.ID, o.Name, fmtTime(&o.CreatedAt))
	}
	return t.flush()
}

func (c *cli) keys(args []string) error {
	return c.subcommand("keys", args, map[string]func([]string) error{
		"create": c.keysCreate,
		"list":   c.keysList,
	}, []string{"create", "list"})
}

// pickOrg returns orgID, or the only organization when orgID is empty.
func (c *cli) pickOrg(svc *ferry.Service, orgID string) (string, error) {
	if orgID != "" {
		return orgID, nil
	}
	orgs, err := svc.ListOrgs(ferry.WithPrincipal(c.ctx, ferry.SystemPrincipal))
	if err != nil {
		return "", err
	}
	switch len(orgs) {
	case 0:
		return "", fmt.Errorf("the store has no organization yet: run `ferry serve` once, or `ferry orgs create NAME`")
	case 1:
		return orgs[0].ID, nil
	}
	return "", fmt.Errorf("the store has %d organizations: pass --org ID (see `ferry orgs list`)", len(orgs))
}

func (c *cli) keysCreate(args []string) error {
	fs := c.flags("keys create", "--role ROLE [--org ID] [--project ID] [flags]")
	var sf storeFlags
	sf.register(fs)
	role := fs.String("role", "", "ORG_OWNER, ORG_MEMBER, ORG_READ_ONLY, GROUP_OWNER or GROUP_READ_ONLY")
	org := fs.String("org", "", "organization id (default: the only one)")
	project := fs.String("project", "", "project id (GROUP_* roles)")
	desc := fs.String("description", "", "what the key is for")
	jsonOut := fs.Bool("json", false, "print JSON")
	if _, err := c.parse(fs, args, 0); err != nil {
		return err
	}
	if *role == "" {
		fs.Usage()
		return errUsage
	}
	svc, done, err := c.adminService(&sf)
	if err != nil {
		return err
	}
	defer done()
	orgID, err := c.pickOrg(svc, *org)
	if err != nil {
		return err
	}
	k, private, err := svc.CreateAPIKey(ferry.WithPrincipal(c.ctx, ferry.SystemPrincipal), orgID, *project, ferry.Role(*role), *desc)
	if err != nil {
		return err
	}
	if *jsonOut {
		return c.printJSON(map[string]any{"id": k.ID, "orgId": k.OrgID, "projectId": k.ProjectID, "role": k.Role,
			"description": k.Description, "publicKey": k.PublicKey, "privateKey": private, "createdAt": k.CreatedAt})
	}
	fmt.Fprintf(c.stdout, "API key %s created (role %s, organization %s", k.ID, k.Role, k.OrgID)
	if k.ProjectID != "" {
		fmt.Fprintf(c.stdout, ", project %s", k.ProjectID)
	}
	fmt.Fprintf(c.stdout, ")\npublic key:  %s\nprivate key: %s\n", k.PublicKey, private)
	fmt.Fprintln(c.stdout, "The private key is shown only now: ferry stores only hashes of it.")
	return nil
}

func (c *cli) keysList(args []string) error {
	fs := c.flags("keys list", "[--org ID] [flags]")
	var sf storeFlags
	sf.register(fs)
	org := fs.String("org", "", "organization id (default: the only one)")
	jsonOut := fs.Bool("json", false, "print JSON")
	if _, err := c.parse(fs, args, 0); err != nil {
		return err
	}
	svc, done, err := c.adminService(&sf)
	if err != nil {
		return err
	}
	defer done()
	orgID, err := c.pickOrg(svc, *org)
	if err != nil {
		return err
	}
	keys, err := svc.ListAPIKeys(ferry.WithPrincipal(c.ctx, ferry.SystemPrincipal), orgID)
	if err != nil {
		return err
	}
	if *jsonOut {
		if keys == nil {
			keys = []*ferry.APIKey{}
		}
		return c.printJSON(keys) // APIKey serializes no secret
	}
	t := c.table("ID", "PUBLIC KEY", "ROLE", "PROJECT", "DESCRIPTION", "CREATED")
	for _, k := range keys {
		t.row(k.ID, k.PublicKey, string(k.Role), k.ProjectID, k.Description, fmtTime(&k.CreatedAt))
	}
	return t.flush()
}
