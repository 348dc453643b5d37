package atlas

import (
	"context"
	"net/http"
	"strings"

	"github.com/ferrymigrate/ferry"
)

// groupView is Atlas's Group.
type groupView struct {
	ClusterCount int64  `json:"clusterCount"`
	Created      string `json:"created"`
	ID           string `json:"id"`
	Links        []link `json:"links"`
	Name         string `json:"name"`
	OrgID        string `json:"orgId"`
}

// orgView is Atlas's AtlasOrganization.
type orgView struct {
	ID        string `json:"id"`
	IsDeleted bool   `json:"isDeleted"`
	Links     []link `json:"links"`
	Name      string `json:"name"`
}

// groupBody is the createGroup body (Atlas Group). Read-only attributes
// are accepted (the Go SDK always sends clusterCount and created) and
// ignored; Atlas-cloud settings ferry has no use for are accepted as well.
type groupBody struct {
	ClusterCount              *int64        `json:"clusterCount"`
	Created                   *string       `json:"created"`
	ID                        *string       `json:"id"`
	Links                     []link        `json:"links"`
	Name                      *string       `json:"name"`
	OrgID                     *string       `json:"orgId"`
	RegionUsageRestrictions   *string       `json:"regionUsageRestrictions"`
	Tags                      []resourceTag `json:"tags"`
	WithDefaultAlertsSettings *bool         `json:"withDefaultAlertsSettings"`
}

type resourceTag struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

func (h *handler) groupView(ctx context.Context, r *http.Request, p *ferry.Project) groupView {
	v := groupView{ID: p.ID, Name: p.Name, OrgID: p.OrgID, Created: atlasTime(p.CreatedAt),
		Links: selfLink(r, apiPrefix+"/groups/"+p.ID)}
	if eps, err := h.svc.ListEndpoints(ctx, p.ID); err == nil {
		v.ClusterCount = int64(len(eps))
	}
	return v
}

func (h *handler) groupViews(r *http.Request, ps []*ferry.Project) []groupView {
	out := make([]groupView, 0, len(ps))
	for _, p := range ps {
		out = append(out, h.groupView(r.Context(), r, p))
	}
	return out
}

func orgViewOf(r *http.Request, o *ferry.Organization) orgView {
	return orgView{ID: o.ID, Name: o.Name, Links: selfLink(r, apiPrefix+"/orgs/"+o.ID)}
}

func (h *handler) listGroups(r *http.Request) (int, any, error) {
	return h.listProjects(r, "")
}

func (h *handler) listOrgGroups(r *http.Request) (int, any, error) {
	orgID, err := pathID(r, "orgId", "INVALID_ORG_ID")
	if err != nil {
		return 0, nil, err
	}
	if _, err := h.svc.GetOrg(r.Context(), orgID); err != nil {
		return 0, nil, err
	}
	return h.listProjects(r, orgID)
}

// listProjects lists the projects the caller may see; Atlas's `name` query
// parameter keeps those whose name starts with it, case-insensitively.
func (h *handler) listProjects(r *http.Request, orgID string) (int, any, error) {
	pg, err := parsePage(r)
	if err != nil {
		return 0, nil, err
	}
	name := r.URL.Query().Get("name")
	if name == "" {
		ps, total, err := h.svc.ListProjects(r.Context(), orgID, pg.offset(), pg.size)
		if err != nil {
			return 0, nil, err
		}
		return http.StatusOK, newList(r, pg, h.groupViews(r, ps), total), nil
	}
	all, _, err := h.svc.ListProjects(r.Context(), orgID, 0, 0)
	if err != nil {
		return 0, nil, err
	}
	var match []*ferry.Project
	for _, p := range all {
		if strings.HasPrefix(strings.ToLower(p.Name), strings.ToLower(name)) {
			match = append(match, p)
		}
	}
	return http.StatusOK, newList(r, pg, h.groupViews(r, slicePage(match, pg)), len(match)), nil
}

