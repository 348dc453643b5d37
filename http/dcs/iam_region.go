package dcs

import (
	"context"
	"fmt"
	"regexp"

	"github.com/ferrymigrate/ferry"
)

// Huawei Cloud scripts scope an IAM token by region: the region's project
// is named after the region ("scope": {"project": {"name": "cn-north-4"}})
// and they read the project id for DCS calls from the token's project.
// ferry has no regions, so a scope name that names no ferry project but has
// the form of a region name stands for the key's own project: the project
// of a GROUP_* key, or the only project of an organization key's
// organization. An organization with several projects must be scoped by
// project id or name.

// regionName matches Huawei region names: cn-north-4, ap-southeast-1,
// la-south-2, eu-west-101, cn-north-4_sub (a sub-project).
var regionName = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]{1,3}(_[a-z0-9_-]+)?$`)

// projectByNameOrRegion resolves a token's scope project name.
func (h *handler) projectByNameOrRegion(ctx context.Context, p *ferry.Principal, name string) (*ferry.Project, error) {
	proj, err := h.svc.GetProjectByName(ctx, name)
	if err == nil || ferry.ErrorCode(err) != ferry.ENOTFOUND || !regionName.MatchString(name) {
		return proj, err
	}
	if p.ProjectID != "" {
		return h.svc.GetProject(ctx, p.ProjectID)
	}
	projs, total, err := h.svc.ListProjects(ctx, p.OrgID, 0, 2)
	if err != nil {
		return nil, err
	}
	switch total {
	case 1:
		return projs[0], nil
	case 0:
		return nil, &ferry.Error{Code: ferry.ENOTFOUND, Reason: "GROUP_NAME_NOT_FOUND", Message: fmt.Sprintf("no project named %q, and the key's organization has no project for region scope %q", name, name)}
	}
	return nil, &ferry.Error{Code: ferry.EINVALID, Field: "auth.scope.project.name", Reason: "AMBIGUOUS_REGION_SCOPE",
		Message: fmt.Sprintf("%q names no ferry project, and as a region scope it is ambiguous: the key's organization has %d projects", name, total),
		Advice:  "scope the token by project id (auth.scope.project.id) or by the ferry project's name"}
}