func (h *handler) createGroup(r *http.Request) (int, any, error) {
	if s := r.URL.Query().Get("projectOwnerId"); s != "" && !ferry.ValidID(s) {
		return 0, nil, fieldErr("INVALID_QUERY_PARAMETER", "projectOwnerId", "must be a 24-hex id")
	}
	body, err := readBody(r)
	if err != nil {
		return 0, nil, err
	}
	var b groupBody
	if err := decodeStrict(body, &b); err != nil {
		return 0, nil, err
	}
	if b.Name == nil || *b.Name == "" {
		return 0, nil, fieldErr("MISSING_ATTRIBUTE", "name", "The required attribute name was not specified.")
	}
	if len(b.Tags) > 0 {
		return 0, nil, fieldErr("INVALID_ATTRIBUTE", "tags", "Project tags are not supported by ferry.")
	}
	orgID := ""
	if b.OrgID != nil {
		orgID = *b.OrgID
		if !ferry.ValidID(orgID) {
			return 0, nil, fieldErr("INVALID_ORG_ID", "orgId", "The specified organization ID %s is invalid.", quote(orgID))
		}
	}
	p, err := h.svc.CreateProject(r.Context(), orgID, *b.Name)
	if err != nil {
		return 0, nil, err
	}
	// Atlas answers createGroup with 200 OK.
	return http.StatusOK, h.groupView(r.Context(), r, p), nil
}

// updateGroup is Atlas's updateProject: PATCH with a GroupUpdate body
// ({name, tags}); ferry renames the project.
func (h *handler) updateGroup(r *http.Request) (int, any, error) {
	id, err := groupID(r)
	if err != nil {
		return 0, nil, err
	}
	body, err := readBody(r)
	if err != nil {
		return 0, nil, err
	}
	var b struct {
		Name *string       `json:"name"`
		Tags []resourceTag `json:"tags"`
	}
	if err := decodeStrict(body, &b); err != nil {
		return 0, nil, err
	}
	if len(b.Tags) > 0 {
		return 0, nil, fieldErr("INVALID_ATTRIBUTE", "tags", "Project tags are not supported by ferry.")
	}
	if b.Name == nil {
		// Nothing to change: still a PATCH, which needs the rename right.
		p, err := h.svc.Authorize(r.Context(), id, ferry.AccessOwner)
		if err != nil {
			return 0, nil, err
		}
		return http.StatusOK, h.groupView(r.Context(), r, p), nil
	}
	if *b.Name == "" {
		return 0, nil, fieldErr("INVALID_ATTRIBUTE", "name", "The project name cannot be empty.")
	}
	p, err := h.svc.RenameProject(r.Context(), id, *b.Name)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, h.groupView(r.Context(), r, p), nil
}

func (h *handler) getGroup(r *http.Request) (int, any, error) {
	id, err := groupID(r)
	if err != nil {
		return 0, nil, err
	}
	p, err := h.svc.GetProject(r.Context(), id)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, h.groupView(r.Context(), r, p), nil
}

func (h *handler) getGroupByName(r *http.Request) (int, any, error) {
	if r.PathValue("groupId") != "byName" {
		return 0, nil, &ferry.Error{Code: ferry.ENOTFOUND, Reason: "RESOURCE_NOT_FOUND", Message: "Cannot find resource " + r.URL.Path + "."}
	}
	return h.groupByName(r, r.PathValue("groupName"))
}

func (h *handler) groupByName(r *http.Request, name string) (int, any, error) {
	p, err := h.svc.GetProjectByName(r.Context(), name)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, h.groupView(r.Context(), r, p), nil
}

func (h *handler) deleteGroup(r *http.Request) (int, any, error) {
	id, err := groupID(r)
	if err != nil {
		return 0, nil, err
	}
	if err := h.svc.DeleteProject(r.Context(), id); err != nil {
		return 0, nil, err
	}
	return http.StatusNoContent, nil, nil
}

func (h *handler) listOrgs(r *http.Request) (int, any, error) {
	pg, err := parsePage(r)
	if err != nil {
		return 0, nil, err
	}
	orgs, err := h.svc.ListOrgs(r.Context())
	if err != nil {
		return 0, nil, err
	}
	name := strings.ToLower(r.URL.Query().Get("name"))
	views := []orgView{}
	for _, o := range orgs {
		if name == "" || strings.HasPrefix(strings.ToLower(o.Name), name) {
			views = append(views, orgViewOf(r, o))
		}
	}
	return http.StatusOK, newList(r, pg, slicePage(views, pg), len(views)), nil
}

func (h *handler) getOrg(r *http.Request) (int, any, error) {
	id, err := pathID(r, "orgId", "INVALID_ORG_ID")
	if err != nil {
		return 0, nil, err
	}
	o, err := h.svc.GetOrg(r.Context(), id)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, orgViewOf(r, o), nil
}
